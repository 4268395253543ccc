// Every run records what it will create before creating it, under a runtime directory, so that
// `nflab clean` can remove what a killed run left behind and nothing else.
import {
  accessSync,
  constants,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { RootSnapshot } from './root-namespace.ts';
import { EnvError } from '../errors.ts';

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
  /** The run is still being built (or its steps applied): true from the first write until the run
   * is kept or torn down. A kept run killed while building is residue, not a lab left up. Records
   * written before this field existed have none: taken as finished. */
  building?: boolean;
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
  /** The kube-proxy profile a Kubernetes lab was built with (--kube-proxy), so `nflab check` and
   * `nflab trace` load the lab with the rules that are in the run's node. */
  kubeProxy?: string;
  /** --root-namespace: what the target's root namespace held before the run changed it. */
  root?: RootSnapshot;
  /** Who brought the run up (owner.ts): only that user's commands pick it. Records written before
   * this field existed have none: nobody's run, left to `nflab down --run ID` as root. */
  owner?: RunOwner;
  createdAt: string;
}

/** The invoking user: under sudo the user who typed sudo (SUDO_UID), else the process's uid. */
export interface RunOwner {
  uid: number;
  user?: string;
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

/** A journal that cannot be written is the environment's problem (exit 3), never a verdict. */
function journalError(err: unknown): never {
  const e = { code: whyNotWritable() ?? (err as NodeJS.ErrnoException).code, message: (err as Error).message };
  const why =
    e.code === 'ENOSPC' || e.code === 'EDQUOT'
      ? 'is full'
      : e.code === 'EROFS'
        ? 'is on a read-only file system'
        : e.code === 'EACCES' || e.code === 'EPERM'
          ? 'is not writable'
          : `cannot be written (${e.code ?? e.message})`;
  throw new EnvError(
    `the run journal directory ${runsDir()} ${why}: nflab records every run there before creating anything, so that a killed run can be cleaned`,
    `free space or make ${RUNTIME_DIR} writable (or point NFLAB_RUNTIME_DIR at a writable directory), then run again`,
  );
}

/** The reason the nearest existing directory on the way to the journal refuses writes (a
 * recursive mkdir on a read-only file system reports ENOENT, which says nothing). */
function whyNotWritable(): string | undefined {
  for (let dir = runsDir(); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      accessSync(dir, constants.W_OK);
      return undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') return code;
    }
  }
  return undefined;
}

/** Written to a temporary file and renamed: a process killed mid-write never leaves half a record. */
export function writeRecord(record: RunRecord): void {
  const tmp = join(runsDir(), `.${record.runId}.json.tmp`);
  try {
    mkdirSync(runsDir(), { recursive: true, mode: 0o700 });
    writeFileSync(tmp, JSON.stringify(record, null, 2));
    renameSync(tmp, recordPath(record.runId));
  } catch (err) {
    rmSync(tmp, { force: true });
    journalError(err);
  }
}

