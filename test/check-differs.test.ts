// A working answer other than the reference's: Docker's own MASQUERADE rule in lab 02 step 4
// (`-s 10.55.66.0/24 ! -o hwchiu0`, not the reference's `-s 10.55.66.2/32 -o eth0`). `nflab check`
// says "met, differs from the reference" (exit 0) and names the rule that counted instead; `nflab
// run` of the same answer stays strict for CI (not met, exit 1).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, nflab, jsonOf, runJournal, runNamespaces } from './helpers/system.ts';
import type { LabReport, StepReport } from '../src/report/types.ts';

const DOCKER_RULE = '-s 10.55.66.0/24 ! -o hwchiu0 -j MASQUERADE';

test.serial(
  "lab 02 step 4 with Docker's MASQUERADE rule: check says met, differs from the reference, and shows the rule that counted",
  async (t) => {
    const up = await nflab(['up', '02', '--step', '3', '--again', '--json']);
    t.is(up.code, 0, up.stderr);
    const runId = (jsonOf(up) as { runId: string }).runId;
    t.teardown(async () => {
      await nflab(['down', runId]);
    });
    execFileSync('ip', [
      'netns',
      'exec',
      `nfl-${runId}-host`,
      'iptables',
      '-t',
      'nat',
      '-A',
      'POSTROUTING',
      ...DOCKER_RULE.split(' '),
    ]);

    const r = await nflab(['check', runId, '--step', '4', '--json']);
    t.is(r.code, 0, r.stdout.slice(-3000) + r.stderr);
    const report = (jsonOf(r) as { report: StepReport }).report;
    t.is(report.status, 'differs');
    const notMet = report.checks.filter((c) => c.status !== 'met');
    t.is(notMet.length, 1, JSON.stringify(notMet));
    t.is(notMet[0]!.kind, 'counter');
    t.is(notMet[0]!.about, 'reference');
    t.regex(
      notMet[0]!.hint ?? '',
      /-A POSTROUTING -s 10\.55\.66\.0\/24 ! -o hwchiu0 -j MASQUERADE counted 1 packet, 84 bytes/,
    );
    // Every behaviour check (ping, captures, conntrack, paths) is met.
    const behaviour = report.checks.filter((c) => c.about === 'behaviour');
    t.true(
      behaviour.length >= 9 && behaviour.every((c) => c.status === 'met'),
      JSON.stringify(behaviour.map((c) => [c.kind, c.status])),
    );

    const text = await nflab(['check', runId, '--step', '4']);
    t.is(text.code, 0);
    t.regex(text.stdout, /step 4: 10 of 11 checks met — met, differs from the reference/);
    t.regex(text.stdout, /≠ differs {2}MASQUERADE counts one flow/);
    t.regex(
      text.stdout,
      /yours: the reference rule "-s 10\.55\.66\.2\/32 -o eth0 -j MASQUERADE" is not in nat POSTROUTING on host; in its place, -A POSTROUTING -s 10\.55\.66\.0\/24 ! -o hwchiu0 -j MASQUERADE counted/,
    );

    await nflab(['down', runId]);
    t.deepEqual(runNamespaces(runId), []);
    t.false(runJournal(runId));
  },
);

test.serial('the same answer in nflab run (CI) is not met: run stays strict', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-differs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Lab 02 up to step 4, whose command is Docker's rule instead of the reference's.
  const file = join(dir, 'docker-masquerade.ts');
  writeFileSync(
    file,
    [
      `import lab from ${JSON.stringify(join(REPO, 'labs/02-masquerade-outside.ts'))};`,
      "import { cmd, defineLab } from 'nflab';",
      `export default defineLab({ ...lab, steps: lab.steps.slice(0, 4).map((s, i) => (i === 3 ? { ...s, run: [cmd('host', ${JSON.stringify(`iptables -t nat -A POSTROUTING ${DOCKER_RULE}`)})] } : s)) });`,
    ].join('\n'),
  );
  const r = await nflab(['run', file, '--json']);
  t.is(r.code, 1, r.stderr.slice(-2000));
  const lab = (jsonOf(r) as { labs: LabReport[] }).labs[0]!;
  t.is(lab.status, 'failed');
  const step4 = lab.steps[3]!;
  t.is(step4.status, 'failed');
  const notMet = step4.checks.filter((c) => c.status === 'not-met');
  t.deepEqual(
    notMet.map((c) => [c.kind, c.about]),
    [['counter', 'reference']],
  );
  t.deepEqual(runNamespaces(lab.runId), []);
});
