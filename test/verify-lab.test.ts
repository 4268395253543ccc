// nflab verify-lab on the real kernel: every numbered lab's steps are noticed by their checks
// (each step run again with its commands left out has a check not met that was met with them),
// and a lab with a step its checks cannot notice is caught (exit 1, the checks named).
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labFiles } from '../src/resolve/load.ts';
import type { LabVerification } from '../src/engine/verify-lab.ts';
import { jsonOf, nflab, runNamespaces } from './helpers/system.ts';

const dir = mkdtempSync(join(tmpdir(), 'nflab-verify-lab-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Checks the verdicts against the evidence the report carries, not only the verdict words. */
function assertNoticed(t: import('ava').ExecutionContext, lab: LabVerification): void {
  for (const step of lab.steps) {
    if (step.verdict === 'no-commands') {
      t.is(step.withoutCommands, undefined);
      continue;
    }
    t.is(
      step.verdict,
      'noticed',
      `lab ${lab.id} step ${step.step}: ${step.reason ?? `no check noticed; met without its commands: ${step.unnoticed.join('; ')}`}`,
    );
    t.true(step.noticed.length > 0);
    // The run without the commands ran no command of the step, and the noticing checks were not met in it.
    t.true(
      step.withoutCommands!.commands.every((c) => c.exitCode === null),
      'only traffic ran',
    );
    for (const d of step.noticed)
      t.is(step.withoutCommands!.checks.find((c) => c.description === d)?.status, 'not-met', d);
  }
}

// One lab per test, serially: each verify-lab already runs two sandboxes at once.
for (const file of labFiles()) {
  const id = file.split('/').pop()!.slice(0, 2);
  test.serial(
    `lab ${id}: every step with commands has a check that fails without them (or the lab is skipped for a kernel feature this machine lacks)`,
    async (t) => {
      t.timeout(10 * 60_000);
      const r = await nflab(['verify-lab', id, '--json']);
      const { labs } = jsonOf<{ labs: LabVerification[] }>(r);
      const lab = labs[0]!;
      if (lab.status === 'skipped') {
        // Only for a kernel feature this machine lacks (lab 12: no ip_vs here; it runs in the VM tests).
        t.regex(lab.reason!, /the kernel has no/);
        t.is(r.code, 0);
        return;
      }
      t.is(lab.status, 'verified', JSON.stringify(lab, null, 2).slice(0, 3000));
      t.is(r.code, 0);
      assertNoticed(t, lab);
      // Every run it made was torn down: the baseline and one per step with commands.
      const runs = [lab.baselineRunId, ...lab.steps.flatMap((s) => (s.runId ? [s.runId] : []))];
      t.is(new Set(runs).size, 1 + lab.steps.filter((s) => s.verdict !== 'no-commands').length);
      for (const run of runs) t.deepEqual(runNamespaces(run), [], run);
    },
  );
}

test('a step its checks cannot notice is reported with those checks, exit 1; an observing step is not a failure', async (t) => {
  const file = join(dir, 'unnoticed-lab.ts');
  writeFileSync(
    file,
    `import { cmd, defineLab, ping, output } from 'nflab';
export default defineLab({
  id: 'unnoticed', title: 'A step whose checks cannot fail', summary: 'verify-lab test lab',
  source: { title: 'test', url: 'https://example.invalid/', spec: 'none' },
  topology: {
    nodes: { host: { role: 'host' }, c1: { role: 'container' } },
    links: [{ a: { node: 'c1', name: 'eth0', addresses: ['10.203.7.2/24'] }, b: { node: 'host', name: 'veth0', addresses: ['10.203.7.1/24'] } }],
  },
  steps: [
    { title: 'c1 pings the host', expect: [ping('c1', '10.203.7.1').succeeds()] },
    { title: 'a rule nothing observes', run: [cmd('host', 'iptables -A INPUT -p udp --dport 9 -j DROP')],
      expect: [ping('c1', '10.203.7.1').succeeds('the ping still works'), output('host', 'ip link show veth0').includes('veth0')] },
    { title: 'drop the pings', run: [cmd('host', 'iptables -I INPUT -p icmp -j DROP')], expect: [ping('c1', '10.203.7.1').fails()] },
  ],
});
`,
  );
  const r = await nflab(['verify-lab', file, '--json']);
  t.is(r.code, 1, r.stderr);
  const lab = jsonOf<{ labs: LabVerification[] }>(r).labs[0]!;
  t.is(lab.status, 'unverified');
  t.deepEqual(
    lab.steps.map((s) => s.verdict),
    ['no-commands', 'unnoticed', 'noticed'],
  );
  t.deepEqual(lab.steps[1]!.unnoticed, ['the ping still works', '`ip link show veth0` on host shows "veth0"']);
  t.deepEqual(lab.steps[1]!.noticed, []);
  t.is(lab.steps[2]!.noticed.length, 1);
  t.is(lab.steps[2]!.withoutCommands!.checks[0]!.status, 'not-met');
  // The terminal form names the checks that did not notice.
  const human = await nflab(['verify-lab', file]);
  t.is(human.code, 1);
  t.regex(
    human.stdout,
    /✘ step 2: a rule nothing observes\n\s+every check is met without the step's commands; these did not notice:\n\s+- the ping still works/,
  );
  t.regex(human.stdout, /· step 1: c1 pings the host \(no commands: it only observes\)/);
  t.regex(human.stdout, /lab unnoticed unverified/);
});
