// `nflab check`: a lab left up by `nflab up` is judged against a step without applying that step's
// commands. Step 2 of lab 02 is not met until a student types its commands (here: the exported
// script's command lines, pointed at the up run's real namespaces), and met afterwards.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { nflab, runNamespaces, jsonOf } from './helpers/system.ts';
import { loadAllLabs } from '../src/resolve/load.ts';
import { commandDisplay } from '../src/exec/display.ts';
import { quoteWord } from '../src/exec/quote.ts';
import type { StepReport } from '../src/report/types.ts';

interface CheckJson {
  lab: string;
  runId: string;
  step: number;
  report: StepReport;
}

test.serial("lab 02 up to step 1: step 2 is not met; after typing step 2's commands by hand it is met", async (t) => {
  const up = await nflab(['up', '02', '--step', '1', '--json', '--again']);
  t.is(up.code, 0, up.stderr);
  const runId = (jsonOf(up) as { runId: string }).runId;
  t.teardown(async () => {
    await nflab(['down', runId]);
  });
  t.true(runNamespaces(runId).length >= 3);

  // By run id: another lab 02 may be up on this machine at the same time.
  const before = await nflab(['check', runId, '--step', '2', '--json']);
  t.is(before.code, 1, before.stderr);
  const notMet = jsonOf(before) as CheckJson;
  t.is(notMet.runId, runId);
  t.is(notMet.report.status, 'failed');
  t.true(notMet.report.checks.length > 0);
  t.true(
    notMet.report.checks.every((c) => c.status === 'not-met'),
    JSON.stringify(notMet.report.checks),
  );
  // Nothing of step 2 was applied by the check itself.
  t.deepEqual(notMet.report.commands, []);
  t.notRegex(execFileSync('ip', ['netns', 'exec', `nfl-${runId}-c1`, 'ip', 'route'], { encoding: 'utf8' }), /default/);

  // The student's part: step 2's lines from the exported script, with the up run's namespace names.
  const lab = (await loadAllLabs()).find((l) => l.id === '02')!;
  const script = (await nflab(['export', '02'])).stdout.split('\n');
  const lines = (lab.steps[1]!.run ?? []).map((c) => {
    const at = script.indexOf(`show ${quoteWord(commandDisplay(c, 'netns'))}`);
    t.true(at >= 0, `the script shows ${commandDisplay(c, 'netns')}`);
    return script[at + 1]!.replace(/ > "\$WORK\/cmd\.out" 2>&1$/, '');
  });
  t.is(lines.length, 2);
  const names = Object.keys(lab.topology.nodes)
    .map((n) => `[${n}]=nfl-${runId}-${n}`)
    .join(' ');
  execFileSync('bash', ['-euc', `declare -A NS=(${names})\n${lines.join('\n')}`], { stdio: 'pipe' });

  const after = await nflab(['check', runId, '--step', '2']);
  t.is(after.code, 0, after.stdout + after.stderr);
  t.regex(after.stdout, /✔ met/);
  t.notRegex(after.stdout, /not met\s{2}/);
  t.regex(after.stdout, /step 2: 1 of 1 checks met — met/);

  // The next step still needs its own commands (FORWARD ACCEPT): the check says which are not met.
  const step3 = await nflab(['check', runId, '--step', '3', '--json']);
  t.is(step3.code, 1);
  const s3 = jsonOf(step3) as CheckJson;
  t.true(
    s3.report.checks.some((c) => c.status === 'met') && s3.report.checks.some((c) => c.status === 'not-met'),
    JSON.stringify(s3.report.checks.map((c) => [c.description, c.status])),
  );

  const beyond = await nflab(['check', runId, '--step', '99']);
  t.is(beyond.code, 2);
  t.regex(beyond.stderr, /--step must be 1\.\.\d+/);

  // Checking leaves the lab up as it was.
  t.true(runNamespaces(runId).length >= 3);
});

test('check on a lab that is not up is a usage error; --help documents the command', async (t) => {
  const none = await nflab(['check', 'no-such-lab', '--step', '1']);
  t.is(none.code, 2);
  t.regex(none.stderr, /no lab "no-such-lab".*\(known labs: 01-bridge-forward-drop, /);
  const help = await nflab(['check', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /without\s+applying step N's commands/);
  t.regex(help.stdout, /--step/);
});

test.serial(
  'a lab brought up with --nodes docker: check judges it and trace follows its packets, through the run attached from its record',
  async (t) => {
    const up = await nflab(['up', '02', '--step', '3', '--nodes', 'docker', '--json', '--again']);
    t.is(up.code, 0, up.stderr);
    const runId = (jsonOf(up) as { runId: string }).runId;
    t.teardown(async () => {
      await nflab(['down', runId]);
    });
    // c1 is a container of this run: commands reach it through docker exec, observers through its PID.
    t.regex(
      execFileSync('docker', ['ps', '--filter', `label=nflab.run=${runId}`, '--format', '{{.Names}}'], {
        encoding: 'utf8',
      }),
      new RegExp(`nfl-${runId}-c1`),
    );

    // Step 3 was applied by up: its checks are met again, in the container.
    const met = await nflab(['check', runId, '--step', '3', '--json']);
    t.is(met.code, 0, met.stderr + met.stdout.slice(0, 2000));
    const report = (jsonOf(met) as CheckJson).report;
    t.true(
      report.checks.length > 0 && report.checks.every((c) => c.status === 'met'),
      JSON.stringify(report.checks.map((c) => [c.description, c.status])),
    );
    // Step 4 (MASQUERADE) is not applied: its checks are not met.
    const notMet = await nflab(['check', runId, '--step', '4', '--json']);
    t.is(notMet.code, 1, notMet.stderr);
    t.true((jsonOf(notMet) as CheckJson).report.checks.some((c) => c.status === 'not-met'));

    // trace sends step 3's ping from the container and sees it in the host's chains.
    const traced = await nflab(['trace', runId, '--step', '3', '--json']);
    t.true(traced.code === 0 || traced.code === 1, traced.stderr);
    const paths = jsonOf(traced) as { traces: { node: string; packets?: number; paths?: unknown[]; error?: string }[] };
    const host = paths.traces.find((x) => x.node === 'host');
    t.truthy(host, 'the host node was traced');
    t.falsy(host!.error, host!.error);
    t.true(
      (host!.packets ?? 0) > 0 && (host!.paths ?? []).length > 0,
      'the ping from the container was traced on the host',
    );
  },
);
