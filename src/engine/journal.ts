// Every run records what it will create before creating it, under a runtime directory, so that
// `nflab clean` can remove what a killed run left behind and nothing else.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { RootSnapshot } from './root-namespace.ts';

export const RUNTIME_DIR = process.env.NFLAB_RUNTIME_DIR ?? '/run/nflab';

/** A process identified beyond its PID: the kernel reuses PIDs, the start time tells them apart. */
export interface ProcessRef {
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks since boot); absent when it could not be read. */
  startTime?: string;
  /** What it is, for `nflab clean`'s output (e.g. `responder c1:8000`). */
  what?: string;
}

export interface RunRecord {
  runId: string;
  /** The nflab process that owns the run; a run whose owner is dead and not kept is residue. */
  pid: number;
  /** Start time of the owner, so a reused PID does not make a dead run look alive. */
  pidStartTime?: string;
  /** The watchdog that replays this record if the owner dies without tearing down (watchdog.ts). */
  watchdog?: ProcessRef;
  labId: string;
  /** Where the run's objects live: 'this machine' or an SSH target. */
  target?: string;
  labFile?: string;
  driver: string;
  /** `up` runs are kept on purpose after nflab exits, until `nflab down`. */
  kept: boolean;
  /** Namespaces the run creates (real names). */
  netns: string[];
  /** Whether Docker containers labelled with the run id may exist. */
  containers: boolean;
  /** Detached processes the run started (the TCP responders); killed only if PID and start time match. */
  processes?: ProcessRef[];
  /** Records written before `processes` existed: bare PIDs, never killed (a PID alone may have been reused). */
  pids?: number[];
  step?: number;
  /** The iptables backend of the run (--iptables), for `nflab check` and `nflab trace` on a kept run. */
  iptables?: 'nft' | 'legacy';
  /** --root-namespace: what the target's root namespace held before the run changed it. */
  root?: RootSnapshot;
  createdAt: string;
}

/** Short, unique, safe for interface and namespace names: 6 characters of [a-z0-9]. */
export function newRunId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(6)].map((b) => alphabet[b % alphabet.length]).join('');
}

function runsDir(): string {
  return join(RUNTIME_DIR, 'runs');
}

export function recordPath(runId: string): string {
  return join(runsDir(), `${runId}.json`);
}

/** Written to a temporary file and renamed: a process killed mid-write never leaves half a record. */
export function writeRecord(record: RunRecord): void {
  mkdirSync(runsDir(), { recursive: true, mode: 0o700 });
  const tmp = join(runsDir(), `.${record.runId}.json.tmp`);
  writeFileSync(tmp, JSON.stringify(record, null, 2));
  renameSync(tmp, recordPath(record.runId));
}

export function removeRecord(runId: string): void {
  rmSync(recordPath(runId), { force: true });
  rmSync(join(runsDir(), `.${runId}.json.tmp`), { force: true });
}

export function readRecord(runId: string): RunRecord | undefined {
  try {
    return JSON.parse(readFileSync(recordPath(runId), 'utf8')) as RunRecord;
  } catch {
    return undefined;
  }
}

export function readRecords(): RunRecord[] {
  let files: string[];
  try {
    files = readdirSync(runsDir()).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  return files.flatMap((f) => {
    try {
      return [JSON.parse(readFileSync(join(runsDir(), f), 'utf8')) as RunRecord];
    } catch {
      return [];
    }
  });
}

/** Field 22 of /proc/<pid>/stat, or undefined when the process does not exist (or is a zombie). */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return fields[19];
}

/** Whether the process lives: a zombie (dead, not yet reaped) does not; with `startTime`, a
 * process that merely got the same PID later does not either. */
export function isAlive(pid: number, startTime?: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (existsProc()) {
    const now = processStartTime(pid);
    return now !== undefined && (startTime === undefined || now === startTime);
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let procMounted: boolean | undefined;
function existsProc(): boolean {
  if (procMounted === undefined) {
    try {
      readFileSync('/proc/self/stat');
      procMounted = true;
    } catch {
      procMounted = false;
    }
  }
  return procMounted;
}

/** The run's owner is alive (same PID and, when recorded, same start time). */
export function ownerAlive(record: RunRecord): boolean {
  return isAlive(record.pid, record.pidStartTime);
}