/** Before a run: the journal directory takes a record (a probe file written and removed), or exit 3. */
export function assertJournalWritable(): void {
  const probe = join(runsDir(), `.probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(runsDir(), { recursive: true, mode: 0o700 });
    // A few kilobytes, like a record with its root-namespace snapshot: a directory with room for
    // an empty file only would fail at the first real write.
    writeFileSync(probe, Buffer.alloc(16_384));
  } catch (err) {
    journalError(err);
  } finally {
    rmSync(probe, { force: true });
  }
}

export function removeRecord(runId: string): void {
  rmSync(recordPath(runId), { force: true });
  rmSync(join(runsDir(), `.${runId}.json.tmp`), { force: true });
}

/** The record of a run, or undefined when there is none or it is damaged (see readJournal). */
export function readRecord(runId: string): RunRecord | undefined {
  const parsed = parseRecord(recordPath(runId), `${runId}.json`);
  return 'record' in parsed ? parsed.record : undefined;
}

/** A record file that cannot be used: which file, and what is wrong with it. */
export interface DamagedRecord {
  file: string;
  problem: string;
}

/** Every record of the journal, and the files that are not valid records (reported, never fatal:
 * one bad file must not stop the others from being cleaned). */
export function readJournal(): { records: RunRecord[]; damaged: DamagedRecord[] } {
  let files: string[];
  try {
    files = readdirSync(runsDir()).filter((f) => f.endsWith('.json') && !f.startsWith('.'));
  } catch {
    return { records: [], damaged: [] };
  }
  const records: RunRecord[] = [];
  const damaged: DamagedRecord[] = [];
  for (const f of files) {
    const parsed = parseRecord(join(runsDir(), f), f);
    if ('record' in parsed) records.push(parsed.record);
    else if (parsed.problem) damaged.push({ file: join(runsDir(), f), problem: parsed.problem });
  }
  return { records, damaged };
}

export function readRecords(): RunRecord[] {
  return readJournal().records;
}

function parseRecord(path: string, file: string): { record: RunRecord } | { problem?: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    // Gone between the listing and the read (its run ended): not damage.
    return (err as NodeJS.ErrnoException).code === 'ENOENT'
      ? {}
      : { problem: `cannot be read (${(err as NodeJS.ErrnoException).code})` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return {
      problem: `is not valid JSON${text.trim() === '' ? ' (empty)' : !/\}\s*$/.test(text) ? ' (truncated?)' : ''}: ${(err as Error).message}`,
    };
  }
  const problem = recordProblem(value, file.replace(/\.json$/, ''));
  return problem ? { problem } : { record: value as RunRecord };
}

/** What makes a parsed record unusable: every field the cleaners rely on, with its type. */
export function recordProblem(value: unknown, runIdFromFile?: string): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'is not a JSON object';
  const r = value as Record<string, unknown>;
  const is = {
    string: (v: unknown) => typeof v === 'string',
    pid: (v: unknown) => Number.isInteger(v) && (v as number) > 0,
    boolean: (v: unknown) => typeof v === 'boolean',
    strings: (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string'),
  };
  const ref = (v: unknown) =>
    typeof v === 'object' &&
    v !== null &&
    is.pid((v as ProcessRef).pid) &&
    ['undefined', 'string'].includes(typeof (v as ProcessRef).startTime);
  const fields: [string, (v: unknown) => boolean, string, boolean][] = [
    ['runId', (v) => typeof v === 'string' && /^[a-z0-9]{1,32}$/.test(v), 'a run id of [a-z0-9]', true],
    ['pid', is.pid, 'a positive integer (a process id)', true],
    ['labId', is.string, 'a string', true],
    ['driver', is.string, 'a string', true],
    ['kept', is.boolean, 'true or false', true],
    [
      'netns',
      (v) => is.strings(v) && (v as string[]).every((n) => /^nfl-[a-z0-9]+-[a-z0-9_-]+$/.test(n)),
      'an array of namespace names nfl-<run>-<node>',
      true,
    ],
    ['containers', is.boolean, 'true or false', true],
    ['createdAt', is.string, 'a string', true],
    ['building', is.boolean, 'true or false', false],
    ['pidStartTime', is.string, 'a string', false],
    ['target', is.string, 'a string', false],
    ['labFile', is.string, 'a string', false],
    ['watchdog', ref, 'a process { pid, startTime }', false],
    ['processes', (v) => Array.isArray(v) && v.every(ref), 'an array of processes { pid, startTime }', false],
    ['pids', (v) => Array.isArray(v) && v.every(is.pid), 'an array of process ids', false],
    [
      'root',
      (v) => typeof v === 'object' && v !== null && typeof (v as { node?: unknown }).node === 'string',
      'an object naming its node',
      false,
    ],
    [
      'owner',
      (v) =>
        typeof v === 'object' &&
        v !== null &&
        Number.isInteger((v as RunOwner).uid) &&
        (v as RunOwner).uid >= 0 &&
        ['undefined', 'string'].includes(typeof (v as RunOwner).user),
      'an object { uid, user }',
      false,
    ],
    ['step', (v) => Number.isInteger(v) && (v as number) >= 0, 'a step number (0 or more)', false],
  ];
  for (const [field, ok, what, required] of fields) {
    if (r[field] === undefined) {
      if (required) return `has no field "${field}" (${what})`;
      continue;
    }
    if (!ok(r[field])) return `field "${field}" must be ${what} (got ${JSON.stringify(r[field])?.slice(0, 60)})`;
  }
  if (runIdFromFile !== undefined && r.runId !== runIdFromFile)
    return `field "runId" is ${JSON.stringify(r.runId)} but the file is named for run ${runIdFromFile}`;
  // A namespace of another run is never this record's to remove.
  const foreign = (r.netns as string[]).find((n) => !n.startsWith(`nfl-${r.runId as string}-`));
  if (foreign) return `field "netns" names ${foreign}, which is not a namespace of run ${r.runId as string}`;
  return undefined;
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
