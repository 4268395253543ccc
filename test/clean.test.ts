// `nflab clean` removes what a SIGKILLed run left behind, and nothing else: a lab brought up on
// purpose with `nflab up` survives it until `nflab down`.
import test from 'ava';
import { containersOf, namespaceInodes, nflab, processesIn, rootState, runJournal, runNamespaces } from './helpers/system.ts';

// Serial: `nflab clean` removes every dead run, so two of these at once would reap each other's.
test.serial('clean removes a SIGKILLed run and leaves a kept lab alone; down removes the kept lab', async (t) => {
  const before = rootState();
  const up = await nflab(['up', '01', '--step', '1', '--json']);
  t.is(up.code, 0, up.stderr + up.stdout.split('\n').filter((l) => l.includes('not-met') || l.includes('reason')).join('\n'));
  const keptRun = (JSON.parse(up.stdout) as { runId: string }).runId;
  t.teardown(() => nflab(['down', keptRun]));
  t.is(runNamespaces(keptRun).length, 3, 'host, c1 and c2 stay up');

  let killedRun = '';
  let inodes: number[] = [];
  const killed = await nflab(['run', '03'], {
    onStdout: (all, child) => {
      killedRun ||= /\(run ([a-z0-9]+)\)/.exec(all)?.[1] ?? '';
      if (inodes.length === 0 && /step 2: /.test(all)) {
        inodes = namespaceInodes(killedRun);
        child.kill('SIGKILL');
      }
    },
  });
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
