// Cleanup that never gives up (issue 17, item 3): an `nflab up` SIGKILLed at any point of its
// build or its steps leaves nothing once its watchdog (or `nflab clean`) has run; `clean --all` and
// `down` leave alone a run whose `up` is still alive; a damaged journal record is reported (which
// file, what is wrong) and the other dead runs are still cleaned. Every test uses a journal
// directory of its own (NFLAB_RUNTIME_DIR), so `clean` never sees a run this file did not start.
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootState, runNamespaces } from './helpers/system.ts';
import { assertNoResidue, pinNamespaces, processGone, stillRunning, type Pinned } from './helpers/residue.ts';
import { limiter } from './helpers/interrupt.ts';
import { privateJournal, type PrivateJournal } from './helpers/private-journal.ts';
import type { ProcessRef } from '../src/engine/journal.ts';

const LAB = '01';
const STEPS = 5;
const RUN_LINE = /\(run ([a-z0-9]+)\)/;
const BUILT = /topology built/;
const IS_UP = /is up \(run /;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SLOW_LAB = `import { defineLab, ping } from 'nflab';
export default defineLab({
  id: 'slow', title: 'a lab whose step takes 40 s', summary: 's', source: { title: 'none' },
  topology: {
    nodes: { host: { role: 'host' }, c1: { role: 'container' }, c2: { role: 'container' } },
    links: [
      { a: { node: 'c1', name: 'eth0', addresses: ['10.88.0.2/24'] }, b: { node: 'host', name: 'veth0', addresses: ['10.88.0.1/24'] } },
      { a: { node: 'c2', name: 'eth0', addresses: ['10.88.1.2/24'] }, b: { node: 'host', name: 'veth1', addresses: ['10.88.1.1/24'] } },
    ],
  },
  steps: [{ title: '200 pings', expect: [ping('c1', '10.88.0.1', { count: 100 }).succeeds(), ping('c2', '10.88.1.1', { count: 100 }).succeeds()] }],
});
`;

async function waitFor(what: () => boolean, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!what()) {
    if (Date.now() > until) return false;
    await sleep(25);
  }
  return true;
}

/** An uninterrupted `up`: how long its build and its steps take after the run line. */
async function measureUp(): Promise<{ buildMs: number; stepsMs: number }> {
  const j = privateJournal('measure');
  try {
    let runAt = 0,
      builtAt = 0,
      upAt = 0;
    const r = await j.nflab(['up', LAB, '--step', String(STEPS)], (all) => {
      const now = Date.now();
      if (!runAt && RUN_LINE.test(all)) runAt = now;
      if (!builtAt && BUILT.test(all)) builtAt = now;
      if (!upAt && IS_UP.test(all)) upAt = now;
    });
    if (r.code !== 0) throw new Error(`the uninterrupted up failed:\n${r.stdout}\n${r.stderr}`);
    const runId = RUN_LINE.exec(r.stdout)![1]!;
    const down = await j.nflab(['down', runId]);
    if (down.code !== 0 || runNamespaces(runId).length > 0)
      throw new Error(`down after the measuring up failed: ${down.stderr}`);
    return { buildMs: builtAt - runAt, stepsMs: upAt - builtAt };
  } finally {
    j.remove();
  }
}

interface Killed {
  runId: string;
  phase: string;
  tooLate: boolean;
  pinned: Pinned;
  watchdog?: ProcessRef;
  code: number | null;
  signal: string | null;
}

/** `nflab up` SIGKILLed `delayMs` after its run line; with `killWatchdogFirst`, its watchdog dies
 * first (as when everything is killed at once), so only `nflab clean` is left to clean. */
