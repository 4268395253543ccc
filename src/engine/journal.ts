// Every run records what it will create before creating it, under a runtime directory, so that
// `nflab clean` can remove what a killed run left behind and nothing else.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const RUNTIME_DIR = process.env.NFLAB_RUNTIME_DIR ?? '/run/nflab';

export interface RunRecord {
  runId: string;
  /** The nflab process that owns the run; a run whose owner is dead and not kept is residue. */
  pid: number;
  labId: string;
  labFile?: string;
  driver: string;
  /** `up` runs are kept on purpose after nflab exits, until `nflab down`. */
  kept: boolean;
  /** Namespaces the run creates (real names). */
  netns: string[];
  /** Whether Docker containers labelled with the run id may exist. */
  containers: boolean;
  /** Detached processes started outside a namespace of the run (none today; kept for clean). */
  pids: number[];
  step?: number;
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

export function writeRecord(record: RunRecord): void {
  mkdirSync(runsDir(), { recursive: true, mode: 0o700 });
  writeFileSync(join(runsDir(), `${record.runId}.json`), JSON.stringify(record, null, 2));
}

export function removeRecord(runId: string): void {
  rmSync(join(runsDir(), `${runId}.json`), { force: true });
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

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
