// What a run may leave behind, read from the machine: its namespaces, processes in them or naming
// them, its journal, its containers, its watchdog. Used after interruptions and kills.
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import type { ExecutionContext } from 'ava';
import { containersOf, processesIn, runJournal, runNamespaces } from './system.ts';
import type { ProcessRef, RunRecord } from '../../src/engine/journal.ts';

export const RUNS_DIR = '/run/nflab/runs';

export function readJournal(runId: string): RunRecord | undefined {
  try {
    return JSON.parse(readFileSync(`${RUNS_DIR}/${runId}.json`, 'utf8')) as RunRecord;
  } catch {
    return undefined;
  }
}

/** Start time (field 22 of /proc/<pid>/stat) of a live, non-zombie process. */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

export function stillRunning(ref: ProcessRef | undefined): boolean {
  return ref !== undefined && ref.startTime !== undefined && startTimeOf(ref.pid) === ref.startTime;
}

/** SIGKILLs a run's watchdog (as a kill of everything would), so that only `nflab clean` is left. */
export function killWatchdog(runId: string): ProcessRef | undefined {
  const ref = readJournal(runId)?.watchdog;
  if (stillRunning(ref)) process.kill(ref!.pid, 'SIGKILL');
  return ref;
}

/** `pid: command line (state)`, to tell what was left. */
function describe(pid: number): string {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return `${pid}: ${cmdline} (state ${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]})`;
  } catch {
    return `${pid}: (gone)`;
  }
}

/** Processes whose command line names an object of the run (`ip netns exec nfl-<run>-c1 …`). */
export function processesNaming(runId: string): string[] {
  const needle = `nfl-${runId}-`;
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(needle)) found.push(`${entry}: ${cmdline.replace(/\0/g, ' ').trim()}`);
    } catch {
      /* ended meanwhile */
    }
  }
  return found;
}

export interface Pinned {
  /** Inodes of the run's namespaces that existed when they were pinned. */
  inodes: number[];
  /** Lets the kernel destroy them (call after the checks). */
  release(): void;
}

/**
 * Holds the run's namespaces open while the test looks for processes in them. The kernel reuses
 * a freed namespace's inode number at once (another run, a Docker container), so a bare number
 * would soon name someone else's namespace; an open namespace keeps its number. One that vanishes
 * while we look (teardown is running) is simply not pinned.
 */
export function pinNamespaces(runId: string): Pinned {
  const nsfs = statSync('/proc/self/ns/net').dev;
  const fds: number[] = [];
  const inodes: number[] = [];
  for (const n of runNamespaces(runId)) {
    try {
      const fd = openSync(`/run/netns/${n}`, 'r');
      const st = fstatSync(fd);
      if (st.dev !== nsfs) {
        closeSync(fd);
        continue;
      }
      fds.push(fd);
      inodes.push(st.ino);
    } catch {
      /* gone meanwhile */
    }
  }
  return {
    inodes,
    release: () => {
      for (const fd of fds.splice(0)) closeSync(fd);
    },
  };
}

/** Network-namespace identities (net:[inode]) of the run's namespaces that exist now. */
export function netnsLinks(runId: string): string[] {
  return runNamespaces(runId).flatMap((n) => {
    try {
      return [readlinkSync(`/run/netns/${n}`)];
    } catch {
      return [];
    }
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the run's journal is gone (its watchdog, or nflab itself, finished). */
export async function journalGone(runId: string, timeoutMs = 30_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (runJournal(runId)) {
    if (Date.now() > until) return false;
    await sleep(50);
  }
  return true;
}

/** Waits until a process is gone (a watchdog exits right after nflab's "done"). */
export async function processGone(ref: ProcessRef | undefined, timeoutMs = 10_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (stillRunning(ref)) {
    if (Date.now() > until) return false;
    await sleep(20);
  }
  return true;
}

export interface ResidueOptions {
  inodes: number[];
  watchdog?: ProcessRef;
  containers?: boolean;
}

/** Everything a run created is gone. `label` says which interruption this was, for the report. */
export async function assertNoResidue(
  t: ExecutionContext,
  runId: string,
  label: string,
  options: ResidueOptions,
): Promise<boolean> {
  const results = [
    t.deepEqual(runNamespaces(runId), [], `${label}: no namespace of the run remains`),
    t.deepEqual(processesIn(options.inodes).map(describe), [], `${label}: no process lives in a namespace of the run`),
    t.deepEqual(processesNaming(runId), [], `${label}: no process names an object of the run`),
    t.false(runJournal(runId), `${label}: the run's journal is removed`),
    t.true(await processGone(options.watchdog), `${label}: the watchdog has exited`),
  ];
  if (options.containers)
    results.push(t.deepEqual(containersOf(runId), [], `${label}: no container of the run remains`));
  return results.every(Boolean);
}