async function killUp(
  j: PrivateJournal,
  point: { after: RegExp; delayMs: number },
  killWatchdogFirst: boolean,
): Promise<Killed> {
  let runId = '';
  let pinned: Pinned = { inodes: [], release: () => {} };
  let watchdog: ProcessRef | undefined;
  let phase = 'before the run line';
  let tooLate = false;
  let armed = false;
  let lastOut = '';
  const r = await j.nflab(['up', LAB, '--step', String(STEPS)], (all, child) => {
    lastOut = all;
    if (armed) return;
    runId ||= RUN_LINE.exec(all)?.[1] ?? '';
    if (!runId) return;
    armed = true;
    let startedAt = 0;
    const poll = setInterval(() => {
      if (child.exitCode !== null || child.signalCode !== null) {
        clearInterval(poll);
        return;
      }
      const record = j.record(runId);
      if (killWatchdogFirst && !watchdog) {
        // The watchdog dies as soon as the journal names it; nflab only after that.
        if (!record?.watchdog) return;
        watchdog = record.watchdog;
        try {
          process.kill(watchdog.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      // The point: its delay after its progress line (the run line, or "topology built").
      if (!startedAt && point.after.test(lastOut)) startedAt = Date.now();
      if (!startedAt || Date.now() - startedAt < point.delayMs) return;
      clearInterval(poll);
      watchdog ??= record?.watchdog;
      pinned = pinNamespaces(runId);
      tooLate = IS_UP.test(lastOut);
      phase = phaseOf(
        lastOut,
        record ? (record.building ? 'record says building' : 'record says finished') : 'no record yet',
      );
      child.kill('SIGKILL');
    }, 2);
  });
  // An up that ended before its point came (it was faster than measured) is up, or failed.
  if (r.signal === null) {
    tooLate = true;
    phase = 'ended first';
  }
  return { runId, phase, tooLate, pinned, watchdog, code: r.code, signal: r.signal };
}
/** Where a run was, from the last progress line it printed: the build, or the step it was in. */
function phaseOf(out: string, record: string): string {
  if (IS_UP.test(out)) return 'up';
  const done = [...out.matchAll(/[✔✘] step (\d+): /g)].map((m) => Number(m[1]));
  if (done.length > 0) return `step ${Math.max(...done) + 1}`;
  return BUILT.test(out) ? 'step 1' : `build (${record})`;
}

const timing = measureUp();

test.serial(
  'SIGKILL at 24 points of nflab up (build and steps) leaves nothing after the watchdog or nflab clean',
  async (t) => {
    t.timeout(20 * 60_000);
    const { buildMs, stepsMs } = await timing;
    t.log(`uninterrupted up ${LAB} --step ${STEPS}: build ${buildMs} ms, steps ${stepsMs} ms`);
    const before = rootState();
    // Half the points in the build (where an up killed used to be recorded as kept on purpose), half in the steps.
    const points = [
      ...Array.from({ length: 12 }, (_, i) => ({
        after: RUN_LINE,
        delayMs: Math.floor(((i + 0.5) / 12) * 0.8 * buildMs),
      })),
      ...Array.from({ length: 12 }, (_, i) => ({
        after: BUILT,
        delayMs: Math.floor(((i + 0.5) / 12) * 0.8 * stepsMs),
      })),
    ];
    const slot = limiter(2);
    let landed = 0;
    const phases: string[] = [];
    await Promise.all(
      points.map((point, i) =>
        slot(async () => {
          const j = privateJournal(`up-kill-${i}`);
          const byClean = i % 2 === 1;
          try {
            const killed = await killUp(j, point, byClean);
            const label = `SIGKILL ${point.delayMs} ms after ${point.after === BUILT ? '"topology built"' : 'the run line'} (${killed.phase}), cleaned by ${byClean ? 'nflab clean' : 'the watchdog'} (run ${killed.runId})`;
            if (killed.tooLate) {
              // The up had finished: the lab is up on purpose, and down removes it.
              t.log(`${label}: the lab was already up`);
              await j.nflab(['down', killed.runId]);
            } else {
              landed++;
              phases.push(killed.phase);
              t.is(killed.signal, 'SIGKILL', `${label}: nflab was killed`);
              if (byClean) {
                t.true(await processGone(killed.watchdog), `${label}: the watchdog was killed first`);
                const clean = await j.nflab(['clean']);
                t.is(clean.code, 0, `${label}: ${clean.stderr}`);
                if (j.hasRecord(killed.runId) || runNamespaces(killed.runId).length > 0)
                  t.fail(`${label}: clean left the run: ${clean.stdout}`);
              } else {
                t.true(
                  await waitFor(() => !j.hasRecord(killed.runId), 60_000),
                  `${label}: the watchdog removed the run's record`,
                );
              }
            }
            t.false(j.hasRecord(killed.runId), `${label}: no record of the run is left`);
            await assertNoResidue(t, killed.runId, label, { inodes: killed.pinned.inodes, watchdog: killed.watchdog });
            killed.pinned.release();
          } finally {
            j.remove();
          }
        }),
      ),
    );
    t.log(`${landed} of ${points.length} kills landed before the lab was up: ${phases.join(', ')}`);
    t.true(landed >= 20, `at least 20 kills landed in the build or the steps (${landed})`);
    t.true(phases.filter((p) => p.startsWith('build')).length >= 8, 'at least 8 of them in the build');
    t.true(phases.filter((p) => p.startsWith('step')).length >= 6, 'at least 6 of them in the steps');
    t.deepEqual(rootState(), before, 'the root namespace is as it was');
  },
);

test.serial('clean --all and down beside a live nflab up leave it alone; it comes up whole', async (t) => {
  t.timeout(5 * 60_000);
  const j = privateJournal('beside-up');
  t.teardown(() => j.remove());
  // A step of 200 pings (40 s): long enough for clean and down to run beside it on a loaded machine.
  const dir = mkdtempSync(join(tmpdir(), 'nflab-beside-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'slow.ts');
  writeFileSync(file, SLOW_LAB);
  const lab = 'slow';
  let runId = '';
  let beside:
    | Promise<{
        clean: Awaited<ReturnType<PrivateJournal['nflab']>>;
        down: Awaited<ReturnType<PrivateJournal['nflab']>>;
        upAliveAfter: boolean;
        building?: boolean;
        namespaces: number;
      }>
    | undefined;
  const up = await j.nflab(['up', file, '--step', '1'], (all, child) => {
    runId ||= RUN_LINE.exec(all)?.[1] ?? '';
    // Once the nodes exist and while the steps run: the record says kept (an up) and building.
    if (beside || !BUILT.test(all)) return;
    beside = (async () => {
      const namespaces = runNamespaces(runId).length;
      const building = j.record(runId)?.building;
      const [clean, down] = await Promise.all([j.nflab(['clean', '--all']), j.nflab(['down', lab])]);
      return { clean, down, namespaces, building, upAliveAfter: child.exitCode === null && child.signalCode === null };
    })();
  });
  t.teardown(() => j.nflab(['down', runId]));
  if (!beside) t.fail(`the up never built its nodes:\n${up.stdout}\n${up.stderr}`);
  const seen = await beside!;
  t.true(seen.upAliveAfter, 'clean --all and down ran while the up was still running its steps');
  t.is(seen.building, true, 'the record says the run is still being built');
  const planned = j.record(runId)?.netns.length ?? -1;
  t.true(
    planned >= 3 && seen.namespaces === planned,
    `the nodes existed when clean --all ran (${seen.namespaces} of ${planned})`,
  );
  t.is(seen.clean.code, 0, seen.clean.stderr);
  t.regex(seen.clean.stdout, /nothing to clean/, 'clean --all removed nothing');
  t.is(seen.down.code, 2, `down refuses: ${seen.down.stderr}`);
  t.regex(seen.down.stderr, /still being (brought up|built)/);
  t.is(up.code, 0, up.stdout + up.stderr);
  t.regex(up.stdout, new RegExp(`lab ${lab} is up \\(run ${runId}`));
  t.is(runNamespaces(runId).length, planned, 'every node is there after the up');
  t.is(j.record(runId)?.building, false, 'the record now says the lab is up, finished');
  const down = await j.nflab(['down', lab]);
  t.is(down.code, 0, down.stderr);
  t.deepEqual(runNamespaces(runId), []);
});

test.serial(
  'a damaged journal record is reported (file, what is wrong) and the other dead runs are still cleaned',
  async (t) => {
    t.timeout(5 * 60_000);
    const j = privateJournal('damaged');
    t.teardown(() => j.remove());
    mkdirSync(`${j.dir}/runs`, { recursive: true });
    // Sorted around the real run, so that whatever order the directory lists them in, one comes first.
    writeFileSync(
      `${j.dir}/runs/aaaaaa.json`,
      JSON.stringify({
        runId: 'aaaaaa',
        pid: 999999,
        labId: '01',
        driver: 'netns',
        kept: false,
        netns: 5,
        containers: false,
        createdAt: 'x',
      }),
    );
    writeFileSync(`${j.dir}/runs/zzzzzz.json`, '{"runId": "zzzzzz", "pid": 99999');
    // A real dead run: SIGKILLed in step 2 after its watchdog.
    let runId = '';
    let pinned: Pinned = { inodes: [], release: () => {} };
    let watchdog: ProcessRef | undefined;
    const killed = await j.nflab(['run', LAB], (all, child) => {
      runId ||= RUN_LINE.exec(all)?.[1] ?? '';
      if (watchdog || !/step 2: /.test(all)) return;
      watchdog = j.record(runId)?.watchdog;
      if (watchdog)
        try {
          process.kill(watchdog.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      pinned = pinNamespaces(runId);
      child.kill('SIGKILL');
    });
    t.teardown(() => pinned.release());
    t.is(killed.signal, 'SIGKILL');
    t.true(await processGone(watchdog), 'the watchdog was killed first');
    t.true(runNamespaces(runId).length > 0, 'the killed run left its namespaces');
    const clean = await j.nflab(['clean']);
    t.regex(
      clean.stdout,
      new RegExp(`run ${runId} \\(lab ${LAB}\\): removed .*namespace nfl-${runId}-host`),
      'the dead run was cleaned',
    );
    t.regex(
      clean.stderr,
      new RegExp(`journal record ${j.dir}/runs/aaaaaa\\.json field "netns" must be an array of namespace names`),
      clean.stderr,
    );
    t.regex(
      clean.stderr,
      new RegExp(`journal record ${j.dir}/runs/zzzzzz\\.json is not valid JSON \\(truncated\\?\\)`),
      clean.stderr,
    );
    t.notRegex(clean.stderr, /TypeError|\n\s+at /, 'no crash');
    t.is(clean.code, 3, "exit 3: the damaged records are the environment's to fix");
    t.deepEqual(
      j.files().sort(),
      ['aaaaaa', 'zzzzzz'],
      "the damaged records are left in place, the cleaned run's record is gone",
    );
    await assertNoResidue(t, runId, 'after clean', { inodes: pinned.inodes, watchdog });
    t.false(stillRunning(watchdog));
  },
);
