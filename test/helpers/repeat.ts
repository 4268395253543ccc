// Repeatability of `nflab check` on a live lab: for each step N, `nflab up <lab> --step N`, then
// check N three times, after `nflab trace`, and after hand-made traffic; every check must give the
// same verdict each time (and the step, applied by up, must be met). Only this test's own runs are
// checked and taken down; each leaves no namespace and no journal behind.
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { nflab, jsonOf, runJournal, runNamespaces } from './system.ts';
import type { StepReport } from '../../src/report/types.ts';

interface CheckJson {
  report: StepReport;
}

/** Traffic a student makes by hand in one run: argv run in `ip netns exec nfl-<run>-<node>`, failures allowed. */
export type HandTraffic = Array<[node: string, argv: string[]]>;

const verdicts = (r: StepReport) => [r.status, ...r.checks.map((c) => `${c.status}  ${c.description}`)];
/** What the checks not met observed: the message tells why a verdict changed, not only that it did. */
const notMet = (r: StepReport) =>
  JSON.stringify(r.checks.filter((c) => c.status !== 'met').map((c) => [c.description, c.observed])).slice(0, 3000);
/** Same verdicts as the first check, or a message with what was observed. */
const same = (t: ExecutionContext, r: StepReport, first: StepReport, what: string) =>
  t.deepEqual(verdicts(r), verdicts(first), `${what}; not met now: ${notMet(r)}`);

/** Two steps' runs at a time (the machine has 2 cores and is shared): the tests of one file wait for a slot. */
let running = 0;
const waiting: (() => void)[] = [];
async function slot<T>(work: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await work();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** Step n of a lab (one test per step, two at a time). */
export async function repeatability(t: ExecutionContext, lab: string, n: number, hand: HandTraffic): Promise<void> {
  // Waiting for a slot makes no assertion (ava's timeout restarts at each one): no limit while waiting.
  t.timeout(30 * 60_000);
  await slot(() => {
    t.timeout(290_000);
    return repeatStep(t, lab, n, hand);
  });
}

async function repeatStep(t: ExecutionContext, lab: string, n: number, hand: HandTraffic): Promise<void> {
  {
    const up = await nflab(['up', lab, '--step', String(n), '--again', '--json']);
    t.is(up.code, 0, `up ${lab} --step ${n}: ${up.stderr.slice(-2000)}`);
    const runId = (jsonOf(up) as { runId: string }).runId;
    try {
      const check = async (when: string) => {
        const r = await nflab(['check', runId, '--step', String(n), '--json']);
        t.true(
          r.code === 0 || r.code === 1,
          `check ${lab} --step ${n} ${when}: exit ${r.code} ${r.stderr.slice(-1000)}`,
        );
        return (jsonOf(r) as CheckJson).report;
      };
      const first = await check('the first time');
      // up applied steps 1..N: step N is met on what it built: every behaviour check, and the reference's
      // counters too unless state the up run left changes them (lab 06: the xt_recent lists already hold
      // both clients, so no connection takes the random choice again: "met, differs from the reference").
      t.true(
        first.status === 'passed' || first.status === 'differs',
        `lab ${lab} step ${n} right after up: ${first.status} ${JSON.stringify(first.checks.filter((c) => c.status !== 'met').map((c) => [c.description, c.hint]))}`,
      );
      t.true(
        first.checks.every((c) => c.about !== 'behaviour' || c.status !== 'not-met'),
        `lab ${lab} step ${n}: a behaviour check is not met right after up`,
      );
      for (const when of ['the second time', 'the third time'])
        same(t, await check(when), first, `lab ${lab} step ${n}, ${when}`);
      // The step's own traffic traced (a step that sends none, rules only, has nothing to trace: exit 2, nothing sent).
      const traced = await nflab(['trace', runId, '--step', String(n)]);
      t.true(
        traced.code === 0 || traced.code === 1 || (traced.code === 2 && /sends no traffic/.test(traced.stderr)),
        `trace ${lab} --step ${n}: exit ${traced.code} ${traced.stderr.slice(-1000)}`,
      );
      same(t, await check('after trace'), first, `lab ${lab} step ${n}, after trace`);
      for (const [node, argv] of hand) {
        try {
          execFileSync('ip', ['netns', 'exec', `nfl-${runId}-${node}`, ...argv], { stdio: 'pipe', timeout: 20_000 });
        } catch {
          /* a connection a student makes may fail: it is traffic all the same */
        }
      }
      same(t, await check('after hand-made traffic'), first, `lab ${lab} step ${n}, after hand-made traffic`);
    } finally {
      const down = await nflab(['down', runId]);
      t.is(down.code, 0, down.stderr);
      t.deepEqual(runNamespaces(runId), [], `run ${runId} left namespaces`);
      t.false(runJournal(runId), `run ${runId} left its journal`);
    }
  }
}
