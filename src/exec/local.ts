// Runs argv arrays on this machine with child_process, never through a shell.
import { spawn as spawnChild } from 'node:child_process';
import type { Executor, Process, RunOptions, RunResult, SpawnOptions } from './types.ts';
import { lineSplitter } from './lines.ts';
import { BASH, ShellHelper } from './shell-helper.ts';
import { existsSync } from 'node:fs';

/** Lab commands must be the system's tools. Under npm or ava, node_modules/.bin comes first in
 * PATH, and a dependency ships an `nft` of its own that exits 0 and does nothing. */
const SYSTEM_ENV = {
  ...process.env,
  PATH: (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')
    .split(':')
    .filter((dir) => !dir.includes('node_modules'))
    .join(':'),
};

/** Processes this executor started and that are still running: killed on teardown by PID. */
const live = new Set<import('node:child_process').ChildProcess>();

/** The process's command helper (shell-helper.ts), started at the first command. NFLAB_EXEC_HELPER=0
 * starts every command from node instead. */
let helper: ShellHelper | undefined;
function commandHelper(): ShellHelper | undefined {
  if (process.env.NFLAB_EXEC_HELPER === '0' || !existsSync(BASH)) return undefined;
  if (!helper || !helper.usable) helper = new ShellHelper(SYSTEM_ENV);
  return helper;
}

export class LocalExecutor implements Executor {
  readonly name = 'this machine';

  run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
    // A command with a deadline is spawned from node, which kills it at the deadline.
    const viaHelper = options.timeoutMs === undefined ? commandHelper() : undefined;
    if (viaHelper) return viaHelper.run(argv, options.stdin);
    return new Promise((resolve, reject) => {
      const child = spawnChild(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: SYSTEM_ENV });
      live.add(child);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timer: NodeJS.Timeout | undefined;
      if (options.timeoutMs !== undefined) timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e: NodeJS.ErrnoException) => {
        live.delete(child);
        if (timer) clearTimeout(timer);
        if (e.code === 'ENOENT') resolve({ code: 127, stdout: '', stderr: `${argv[0]}: command not found` });
        else reject(e);
      });
      child.on('close', (code) => {
        live.delete(child);
        if (timer) clearTimeout(timer);
        resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
      });
      // A command that does not read its stdin may close it early: ignore EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(options.stdin ?? '');
    });
  }

  spawn(argv: string[], options: SpawnOptions = {}): Process {
    const child = spawnChild(argv[0]!, argv.slice(1), {
      stdio: options.detached ? ['ignore', 'ignore', 'ignore'] : ['ignore', 'pipe', 'pipe'],
      detached: options.detached ?? false,
      env: SYSTEM_ENV,
    });
    if (options.detached) child.unref();
    else live.add(child);
    const out: string[] = [];
    const err: string[] = [];
    const outListeners: ((line: string) => void)[] = [];
    const errListeners: ((line: string) => void)[] = [];
    child.stdout?.on(
      'data',
      lineSplitter((line) => {
        out.push(line);
        outListeners.forEach((fn) => fn(line));
      }),
    );
    child.stderr?.on(
      'data',
      lineSplitter((line) => {
        err.push(line);
        errListeners.forEach((fn) => fn(line));
      }),
    );
    const exited = new Promise<RunResult>((resolve) => {
      child.on('error', () => resolve({ code: 127, stdout: out.join('\n'), stderr: `${argv[0]}: could not start` }));
      child.on('close', (code) => {
        live.delete(child);
        resolve({ code, stdout: out.join('\n'), stderr: err.join('\n') });
      });
    });
    return {
      pid: child.pid,
      onStdoutLine: (fn) => {
        outListeners.push(fn);
      },
      onStderrLine: (fn) => {
        errListeners.push(fn);
      },
      kill: (signal = 'SIGTERM') => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      },
      exited,
    };
  }

  async close(): Promise<void> {}
}

/** Kill every child this process started and is still waiting for (used on SIGINT/SIGTERM). */
export function killLiveChildren(signal: NodeJS.Signals = 'SIGKILL'): void {
  helper?.killAll(signal);
  for (const child of live) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    // A child that leads a process group of its own (GNU timeout does, for the tracer's
    // xtables-monitor) has children that would outlive it and keep its output open, so that the
    // run waiting for it never ends: end the whole group. A child that leads no group: ESRCH.
    if (child.pid !== undefined)
      try {
        process.kill(-child.pid, signal);
      } catch {
        /* not a group leader */
      }
    child.kill(signal);
  }
}
