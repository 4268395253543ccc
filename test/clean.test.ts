// `nflab clean` removes what a SIGKILLed run left behind, and nothing else: a lab brought up on
// purpose with `nflab up` survives it until `nflab down`. A SIGKILLed run's own watchdog cleans up
// after it (interrupt.test.ts); here the watchdog is SIGKILLed first, as when everything is killed
// at once, so that only the journal and `nflab clean` are left.
import test from 'ava';
import { containersOf, nflab, processesIn, rootState, runJournal, runNamespaces, jsonOf } from './helpers/system.ts';
import { assertNoResidue, killWatchdog, pinNamespaces, processGone, type Pinned } from './helpers/residue.ts';
import type { ProcessRef } from '../src/engine/journal.ts';
import { listLabs } from './helpers/interrupt.ts';

// Serial: `nflab clean` removes every dead run, so two of these at once would reap each other's.
test.serial('clean removes a SIGKILLed run and leaves a kept lab alone; down removes the kept lab', async (t) => {
  const before = rootState();
  const up = await nflab(['up', '01', '--step', '1', '--json', '--again']);
  t.is(
    up.code,
    0,
    up.stderr +
      up.stdout
        .split('\n')
        .filter((l) => l.includes('not-met') || l.includes('reason'))
        .join('\n'),
  );
  const keptRun = (jsonOf(up) as { runId: string }).runId;
  t.teardown(() => nflab(['down', keptRun]));
  t.is(runNamespaces(keptRun).length, 3, 'host, c1 and c2 stay up');

  let killedRun = '';
  let pinned: Pinned | undefined;
  let watchdog: ProcessRef | undefined;
  const killed = await nflab(['run', '03'], {
    onStdout: (all, child) => {
      killedRun ||= /\(run ([a-z0-9]+)\)/.exec(all)?.[1] ?? '';
      if (!pinned && /step 2: /.test(all)) {
        pinned = pinNamespaces(killedRun);
        watchdog = killWatchdog(killedRun);
        child.kill('SIGKILL');
      }
    },
  });
  t.teardown(() => pinned?.release());
  const inodes = pinned?.inodes ?? [];
  t.true(await processGone(watchdog), 'the watchdog was killed first');
  t.is(killed.signal, 'SIGKILL');
  t.true(runNamespaces(killedRun).length > 0, 'a SIGKILLed run leaves its namespaces behind');
  t.true(runJournal(killedRun), 'and its journal');

  const clean = await nflab(['clean']);
  t.is(clean.code, 0, clean.stderr);
  t.regex(clean.stdout, new RegExp(`run ${killedRun} \\(lab 03\\): removed .*namespace nfl-${killedRun}-host`));
  t.deepEqual(runNamespaces(killedRun), []);
  t.deepEqual(processesIn(inodes), [], 'the responder in c1 is gone too');
  t.false(runJournal(killedRun));
  t.is(runNamespaces(keptRun).length, 3, 'the lab that is up was not touched');

  const down = await nflab(['down', keptRun]);
  t.is(down.code, 0);
  t.deepEqual(runNamespaces(keptRun), []);
  t.deepEqual(rootState(), before);
});

test.serial('nflab clean removes the containers of a SIGKILLed Docker-mode run', async (t) => {
  let runId = '';
  let seen = 0;
  const killed = await nflab(['run', '02', '--nodes', 'docker'], {
    onStdout: (all, child) => {
      runId ||= /\(run ([a-z0-9]+)\)/.exec(all)?.[1] ?? '';
      if (!seen && /step 1: /.test(all)) {
        seen = containersOf(runId).length;
        killWatchdog(runId);
        child.kill('SIGKILL');
      }
    },
  });
  t.is(killed.signal, 'SIGKILL');
  t.is(seen, 1);
  t.deepEqual(containersOf(runId).length, 1, 'SIGKILL leaves the container behind');
  const clean = await nflab(['clean']);
  t.is(clean.code, 0, clean.stderr);
  t.regex(clean.stdout, new RegExp(`run ${runId} \\(lab 02\\): removed .*container nfl-${runId}-c1`));
  t.deepEqual(containersOf(runId), []);
  t.deepEqual(runNamespaces(runId), []);
});

