// One long-lived bash per nflab process that starts the commands LocalExecutor.run asks for.
// Starting a process from node costs ~3× what it costs from a shell (node forks a big process;
// scripts/bench), and a small lab's set-up and teardown are a handful of short commands, so
// this fixed cost is most of their time. The helper reads a request id per line, runs the
// command file of that id in the background (so requests run at once, as spawned ones do) and
// prints "p <id> <pid>" when it starts and "d <id> <status>" when it ends; the command's
// stdin, stdout and stderr are files in a private directory, which the helper removes when
// nflab goes away (its stdin closes), however nflab ends.
// The helper leads a process group of its own: a terminal's Ctrl-C (sent to nflab's group) must
// not end it before nflab's own handler has killed the commands and torn the run down through it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunResult } from './types.ts';
import { shellQuote } from './quote.ts';
import { lineSplitter } from './lines.ts';

const SCRIPT = `exec 3>&1
d=$1
while IFS= read -r id; do
  { ( trap - INT QUIT; echo "p $id $BASHPID" >&3; . "$d/$id.c" ); echo "d $id $?" >&3; } &
done
wait
rm -rf "$d"`;

export const BASH = '/bin/bash';

const PREFIX = 'nflab-exec-';

/** Directories of helpers whose nflab is gone: a helper removes its own when nflab's end reaches
 * it, but a helper killed by a signal cannot. */
function removeOrphanedDirs(parent: string): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^nflab-exec-(\d+)-/.exec(name)?.[1]);
    if (!pid || alive(pid)) continue;
    rmSync(join(parent, name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface Pending {
  resolve: (r: RunResult) => void;
  argv0: string;
  pid?: number;
  killed?: boolean;
}

export class ShellHelper {
  private readonly child: ChildProcess;
  private readonly dir: string;
  private readonly pending = new Map<number, Pending>();
  private next = 0;
  private dead = false;

  constructor(env: NodeJS.ProcessEnv) {
    // /dev/shm when there is one: the files never touch a disk. The name carries nflab's pid, so
    // that a directory whose helper was killed outright (SIGKILL) is removed by a later nflab.
    const parent = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
    removeOrphanedDirs(parent);
    this.dir = mkdtempSync(join(parent, `${PREFIX}${process.pid}-`));
    // By absolute path: the commands' PATH (a user's, a test's) need not hold bash itself.
    this.child = spawn(BASH, ['-c', SCRIPT, 'nflab-exec', this.dir], {
      stdio: ['pipe', 'pipe', 'ignore'],
      env,
      detached: true,
    });
    this.child.on('error', () => this.fail());
    this.child.on('close', () => this.fail());
    this.child.stdin!.on('error', () => this.fail());
    this.child.stdout!.on(
      'data',
      lineSplitter((line) => this.onLine(line)),
    );
    this.idle();
  }

  get usable(): boolean {
    return !this.dead;
  }

  /** Runs argv as LocalExecutor.run would: never through a shell's parsing of the words. */
  run(argv: string[], stdin?: string): Promise<RunResult> {
    const id = this.next++;
    const base = join(this.dir, String(id));
    const input = stdin !== undefined && stdin !== '' ? `${base}.i` : '/dev/null';
    if (input !== '/dev/null') writeFileSync(input, stdin!);
    // 3>&-: the helper's report pipe is not the command's (a daemon it starts must not hold it).
    writeFileSync(
      `${base}.c`,
      `exec -- ${shellQuote(argv)} <${shellQuote([input])} >${shellQuote([`${base}.o`])} 2>${shellQuote([`${base}.e`])} 3>&-\n`,
    );
    return new Promise((resolve) => {
      this.pending.set(id, { resolve, argv0: argv[0]! });
      this.busy();
      this.child.stdin!.write(`${id}\n`);
    });
  }

  /** Kills every command still running (SIGINT/SIGTERM handling, like LocalExecutor's children). */
  killAll(signal: NodeJS.Signals): void {
    for (const p of this.pending.values()) {
      if (p.pid === undefined) continue;
      p.killed = true;
      // A command that leads a process group of its own (GNU timeout does) has children that
      // would outlive it: end the whole group, as LocalExecutor does for its children.
      try {
        process.kill(-p.pid, signal);
      } catch {
        /* not a group leader */
      }
      try {
        process.kill(p.pid, signal);
      } catch {
        /* ended meanwhile */
      }
    }
  }

  private onLine(line: string): void {
    const m = /^([pd]) (\d+) (\d+)$/.exec(line);
    if (!m) return;
    const id = Number(m[2]);
    const p = this.pending.get(id);
    if (!p) return;
    if (m[1] === 'p') {
      p.pid = Number(m[3]);
      return;
    }
    this.pending.delete(id);
    const base = join(this.dir, String(id));
    const read = (f: string) => {
      try {
        return readFileSync(f, 'utf8');
      } catch {
        return '';
      }
    };
    const status = Number(m[3]);
    const stdout = read(`${base}.o`);
    let stderr = read(`${base}.e`);
    for (const ext of ['c', 'i', 'o', 'e']) rmSync(`${base}.${ext}`, { force: true });
    // As child_process reports them: a command nflab killed has no status (null), a command bash
    // could not find has 127 and says so. Unlike child_process, a command that died of a signal
    // nflab did not send reports 128 + the signal, as a shell shows it (bash cannot tell them
    // apart); and its stdin is a file, not a pipe. Only timed commands (spawned from node) are
    // read for a null status today (src/engine/limits.ts, the setup commands).
    const code = p.killed && status > 128 ? null : status;
    if (status === 127 && /^[^\n]*: line 1: exec: [^\n]*: not found\n?$/.test(stderr))
      stderr = `${p.argv0}: command not found`;
    p.resolve({ code, stdout, stderr });
    if (this.pending.size === 0) this.idle();
  }

  private fail(): void {
    if (this.dead) return;
    this.dead = true;
    for (const p of this.pending.values())
      p.resolve({ code: null, stdout: '', stderr: 'nflab: the command helper ended' });
    this.pending.clear();
  }

  // The helper must not keep nflab alive while nothing is asked of it.
  private idle(): void {
    this.child.unref();
    (this.child.stdout as unknown as { unref?: () => void }).unref?.();
    (this.child.stdin as unknown as { unref?: () => void }).unref?.();
  }

  private busy(): void {
    this.child.ref();
    (this.child.stdout as unknown as { ref?: () => void }).ref?.();
    (this.child.stdin as unknown as { ref?: () => void }).ref?.();
  }
}
