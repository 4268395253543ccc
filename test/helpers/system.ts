// Test helpers that read the machine's real state: the root namespace, run residue, the CLI.
import { spawn, type ChildProcess } from 'node:child_process';
import { $ } from 'zx';
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = fileURLToPath(new URL('../../bin/nflab.mjs', import.meta.url));

/** Runs one command (an argv: zx quotes each word) and returns its stdout; throws when it fails. */
function sh(argv: string[]): string {
  return $({ sync: true, quiet: true })`${argv}`.stdout;
}

/** What the root namespace looks like; must be identical before and after any run. Counters and
 * the dated header are left out: they change with unrelated traffic on the machine. */
export function rootState(): Record<string, string> {
  return {
    iptables: sh(['iptables-save'])
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .map((l) => l.replace(/\[\d+:\d+\]/, ''))
      .join('\n'),
    links: sh(['ip', '-o', 'link', 'show'])
      .split('\n')
      .map((l) => l.replace(/\\.*$/, '').replace(/qlen \d+/, ''))
      .join('\n'),
    routes: sh(['ip', 'route', 'show', 'table', 'all']),
    sysctls: sh(['sysctl', 'net.ipv4.ip_forward', 'net.bridge.bridge-nf-call-iptables']),
  };
}

/** Namespaces of one run that still exist. */
export function runNamespaces(runId: string): string[] {
  try {
    return readdirSync('/run/netns').filter((n) => n.startsWith(`nfl-${runId}-`));
  } catch {
    return [];
  }
}

/** The kernel identity (inode) of each namespace of a run, read while it exists. */
export function namespaceInodes(runId: string): number[] {
  return runNamespaces(runId).map((n) => statSync(`/run/netns/${n}`).ino);
}

/** Processes still living in any of these namespaces (a namespace with a process is not gone). */
export function processesIn(inodes: number[]): number[] {
  const wanted = new Set(inodes.map((i) => `net:[${i}]`));
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (wanted.has(readlinkSync(`/proc/${entry}/ns/net`))) pids.push(Number(entry));
    } catch {
      /* the process ended while we looked */
    }
  }
  return pids;
}

export function runJournal(runId: string): boolean {
  try {
    statSync(`/run/nflab/runs/${runId}.json`);
    return true;
  } catch {
    return false;
  }
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the nflab CLI as a user would. `onStdout` sees output as it arrives (to interrupt at a point). */
export function nflab(
  args: string[],
  options: { onStdout?: (all: string, child: ChildProcess) => void; env?: Record<string, string> } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: REPO,
      env: { ...process.env, NO_COLOR: '1', ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => {
      stdout += b;
      options.onStdout?.(stdout, child);
    });
    child.stderr.on('data', (b) => {
      stderr += b;
    });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Docker containers of one run, found by the label nflab puts on each. */
export function containersOf(runId: string): string[] {
  return sh(['docker', 'ps', '-aq', '--filter', `label=nflab.run=${runId}`])
    .split('\n')
    .filter(Boolean);
}

/** The JSON report a CLI run printed; when there is none (or only an error object), a failure that shows how the run ended and its stderr. */
export function jsonOf<T = any>(r: CliResult): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.stdout);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (typeof parsed === 'object' && parsed !== null && 'error' in parsed)) {
    throw new Error(
      `nflab printed no report (exit ${r.code ?? r.signal}):\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(-4000)}`,
    );
  }
  return parsed as T;
}
