// Zero residue: after a passing run, a run with a check not met, and a run interrupted by SIGINT
// in the middle of a step, nothing of the run remains and the root namespace is unchanged.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  namespaceInodes,
  nflab,
  processesIn,
  REPO,
  rootState,
  runJournal,
  runNamespaces,
  jsonOf,
} from './helpers/system.ts';
import type { RunReport } from '../src/report/types.ts';

function assertNoResidue(t: import('ava').ExecutionContext, runId: string, inodes: number[]) {
  t.deepEqual(runNamespaces(runId), [], 'no namespace of the run remains');
  t.deepEqual(processesIn(inodes), [], 'no process lives in a namespace of the run');
  t.false(runJournal(runId), 'the run record is removed');
}

test('a passing run leaves nothing and does not touch the root namespace', async (t) => {
  const before = rootState();
  const r = await nflab(['run', '01', '--json']);
  t.is(r.code, 0, r.stderr);
  const { runId } = (jsonOf(r) as RunReport).labs[0]!;
  assertNoResidue(t, runId, []);
  t.deepEqual(rootState(), before);
});

test('a lab with one expectation reversed exits 1, shows expected against observed, and leaves nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-reversed-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const source = readFileSync(join(REPO, 'labs/01-bridge-forward-drop.ts'), 'utf8');
  // Step 1 expects the ping to fail; this copy claims it succeeds.
  const reversed = source.replace('      c1PingsC2.fails(),\n', '      c1PingsC2.succeeds(),\n');
  t.not(reversed, source);
  const file = join(dir, 'reversed-lab.ts');
  writeFileSync(file, reversed);
  const before = rootState();

  const human = await nflab(['run', file]);
  t.is(human.code, 1);
  // Expected and observed as key: value lines, not raw JSON.
  t.regex(
    human.stdout,
    /✘ ping from c1 to 10\.55\.66\.3 succeeds\n\s+expected: outcome: succeeds\n\s+observed:\n\s+outcome: fails\n\s+transmitted: 1\n\s+received: 0\n/,
  );

  const json = await nflab(['run', file, '--json']);
  t.is(json.code, 1);
  const lab = (jsonOf(json) as RunReport).labs[0]!;
  t.is(lab.status, 'failed');
  const reversedCheck = lab.steps[0]!.checks[0]!;
  t.is(reversedCheck.status, 'not-met');
  t.deepEqual(reversedCheck.expected, { outcome: 'succeeds' });
  t.like(reversedCheck.observed, { outcome: 'fails', received: 0 });
  // Only that check differs: the rest of the lab still holds.
  t.is(lab.steps.flatMap((s) => s.checks).filter((c) => c.status === 'not-met').length, 1);
  assertNoResidue(t, lab.runId, []);
  t.deepEqual(rootState(), before);
});

test('SIGINT in the middle of a step tears everything down, and the next run passes', async (t) => {
  const before = rootState();
  let runId = '';
  let inodes: number[] = [];
  let sent = false;
  // Lab 03 step 5 waits for a TCP timeout (2 s): interrupt while the step is waiting.
  const r = await nflab(['run', '03'], {
    onStdout: (all, child) => {
      runId ||= /\(run ([a-z0-9]+)\)/.exec(all)?.[1] ?? '';
      if (!sent && /step 4: /.test(all)) {
        sent = true;
        inodes = namespaceInodes(runId);
        setTimeout(() => child.kill('SIGINT'), 500);
      }
    },
  });
  t.true(sent, 'the run reached step 5');
  t.is(r.code, 130, r.stdout + r.stderr);
  t.regex(r.stdout, /interrupted/);
  t.true(inodes.length >= 4, 'the namespaces existed while the step ran');
  assertNoResidue(t, runId, inodes);
  t.deepEqual(rootState(), before);
  const again = await nflab(['run', '03']);
  t.is(again.code, 0, again.stdout);
});
