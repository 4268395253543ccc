// `nflab watch`: re-judges a step on a lab that is up while the student types, ends with exit 0
// once the step works (here: Docker's own MASQUERADE rule, "met, differs from the reference"), and
// ends cleanly on SIGINT (Ctrl-C), leaving the run as it was and no observer running in it.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { nflab, jsonOf, namespaceInodes, processesIn, runJournal, runNamespaces } from './helpers/system.ts';

test.serial(
  'watch 02 --step 4: not met until the student types a MASQUERADE rule, then ends met; Ctrl-C ends it with the lab intact',
  async (t) => {
    const up = await nflab(['up', '02', '--step', '3', '--again', '--json']);
    t.is(up.code, 0, up.stderr);
    const runId = (jsonOf(up) as { runId: string }).runId;
    t.teardown(async () => {
      await nflab(['down', runId]);
    });
    const host = `nfl-${runId}-host`;

    // Ctrl-C while it waits: exit 130, nothing of the run changed, no tcpdump or tracer left in its namespaces.
    const inodes = namespaceInodes(runId);
    const before = processesIn(inodes).length;
    let interrupted = false;
    const stopped = await nflab(['watch', runId, '--step', '4', '--every', '1'], {
      onStdout: (all, child) => {
        if (!interrupted && /round 1 at .*not met/.test(all)) {
          interrupted = true;
          child.kill('SIGINT');
        }
      },
    });
    t.true(interrupted, stopped.stdout + stopped.stderr);
    t.is(stopped.code, 130, stopped.stderr);
    t.regex(stopped.stdout, /stopped; the lab is still up as you left it/);
    t.is(runNamespaces(runId).length, 3);
    t.is(processesIn(inodes).length, before, "no observer of the watch is left in the run's namespaces");

    // The student types the rule after the first round; the watch ends by itself.
    let typed = false;
    const watched = await nflab(['watch', runId, '--step', '4', '--every', '1', '--rounds', '30'], {
      onStdout: (all) => {
        if (!typed && /round 1 at .*not met/.test(all)) {
          typed = true;
          execFileSync('ip', [
            'netns',
            'exec',
            host,
            'iptables',
            '-t',
            'nat',
            '-A',
            'POSTROUTING',
            '-s',
            '10.55.66.0/24',
            '!',
            '-o',
            'hwchiu0',
            '-j',
            'MASQUERADE',
          ]);
        }
      },
    });
    t.true(typed);
    t.is(watched.code, 0, watched.stdout.slice(-3000) + watched.stderr);
    t.regex(
      watched.stdout,
      /✘ ping from c1 to 198\.51\.100\.8 succeeds — /,
      'the first round shows the ping not met, with its hint',
    );
    t.regex(watched.stdout, /10 of 11 checks met — met, differs from the reference\n$/);

    await nflab(['down', runId]);
    t.deepEqual(runNamespaces(runId), []);
    t.false(runJournal(runId));
  },
);
