// Replays run records: removes what a run created, and nothing that is not in a record.
import type { Executor } from '../exec/types.ts';
import { isAlive, ownerAlive, readRecords, removeRecord, type RunRecord } from './journal.ts';
import { killPidsIn } from '../drivers/netns.ts';
import { restoreRoot } from './root-namespace.ts';

export interface RemoveOptions {
  /** Leave the record in place (the reaper removes it only once a later pass finds nothing). */
  keepRecord?: boolean;
}

export async function removeRun(exec: Executor, record: RunRecord, options: RemoveOptions = {}): Promise<string[]> {
  const removed: string[] = [];
  const present = new Set(
    (await exec.run(['ip', 'netns', 'list'])).stdout
      .split('\n')
      .map((l) => l.split(' ')[0]!)
      .filter(Boolean),
  );
  const names = (record.netns ?? []).filter((ns) => present.has(ns));
  // Every process in them first (a process left inside keeps a namespace alive without its name).
  if (names.length > 0) await killPidsIn(exec, names);
  await Promise.all(
    names.map(async (ns) => {
      const r = await exec.run(['ip', 'netns', 'del', ns]);
      if (r.code === 0) removed.push(`namespace ${ns}`);
    }),
  );
  // A recorded process is killed only when its start time proves it is still the same process.
  for (const p of record.processes ?? []) {
    if (p.startTime === undefined || !isAlive(p.pid, p.startTime)) continue;
    try {
      process.kill(p.pid, 'SIGKILL');
      removed.push(`process ${p.pid}${p.what ? ` (${p.what})` : ''}`);
    } catch {
      /* it ended meanwhile */
    }
  }
  if (record.containers) {
    try {
      const { removeRunContainers } = await import('../drivers/docker-clean.ts');
      removed.push(...(await removeRunContainers(record.runId)).map((c) => `container ${c}`));
    } catch (err) {
      throw new Error(
        `run ${record.runId} had Docker containers, which could not be removed: ${(err as Error).message}`,
      );
    }
  }
  if (record.root) {
    // After the namespaces: a bridge in the root namespace loses its ports' peers first.
    const problems = await restoreRoot(exec, record.root);
    if (problems.length > 0)
      throw new Error(
        `run ${record.runId}: the root namespace of ${exec.name} could not be fully restored: ${problems.join('; ')}`,
      );
    removed.push(`root namespace state of node ${record.root.node} (iptables, sysctls, links)`);
  }
  if (!options.keepRecord) removeRecord(record.runId);
  return removed;
}

/** A lab left up on purpose by a finished `nflab up`: only `down` or `clean --all` remove it. An
 * `up` that died while building (its record says so) left residue, like any killed run. */
export function leftUp(record: RunRecord): boolean {
  return record.kept && record.building !== true;
}

/** Records of runs whose nflab process died without tearing down (and, with `includeKept`, labs
 * left up). A run whose owner is alive is never one of them (it is still building, or running
 * its steps); a dead run whose watchdog still lives is being removed by it right now. */
export function deadRuns(includeKept: boolean, records: RunRecord[] = readRecords()): RunRecord[] {
  return records.filter((r) => !ownerAlive(r) && (leftUp(r) ? includeKept : !watchdogAlive(r)));
}

function watchdogAlive(record: RunRecord): boolean {
  const w = record.watchdog;
  return w !== undefined && w.startTime !== undefined && isAlive(w.pid, w.startTime);
}