// Every phase: while the journal is being written and the namespaces created, in each step, and
// during teardown. The watchdog is killed as soon as the journal names it, nflab at the point.
const lab01 = listLabs().find((l) => l.id === '01')!;
const JOURNAL = /\(run [a-z0-9]+\)/;
const PHASES: { name: string; after: RegExp; delayMs: number }[] = [
  { name: 'set-up, as soon as the journal exists', after: JOURNAL, delayMs: 0 },
  { name: 'set-up, 150 ms in', after: JOURNAL, delayMs: 150 },
  { name: 'set-up, 400 ms in', after: JOURNAL, delayMs: 400 },
  ...Array.from({ length: lab01.steps }, (_, i) => ({
    name: `step ${i + 1}`,
    after: i === 0 ? /topology built/ : new RegExp(`step ${i}: `),
    delayMs: 40,
  })),
  { name: 'teardown, at once', after: new RegExp(`step ${lab01.steps}: `), delayMs: 0 },
  { name: 'teardown, 5 ms in', after: new RegExp(`step ${lab01.steps}: `), delayMs: 5 },
];

test.serial(
  `nflab clean after a SIGKILL in every phase of lab 01 (${PHASES.length} points) leaves the machine as it was`,
  async (t) => {
    t.timeout(10 * 60_000);
    const before = rootState();
    for (const phase of PHASES) {
      let runId = '';
      let pinned: Pinned = { inodes: [], release: () => {} };
      let watchdogKilled = false;
      let due = false;
      let armed = false;
      let poll: NodeJS.Timeout | undefined;
      const killed = await nflab(['run', '01'], {
        onStdout: (all, child) => {
          const kill = () => {
            pinned = pinNamespaces(runId);
            child.kill('SIGKILL');
          };
          if (!runId && (runId = /\(run ([a-z0-9]+)\)/.exec(all)?.[1] ?? '')) {
            // The journal is written right after the run line; its watchdog dies the moment it is
            // named, and nflab only after that (at once, if its point has already come).
            poll = setInterval(() => {
              if (!runJournal(runId)) return;
              clearInterval(poll);
              watchdogKilled = killWatchdog(runId) !== undefined;
              if (due) kill();
              else if (phase.after === JOURNAL) setTimeout(kill, phase.delayMs);
            }, 1);
          }
          if (armed || phase.after === JOURNAL || !phase.after.test(all)) return;
          armed = true;
          setTimeout(() => {
            due = true;
            if (watchdogKilled) kill();
          }, phase.delayMs);
        },
      });
      clearInterval(poll);
      const label = `SIGKILL in ${phase.name} (run ${runId})`;
      t.true(watchdogKilled, `${label}: the watchdog was killed first`);
      t.is(killed.signal, 'SIGKILL', `${label}: nflab was killed\n${killed.stdout}`);
      if (!runJournal(runId) && phase.name.startsWith('teardown')) {
        // Lab 01 tears down in a few milliseconds: a kill that came after teardown had finished (and
        // removed the journal) leaves nothing to clean, and nothing at all.
        t.log(`${label}: teardown had already finished`);
        await assertNoResidue(t, runId, label, { inodes: pinned.inodes });
        pinned.release();
        continue;
      }
      t.true(runJournal(runId), `${label}: the journal survives the kill`);
      const clean = await nflab(['clean']);
      t.is(clean.code, 0, `${label}: ${clean.stderr}`);
      t.regex(clean.stdout, new RegExp(`run ${runId} \\(lab 01\\): removed`), label);
      await assertNoResidue(t, runId, label, { inodes: pinned.inodes });
      pinned.release();
    }
    t.deepEqual(rootState(), before, 'the root namespace is as it was');
    const next = await nflab(['run', '01']);
    t.is(next.code, 0, next.stdout);
  },
);
