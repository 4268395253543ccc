// What the watchdog (watchdog.ts) runs when nflab died without saying "done": replays that one
// run's journal, as `nflab clean` would, and then removes the journal.
//
// Commands nflab had started just before it died (an `ip netns add`, a container being created by
// the Docker engine) may still finish after the first pass. So the reaper passes again after a
// pause, until a pass finds nothing left; only then is the record removed. A process that a dying
// shell loop forked between the listing of a namespace's processes and their killing would keep
// the namespace alive without its name: so the reaper holds each namespace open (its inode cannot
// then be reused by a namespace of someone else) and later passes end every process still in one.
// A run kept on purpose (`nflab up`, finished) is never touched; an `up` killed while building is reaped.
import { closeSync, fstatSync, openSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalExecutor } from '../exec/local.ts';
import type { Executor } from '../exec/types.ts';
import { ownerAlive, readRecord, removeRecord } from './journal.ts';
import { leftUp } from './cleanup.ts';
import { removeRun } from './cleanup.ts';
import { NETNS_DIR } from '../drivers/netns.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ReapOptions {
  /** How long to wait for the owner to be gone (its socket closed, but it may still be exiting). */
  ownerGraceMs?: number;
  /** Pause between passes. */
  passPauseMs?: number;
  maxPasses?: number;
  log?: (line: string) => void;
}

/** Returns everything removed; an empty list when the run was torn down, kept, or still owned. */
export async function reapRun(exec: Executor, runId: string, options: ReapOptions = {}): Promise<string[]> {
  const log = options.log ?? (() => {});
  let record = readRecord(runId);
  if (!record) return [];
  const graceUntil = Date.now() + (options.ownerGraceMs ?? 10_000);
  while (ownerAlive(record) && Date.now() < graceUntil) await sleep(50);
  if (ownerAlive(record)) {
    log(`run ${runId}: owner ${record.pid} is still alive; leaving the run to it (or to nflab clean)`);
    return [];
  }
  // Read again: the owner may have updated the record (kept it, started a responder) before dying.
  record = readRecord(runId);
  // A lab left up on purpose stays; one whose `up` died while building it is residue.
  if (!record || leftUp(record)) return [];
  const removed: string[] = [];
  const pinned = new Map<string, number>();
  const identities = new Set<string>();
  const maxPasses = options.maxPasses ?? 8;
  try {
    for (let pass = 1; pass <= maxPasses; pass++) {
      for (const ns of record.netns ?? []) {
        if (pinned.has(ns)) continue;
        try {
          const fd = openSync(join(NETNS_DIR, ns), 'r');
          const st = fstatSync(fd);
          // Only a file of the namespace filesystem is a namespace (a name `ip netns add` has not
          // mounted yet is an empty file of /run).
          if (st.dev === statSync('/proc/self/ns/net').dev) {
            pinned.set(ns, fd);
            identities.add(`net:[${st.ino}]`);
          } else closeSync(fd);
        } catch {
          /* not there (yet, or any more) */
        }
      }
      const now = await removeRun(exec, record, { keepRecord: true });
      // The root namespace is restored once (removeRun throws when it could not be): later passes
      // look only for namespaces and processes that reappeared.
      if (record.root) record = { ...record, root: undefined };
      now.push(...killProcessesIn(identities));
      removed.push(...now);
      if (now.length === 0 && pass > 1) break;
      await sleep(options.passPauseMs ?? 700);
    }
  } finally {
    for (const fd of pinned.values()) closeSync(fd);
  }
  removeRecord(runId);
  log(
    `${new Date().toISOString()} run ${runId} (lab ${record.labId}, owner ${record.pid} died): removed ${removed.length ? removed.join(', ') : 'nothing left'}`,
  );
  return removed;
}

/** Ends every process whose network namespace is one of these (`net:[4026532xxx]`). */
function killProcessesIn(identities: Set<string>): string[] {
  if (identities.size === 0) return [];
  const killed: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (!identities.has(readlinkSync(`/proc/${entry}/ns/net`))) continue;
      process.kill(Number(entry), 'SIGKILL');
      killed.push(`process ${entry} (left in a namespace of the run)`);
    } catch {
      /* ended meanwhile */
    }
  }
  return killed;
}

function invokedDirectly(): boolean {
  try {
    return (
      process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))
    );
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  const runId = process.argv[2] ?? '';
  // The run id names a file under the runtime directory: accept only what newRunId() produces.
  if (!/^[a-z0-9]{1,32}$/.test(runId)) {
    process.stderr.write(`nflab reaper: invalid run id ${JSON.stringify(runId)}\n`);
    process.exit(2);
  }
  reapRun(new LocalExecutor(), runId, { log: (line) => process.stdout.write(`${line}\n`) }).catch((err: unknown) => {
    process.stdout.write(
      `${new Date().toISOString()} run ${runId}: reaper failed: ${(err as Error).stack ?? String(err)}\n`,
    );
    process.exitCode = 1;
  });
}
