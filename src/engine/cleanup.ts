// Replays run records: removes what a run created, and nothing that is not in a record.
import type { Executor } from '../exec/types.ts';
import { isAlive, readRecords, removeRecord, type RunRecord } from './journal.ts';
import { killNamespacePids } from '../drivers/netns.ts';

export async function removeRun(exec: Executor, record: RunRecord): Promise<string[]> {
  const removed: string[] = [];
  const present = new Set((await exec.run(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean));
  await Promise.all(record.netns.filter((ns) => present.has(ns)).map(async (ns) => {
    await killNamespacePids(exec, ns);
    const r = await exec.run(['ip', 'netns', 'del', ns]);
    if (r.code === 0) removed.push(`namespace ${ns}`);
  }));
  for (const pid of record.pids) if (isAlive(pid)) { process.kill(pid, 'SIGKILL'); removed.push(`process ${pid}`); }
  if (record.containers) {
    try {
      const { removeRunContainers } = await import('../drivers/docker-clean.ts');
      removed.push(...(await removeRunContainers(record.runId)).map((c) => `container ${c}`));
    } catch (err) {
      throw new Error(`run ${record.runId} had Docker containers, which could not be removed: ${(err as Error).message}`);
    }
  }
  removeRecord(record.runId);
  return removed;
}

/** Records of runs whose nflab process died without tearing down (and, with `kept`, labs left up). */
export function deadRuns(includeKept: boolean): RunRecord[] {
  return readRecords().filter((r) => (r.kept ? includeKept : !isAlive(r.pid)));
}
