// Runs at the same time do not see each other: four runs of different labs at once, and two runs
// of the same lab at once, all pass, and every deterministic observation (counter deltas, packet
// counts, ping and TCP outcomes, conntrack entries) equals the one of a solo run of the same lab.
// Two runs of one lab use the very same addresses, so a capture or a counter that saw the other
// run's packets would differ.
import test from 'ava';
import { nflab, rootState } from './helpers/system.ts';
import { processesNaming } from './helpers/residue.ts';
import { runNamespaces } from './helpers/system.ts';
import type { CheckReport, LabReport, RunReport } from '../src/report/types.ts';

/** What a check observed that does not depend on chance or on timing (random backends, ports and
 * sequence numbers are left out; so is everything an `output` check prints). */
function fingerprint(check: CheckReport): unknown {
  const o = (check.observed ?? {}) as Record<string, unknown>;
  const e = (check.expected ?? {}) as Record<string, unknown>;
  switch (check.kind) {
    case 'counter':
      return e.as !== undefined ? check.status : { packets: o.packets, bytes: o.bytes };
    case 'packets':
      return { count: o.count };
    case 'ping':
      return { transmitted: o.transmitted, received: o.received };
    case 'tcp':
      return { outcomes: o.outcomes, clientSeen: o.clientSeen };
    case 'conntrack':
      return { count: o.count };
    case 'distribution':
      return Object.values((o.counts ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0);
    default:
      return check.status;
  }
}

/** A packet or counter count in a step where a TCP connection timed out depends on how many
 * retransmissions fitted into the timeout, which is timing: it may differ by one from a solo run.
 * (Another run's packets of the same lab would double it, not add one.) Everything else: exact. */
function retransmissionCount(check: CheckReport, stepTimedOut: boolean): number | undefined {
  if (!stepTimedOut) return undefined;
  const o = (check.observed ?? {}) as Record<string, unknown>;
  if (check.kind === 'packets' && typeof o.count === 'number') return o.count;
  if (
    check.kind === 'counter' &&
    typeof o.packets === 'number' &&
    typeof (check.expected as { packets?: unknown })?.packets === 'object'
  )
    return o.packets;
  return undefined;
}

interface Print {
  key: string;
  exact?: string;
  approx?: number;
}

function fingerprints(lab: LabReport): Print[] {
  return lab.steps.flatMap((s, i) => {
    const timedOut = s.checks.some(
      (c) =>
        c.kind === 'tcp' &&
        Number(((c.observed ?? {}) as { outcomes?: Record<string, number> }).outcomes?.timeout ?? 0) > 0,
    );
    return s.checks.map((c) => {
      const key = `step ${i + 1}: ${c.description}`;
      const approx = retransmissionCount(c, timedOut);
      return approx === undefined
        ? { key, exact: `${c.status} ${JSON.stringify(fingerprint(c))}` }
        : { key, exact: c.status, approx };
    });
  });
}

function sameObservations(t: import('ava').ExecutionContext, concurrent: Print[], alone: Print[], label: string) {
  t.deepEqual(
    concurrent.map((p) => `${p.key} → ${p.exact}`),
    alone.map((p) => `${p.key} → ${p.exact}`),
    `${label}: observed exactly what a solo run observes`,
  );
  concurrent.forEach((p, i) => {
    const solo = alone[i]?.approx;
    if (p.approx !== undefined && solo !== undefined)
      t.true(
        Math.abs(p.approx - solo) <= 1,
        `${label}: ${p.key}: ${p.approx} packets, solo ${solo} (a timed-out connection's retransmissions may differ by one)`,
      );
  });
}

async function runJson(id: string): Promise<LabReport> {
  const r = await nflab(['run', id, '--json']);
  const report = (JSON.parse(r.stdout || '{"labs":[]}') as RunReport).labs[0];
  if (!report) throw new Error(`lab ${id}: no report (exit ${r.code}): ${r.stderr}`);
  return report;
}

const solo = new Map<string, Promise<LabReport>>();
/** Solo runs, one after another (a chain of promises), before any concurrent run of this file. */
let chain: Promise<unknown> = Promise.resolve();
const soloRun = (id: string) => {
  if (!solo.has(id)) {
    const p = chain.then(() => runJson(id));
    chain = p.catch(() => {});
    solo.set(id, p);
  }
  return solo.get(id)!;
};

function assertSameAsSolo(t: import('ava').ExecutionContext, concurrent: LabReport, alone: LabReport, label: string) {
  t.is(
    concurrent.status,
    'passed',
    `${label}: passes\n${fingerprints(concurrent)
      .filter((p) => p.exact?.startsWith('not-met'))
      .map((p) => p.key)
      .join('\n')}`,
  );
  sameObservations(t, fingerprints(concurrent), fingerprints(alone), label);
  t.deepEqual(runNamespaces(concurrent.runId), [], `${label}: no namespace remains`);
  t.deepEqual(processesNaming(concurrent.runId), [], `${label}: no process remains`);
}

// Labs chosen for their deterministic evidence: exact counters and packet counts (01, 02, 03) and
// conntrack entries and counters of a kube-proxy rule set (04).
const FOUR = ['01', '02', '03', '04'];

test.serial('four runs of different labs at once all pass and observe what solo runs observe', async (t) => {
  t.timeout(10 * 60_000);
  const alone = await Promise.all(FOUR.map(soloRun));
  for (const a of alone) t.is(a.status, 'passed', `lab ${a.id} passes on its own first`);
  const before = rootState();
  const together = await Promise.all(FOUR.map(runJson));
  together.forEach((r, i) => assertSameAsSolo(t, r, alone[i]!, `lab ${r.id} among ${FOUR.join(', ')}`));
  t.is(new Set(together.map((r) => r.runId)).size, FOUR.length, 'every run has its own id');
  t.deepEqual(rootState(), before, 'the root namespace is unchanged');
});

for (const id of ['01', '03']) {
  test.serial(
    `two runs of lab ${id} at once, on the same addresses, both pass and observe what a solo run observes`,
    async (t) => {
      t.timeout(10 * 60_000);
      const alone = await soloRun(id);
      t.is(alone.status, 'passed', `lab ${id} passes on its own first`);
      const before = rootState();
      const [a, b] = await Promise.all([runJson(id), runJson(id)]);
      t.not(a!.runId, b!.runId);
      assertSameAsSolo(t, a!, alone, `first run of lab ${id}`);
      assertSameAsSolo(t, b!, alone, `second run of lab ${id}`);
      t.deepEqual(rootState(), before, 'the root namespace is unchanged');
    },
  );
}

test.serial(
  'nflab run --jobs 4 runs four labs at once in one process: reports in lab order, each observes what a solo run observes',
  async (t) => {
    t.timeout(10 * 60_000);
    const alone = await Promise.all(FOUR.map(soloRun));
    const before = rootState();
    const r = await nflab(['run', ...FOUR, '--jobs', '4', '--json']);
    const together = (JSON.parse(r.stdout || '{"labs":[]}') as RunReport).labs;
    t.deepEqual(
      together.map((l) => l.id),
      FOUR,
      `reports in lab order (exit ${r.code}): ${r.stderr.slice(-1000)}`,
    );
    // Exact observations only: how many retransmissions a timed-out connection's capture holds is
    // timing (the four-process test above bounds it; one process on a loaded machine spreads it more).
    together.forEach((l, i) => {
      t.is(l.status, 'passed', `lab ${l.id} of run --jobs 4 passes`);
      t.deepEqual(
        fingerprints(l).map((p) => `${p.key} → ${p.exact}`),
        fingerprints(alone[i]!).map((p) => `${p.key} → ${p.exact}`),
        `lab ${l.id} of run --jobs 4: observed exactly what a solo run observes`,
      );
      t.deepEqual(runNamespaces(l.runId), [], `lab ${l.id}: no namespace remains`);
    });
    t.deepEqual(rootState(), before, 'the root namespace is unchanged');
  },
);

test.serial("nflab run --jobs 2 prints each lab's lines together, in lab order", async (t) => {
  t.timeout(5 * 60_000);
  const r = await nflab(['run', '01', '08', '--jobs', '2']);
  t.is(r.code, 0, r.stdout + r.stderr);
  const lines = r.stdout.split('\n');
  const headers = lines.flatMap((l, i) => (/^▶ lab (\d\d):/.test(l) ? [{ id: /^▶ lab (\d\d)/.exec(l)![1], i }] : []));
  t.deepEqual(
    headers.map((h) => h.id),
    ['01', '08'],
    'one header per lab, in lab order',
  );
  const runIds = lines.flatMap((l) => /\(run ([a-z0-9]+)\)/.exec(l)?.[1] ?? []);
  // Each block, from its header to the next, holds exactly its lab's steps: lab 01 has 5, lab 08 has 3.
  const steps = (from: number, to: number) =>
    lines
      .slice(from, to)
      .filter((l) => /^ {2}[✔✘] step \d+:/.test(l))
      .map((l) => Number(/step (\d+):/.exec(l)![1]));
  const summaryAt = lines.findIndex((l) => /^ {2}lab 01 /.test(l));
  t.deepEqual(
    steps(headers[0]!.i, headers[1]!.i),
    [1, 2, 3, 4, 5],
    `lab 01's steps, in order, before lab 08's header (runs ${runIds.join(', ')})`,
  );
  t.deepEqual(steps(headers[1]!.i, summaryAt), [1, 2, 3], "lab 08's steps, in order, after it");
});
