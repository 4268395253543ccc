// Which kept run a command means. `nflab check 02` (and trace, shell, exec, solve, reset, down)
// picks the caller's own run of lab 02 on this machine; with several, the caller names one with
// --run ID; another user's run is never picked, even when named. Every refusal is exit 2, names
// what was asked for and lists what exists.
import { LabError } from '../errors.ts';
import type { Lab } from '../lab/types.ts';
import { labRef, resolveLabs } from '../resolve/load.ts';
import { leftUp } from './cleanup.ts';
import { ownerAlive, readJournal, type RunOwner, type RunRecord } from './journal.ts';
import { callerOwner, ownerWords, ownsRun } from './owner.ts';

export interface RunQuery {
  /** What the user typed: a lab id (`02`, `2`), a lab file, or a run id. */
  lab: string;
  /** --run ID. */
  run?: string;
  /** Where the run lives (`this machine` unless --target). */
  target?: string;
  owner?: RunOwner;
  /** The journal's records (default: read now). */
  records?: RunRecord[];
}

/** How a run is listed in a message: `abc123 (lab 02, steps 1..3, up 4 min, owner alice (uid 1000))`. */
export function runWords(r: RunRecord, now = Date.now()): string {
  return `${r.runId} (lab ${r.labId}, ${stepsWords(r.step)}, up ${ageWords(now - Date.parse(r.createdAt))}, owner ${ownerWords(r.owner)})`;
}

export function stepsWords(step: number | undefined): string {
  return step ? `steps 1..${step} applied` : 'no step applied (topology only)';
}

export function ageWords(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d`;
}

/** The lab id a user meant: a run's lab when the journal has one of that id, else the lab it
 * resolves to (an unknown lab is exit 2 listing the known ones). */
async function labIdOf(typed: string, records: RunRecord[]): Promise<string> {
  const ref = labRef(typed);
  if (records.some((r) => r.labId === ref)) return ref;
  return (await resolveLabs([ref]))[0]!.id;
}

/** The caller's runs on a target that are up (kept by a finished `nflab up`). */
export function ownRuns(records: RunRecord[], owner: RunOwner = callerOwner(), target = 'this machine'): RunRecord[] {
  return records.filter((r) => leftUp(r) && ownsRun(owner, r) && (r.target ?? 'this machine') === target);
}

export async function selectRun(q: RunQuery): Promise<RunRecord> {
  const records = q.records ?? readJournal().records;
  const owner = q.owner ?? callerOwner();
  const target = q.target ?? 'this machine';
  const here = records.filter((r) => (r.target ?? 'this machine') === target);
  const mine = ownRuns(here, owner, target);
  const listMine = (rs: RunRecord[]) =>
    rs.length === 0
      ? 'you have no lab up (nflab status lists runs; nflab up <lab> brings one up)'
      : `your runs: ${rs.map((r) => runWords(r)).join('; ')}`;

  // A run id, given with --run or in place of the lab.
  const runId = q.run ?? (here.some((r) => r.runId === q.lab) ? q.lab : undefined);
  if (runId !== undefined) {
    const r = here.find((x) => x.runId === runId);
    if (!r) throw new LabError(`no run "${runId}" is up on ${target}; ${listMine(mine)}`);
    if (!ownsRun(owner, r))
      throw new LabError(
        `run ${r.runId} (lab ${r.labId}) belongs to ${ownerWords(r.owner)}, not to you (${ownerWords(owner)}): nflab never touches another user's run; ${listMine(mine)}`,
      );
    if (!leftUp(r))
      throw new LabError(
        `run ${r.runId} (lab ${r.labId}) is not up: ${ownerAlive(r) ? `it is still being built by its nflab up (process ${r.pid})` : 'its nflab process died while building it (nflab clean removes it)'}`,
      );
    if (q.run !== undefined && q.lab !== q.run && r.labId !== labRef(q.lab) && r.labFile !== q.lab) {
      throw new LabError(`run ${r.runId} is a run of lab ${r.labId}, not of lab "${q.lab}"`);
    }
    return r;
  }

  const labId = await labIdOf(q.lab, here);
  const ofLab = mine.filter((r) => r.labId === labId);
  if (ofLab.length === 1) return ofLab[0]!;
  if (ofLab.length > 1) {
    throw new LabError(
      `you have ${ofLab.length} runs of lab ${labId} up: name one with --run ID:\n  ${ofLab.map((r) => runWords(r)).join('\n  ')}`,
    );
  }
  const building = here.filter((r) => r.labId === labId && r.kept && !leftUp(r) && ownsRun(owner, r) && ownerAlive(r));
  if (building.length > 0)
    throw new LabError(
      `lab ${labId} is not up yet: it is still being built by its nflab up (process ${building.map((r) => r.pid).join(', ')}); wait for it, or interrupt that nflab up`,
    );
  const others = here.filter((r) => r.labId === labId && leftUp(r) && !ownsRun(owner, r));
  const note =
    others.length > 0
      ? ` (${others.length === 1 ? 'a run' : `${others.length} runs`} of lab ${labId} by other users: not yours to touch)`
      : '';
  throw new LabError(
    `no lab "${labId}" is up for you (${ownerWords(owner)})${note}; bring it up with: nflab up ${labId} --step N; ${listMine(mine)}`,
  );
}

/** --step N of a lab: 1..steps (0 too where the topology alone is meant); otherwise exit 2 listing the steps. */
export function assertStep(lab: Lab, n: number, min: 0 | 1 = 1): number {
  if (Number.isInteger(n) && n >= min && n <= lab.steps.length) return n;
  const list = lab.steps.map((s, i) => `${i + 1} ${s.title}`).join('; ');
  throw new LabError(
    `lab ${lab.id} has no step ${JSON.stringify(n)}: --step must be ${min}..${lab.steps.length}${min === 0 ? ' (0: the topology only)' : ''} (steps: ${list})`,
  );
}

/** A node of a lab by its name; otherwise exit 2 listing the lab's nodes. */
export function assertNode(lab: Lab, node: string): string {
  if (Object.hasOwn(lab.topology.nodes, node)) return node;
  throw new LabError(`lab ${lab.id} has no node "${node}" (its nodes: ${Object.keys(lab.topology.nodes).join(', ')})`);
}
