// Interruption at any point: every lab in labs/ is interrupted with SIGINT, SIGTERM and SIGKILL at
// points spread over its set-up, each of its steps and its teardown (at least 50 points per signal
// over the suite). Afterwards nothing of the run remains — for SIGKILL, once the run's watchdog has
// replayed its journal — the root namespace is unchanged, and the next run of the lab passes.
//
// Reproduce a failure with the seed the log prints: NFLAB_INTERRUPT_SEED=<seed> npx ava test/interrupt.test.ts
import test from 'ava';
import { containersOf, nflab, rootState } from './helpers/system.ts';
import { assertNoResidue, journalGone, readJournal } from './helpers/residue.ts';
import type { ProcessRef } from '../src/engine/journal.ts';
import {
  choosePoints,
  interruptAt,
  limiter,
  listLabs,
  measure,
  prng,
  type LabInfo,
  type Timeline,
} from './helpers/interrupt.ts';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGKILL'] as const;
const EXIT_CODE: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };
/** Signals that must arrive while a run is setting up, in a step or tearing down, per signal. */
const POINTS_PER_SIGNAL = 50;
/** Points planned per signal: some land after a run that went faster than measured has ended. */
const PLANNED_PER_SIGNAL = 60;
const seed = Number(process.env.NFLAB_INTERRUPT_SEED ?? Math.floor(Math.random() * 2 ** 31));
const slot = limiter(Number(process.env.NFLAB_INTERRUPT_PARALLEL ?? 3));
/** Series at once: enough to keep every run slot busy, few enough that results come steadily. */
const series = limiter(4);
const labs = listLabs();
const perLab = Math.max(4, Math.ceil(PLANNED_PER_SIGNAL / labs.length));
const landed = new Map<string, number>(SIGNALS.map((s) => [s, 0]));
let seriesDone = 0;
const timelines = new Map<string, Promise<Timeline>>();
const timelineOf = (lab: LabInfo) => {
  if (!timelines.has(lab.id))
    timelines.set(
      lab.id,
      slot(() => measure(lab)),
    );
  return timelines.get(lab.id)!;
};
const STACK_TRACE = /\n\s+at .+:\d+:\d+\)?\n/;

console.log(
  `interrupt.test.ts: seed ${seed} (NFLAB_INTERRUPT_SEED=${seed} reproduces the points), ${perLab} points per lab and signal over ${labs.length} labs`,
);

test.after('each signal arrived at 50 or more points while a run was setting up, in a step, or tearing down', (t) => {
  if (seriesDone < labs.length * SIGNALS.length) return; // a --match run of a few series
  for (const [signal, n] of landed) t.true(n >= POINTS_PER_SIGNAL, `${signal}: ${n} points landed in a run`);
  t.log([...landed].map(([signal, n]) => `${signal}: ${n} points in runs`).join(', '));
});

