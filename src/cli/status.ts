// `nflab status [--json]`: the labs that are up on this machine, whose they are and how far along.
// By default the caller's own runs; --all lists every user's (listing touches nothing).
import { leftUp } from '../engine/cleanup.ts';
import { ownerAlive, readJournal, type RunRecord } from '../engine/journal.ts';
import { callerOwner, ownerWords, ownsRun } from '../engine/owner.ts';
import { ageWords } from '../engine/select-run.ts';

export interface RunStatus {
  lab: string;
  runId: string;
  state: 'up' | 'building' | 'dead';
  stepsApplied: number;
  nodes: string[];
  nodeMode: string;
  owner: { uid: number; user?: string } | null;
  mine: boolean;
  ageSeconds: number;
  createdAt: string;
  target: string;
}

/** Node names of a run as the lab has them (nfl-<run>-c1 → c1; in Docker mode the container nodes
 * are not namespaces, so the lab is asked). */
export function statusOf(r: RunRecord, nodes: string[], now = Date.now()): RunStatus {
  const owner = callerOwner();
  return {
    lab: r.labId,
    runId: r.runId,
    state: leftUp(r) ? 'up' : ownerAlive(r) ? 'building' : 'dead',
    stepsApplied: r.step ?? 0,
    nodes,
    nodeMode: r.root ? 'netns, host in the root namespace' : r.driver,
    owner: r.owner ?? null,
    mine: ownsRun(owner, r),
    ageSeconds: Math.round((now - Date.parse(r.createdAt)) / 1000),
    createdAt: r.createdAt,
    target: r.target ?? 'this machine',
  };
}

export async function statusCommand(all: boolean, json: boolean): Promise<number> {
  const { records, damaged } = readJournal();
  const owner = callerOwner();
  // Kept runs (up, or an up still building); a plain `nflab run` in progress is not a lab that is up.
  const shown = records
    .filter((r) => r.kept && (all || ownsRun(owner, r)))
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  const { labOf } = await import('../engine/attach.ts');
  const rows: RunStatus[] = [];
  for (const r of shown) {
    let nodes: string[];
    try {
      nodes = Object.keys((await labOf(r)).topology.nodes);
    } catch {
      nodes = r.netns.map((n) => n.slice(`nfl-${r.runId}-`.length));
    }
    rows.push(statusOf(r, nodes));
  }
  const others = records.filter((r) => r.kept && !ownsRun(owner, r)).length;
  if (json) {
    process.stdout.write(
      JSON.stringify({ caller: owner, runs: rows, ...(all ? {} : { otherUsersRuns: others }), damaged }, null, 2) +
        '\n',
    );
    return 0;
  }
  if (rows.length === 0) process.stdout.write(all ? 'no lab is up\n' : `you (${ownerWords(owner)}) have no lab up\n`);
  else {
    const table = [
      ['LAB', 'RUN', 'STEPS', 'NODES', 'MODE', 'OWNER', 'AGE', 'STATE'],
      ...rows.map((s) => [
        s.lab,
        s.runId,
        s.stepsApplied ? `1..${s.stepsApplied}` : '0',
        s.nodes.join(','),
        s.nodeMode,
        ownerWords(s.owner ?? undefined),
        ageWords(s.ageSeconds * 1000),
        s.state,
      ]),
    ];
    const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
    for (const row of table)
      process.stdout.write(`${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`);
  }
  if (!all && others > 0)
    process.stdout.write(`(${others} run${others === 1 ? '' : 's'} of other users: nflab status --all)\n`);
  for (const d of damaged) process.stderr.write(`nflab: journal record ${d.file} ${d.problem}\n`);
  return 0;
}