for (const lab of labs) {
  for (const [s, signal] of SIGNALS.entries()) {
    test(`${signal} at ${perLab} points of lab ${lab.id} (set-up, steps, teardown) leaves nothing behind, and the next run passes`, async (t) => {
      t.timeout(15 * 60_000);
      t.log(`seed ${seed}`);
      await series(async () => {
        const timeline = await timelineOf(lab);
        // A lab whose own checks fail (work in progress) is still interrupted: residue does not depend
        // on verdicts. It must at least run to its end with a report.
        const baseline = timeline.result.code;
        t.true(
          baseline === 0 || baseline === 1,
          `the uninterrupted run ends with a report:\n${timeline.result.stdout}${timeline.result.stderr}`,
        );
        if (baseline !== 0 && baseline !== 1) return;
        if (baseline === 1)
          t.log(
            `lab ${lab.id} does not pass even uninterrupted (the next run need only end with a report):\n${timeline.result.stdout
              .split('\n')
              .filter((l) => /✘|!/.test(l))
              .join('\n')}`,
          );
        const points = choosePoints(timeline, perLab, prng(seed + s * 7919 + Number.parseInt(lab.id, 36)));
        const before = rootState();
        const hits = new Map<string, number>();

        await Promise.all(
          points.map((point) =>
            slot(async () => {
              const run = await interruptAt(lab, signal, point);
              try {
                const label = `${signal} ${point.delayMs} ms into ${point.phase} (hit: ${run.phaseHit}, run ${run.runId})`;
                hits.set(run.phaseHit, (hits.get(run.phaseHit) ?? 0) + 1);
                t.true(run.runId !== '', `${label}: the run started`);
                t.notRegex(run.result.stderr, STACK_TRACE, `${label}: no stack trace`);
                // What the test had read lags behind: a run that printed its summary had finished teardown,
                // and may have exited normally before the signal came.
                const finished =
                  /checks met, /.test(run.result.stdout) && (run.result.code === 0 || run.result.code === 1);
                if (signal === 'SIGKILL') {
                  t.true(
                    !run.sent || run.result.signal === 'SIGKILL' || finished,
                    `${label}: killed (exit ${run.result.code} ${run.result.signal})`,
                  );
                  // Nothing of nflab runs any more: the watchdog alone removes the run.
                  t.true(await journalGone(run.runId), `${label}: the watchdog replays the journal within 30 s`);
                } else if (run.sent && run.phaseHit !== 'after') {
                  // Before its handlers are released nflab tears down and exits 130/143; after, the signal ends it.
                  t.true(
                    run.result.code === EXIT_CODE[signal] || run.result.signal === signal || finished,
                    `${label}: exit ${run.result.code} ${run.result.signal}\n${run.result.stdout}${run.result.stderr}`,
                  );
                } else {
                  // The run had printed its summary: it ends normally, or the signal ends it on its way out.
                  t.true(
                    run.result.code === 0 || run.result.code === 1 || run.result.signal === signal,
                    `${label}: the run had ended: exit ${run.result.code} ${run.result.signal}\n${run.result.stderr}`,
                  );
                }
                await assertNoResidue(t, run.runId, label, { inodes: run.inodes, watchdog: run.watchdog });
              } finally {
                run.pinned.release();
              }
            }),
          ),
        );

        t.log(`phases hit: ${[...hits].map(([p, n]) => `${p} ×${n}`).join(', ')}`);
        const inRun = [...hits]
          .filter(([p]) => !['after', 'startup', 'ended first'].includes(p))
          .reduce((sum, [, n]) => sum + n, 0);
        landed.set(signal, landed.get(signal)! + inRun);
        seriesDone++;
        t.deepEqual(rootState(), before, 'the root namespace is unchanged');
        let next = await slot(() => nflab(['run', lab.id]));
        if (baseline === 0 && next.code === 1) {
          // What an interruption breaks stays broken; a check that fails once and then holds is the
          // lab's own flakiness (scripts/soak.sh measures it): logged, and run once more.
          t.log(
            `lab ${lab.id}: the next run failed once, running it again:\n${next.stdout
              .split('\n')
              .filter((l) => /✘|expected|observed/.test(l))
              .join('\n')}`,
          );
          next = await slot(() => nflab(['run', lab.id]));
        }
        if (baseline === 0) t.is(next.code, 0, `the next run of lab ${lab.id} passes:\n${next.stdout}${next.stderr}`);
        else
          t.true(
            next.code === 0 || next.code === 1,
            `the next run of lab ${lab.id} ends with a report:\n${next.stdout}${next.stderr}`,
          );
      });
    });
  }
}

test('SIGKILL of a Docker-mode run: the watchdog removes its containers and the observers inside them', async (t) => {
  t.timeout(5 * 60_000);
  const lab = labs.find((l) => l.id === '02') ?? labs[0]!;
  let runId = '';
  let killed = false;
  let watchdog: ProcessRef | undefined;
  const r = await slot(() =>
    nflab(['run', lab.id, '--nodes', 'docker'], {
      onStdout: (all, child) => {
        runId ||= /\(run ([a-z0-9]+)\)/.exec(all)?.[1] ?? '';
        // Step 1's captures run tcpdump inside the container's namespace with nsenter.
        if (!killed && /topology built/.test(all)) {
          killed = true;
          setTimeout(() => {
            watchdog = readJournal(runId)?.watchdog;
            child.kill('SIGKILL');
          }, 300);
        }
      },
    }),
  );
  t.is(r.signal, 'SIGKILL', r.stdout + r.stderr);
  t.true(await journalGone(runId), 'the watchdog replays the journal');
  t.deepEqual(containersOf(runId), [], 'no container of the run remains');
  await assertNoResidue(t, runId, `docker run ${runId}`, { inodes: [], watchdog, containers: true });
});
