// The resolved lab and its build plan, without root: realisations decided once, the phases in
// the engine's order, the same plan behind show, handouts and exported scripts; and the engine
// executing that plan phase by phase (against the fake executor: a mock, named so here).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { loadAllLabs } from '../../src/resolve/load.ts';
import { resolveLab } from '../../src/resolve/resolve-lab.ts';
import { planLines } from '../../src/resolve/plan-display.ts';
import { showLab } from '../../src/cli/show.ts';
import { buildHandout } from '../../src/handout/model.ts';
import { exportBash } from '../../src/export/bash.ts';
import { Sandbox } from '../../src/engine/sandbox.ts';
import { FakeExecutor } from '../helpers/fake-executor.ts';
import { LabError, LabSkipped } from '../../src/errors.ts';

const labs = (await loadAllLabs()).filter((l) => /^\d\d$/.test(l.id));
const lab = (id: string) => labs.find((l) => l.id === id)!;

test('realisations: host and outside nodes are namespaces, containers follow the driver, --root-namespace makes the host the machine', (t) => {
  const docker = resolveLab(lab('02'), { driver: 'docker' });
  t.is(docker.realisationOf('host'), 'netns');
  t.is(docker.realisationOf('ext'), 'netns');
  t.is(docker.realisationOf('c1'), 'docker');
  t.regex(docker.show('c1', ['ip', 'route']), /^docker exec c1 ip route$/);
  const root = resolveLab(lab('01'), { driver: 'netns', rootNamespace: true });
  t.is(root.rootNode, 'host');
  t.is(root.realisationOf('host'), 'root');
  t.false(
    root.plan.create.some((c) => c.node === 'host'),
    'the machine is not created',
  );
  t.is(root.show('host', ['iptables', '-S']), 'iptables -S');
  t.is(resolveLab(lab('12'), { driver: 'netns', rootNamespace: true }).rootNode, 'director');
  t.throws(
    () =>
      resolveLab(
        { ...lab('01'), topology: { ...lab('01').topology, nodes: { c1: { role: 'container' } } } },
        { driver: 'netns', rootNamespace: true },
      ),
    { instanceOf: LabError },
  );
});

test('the build plan of every lab: probes before veths, veths before configuring, setup after the links, responders last', (t) => {
  for (const l of labs) {
    const phases = planLines(resolveLab(l, { driver: 'netns' })).map((x) => x.phase);
    const order = [
      'create nodes',
      'probe features',
      'create veths',
      'configure nodes',
      'wait for links',
      'setup',
      'responders',
    ];
    const ranks = phases.map((p) => order.indexOf(p));
    t.deepEqual(
      ranks,
      [...ranks].sort((a, b) => a - b),
      `lab ${l.id}: phases in order`,
    );
    if ((l.requires ?? []).length > 0) t.true(phases.includes('probe features'), `lab ${l.id} probes what it requires`);
  }
});

test('show, the handout and the exported script render one plan: the same build lines for every lab and both drivers', (t) => {
  for (const l of labs) {
    for (const driver of ['netns', 'docker'] as const) {
      const r = resolveLab(l, { driver });
      const lines = planLines(r).map((x) => x.text);
      t.deepEqual(buildHandout(l, driver).build, lines, `lab ${l.id} ${driver}: handout`);
      const shown = showLab(r);
      for (const line of lines)
        t.true(
          shown.includes(
            line
              .split('\n')
              .map((x, i) => (i === 0 ? x : `  ${x}`))
              .join('\n'),
          ),
          `lab ${l.id} ${driver}: show prints ${line.split('\n')[0]}`,
        );
      t.true(
        exportBash(l, { driver }).includes(lines.join('\n')),
        `lab ${l.id} ${driver}: the exported script lists the plan`,
      );
    }
  }
});

test('every exported script is valid bash (bash -n), in both node modes', (t) => {
  for (const l of labs) {
    for (const driver of ['netns', 'docker'] as const) {
      t.notThrows(() => execFileSync('bash', ['-n'], { input: exportBash(l, { driver }) }), `lab ${l.id} ${driver}`);
    }
  }
});

test('the exported script probes kernel features it needs, dummy included (lab 12 no longer skips itself)', (t) => {
  const script = exportBash(lab('12'), { driver: 'netns' });
  t.notRegex(script, /cannot probe kernel feature/);
  t.regex(script, /ip link add nflprobe0 type dummy/);
  t.true(
    script.indexOf('nflprobe0 type dummy') < script.indexOf('link add %s netns'),
    'probed before the veths are made',
  );
});

test('the engine executes the plan phase by phase (fake executor: a mock)', async (t) => {
  const exec = new FakeExecutor();
  const r = resolveLab(lab('04'), { driver: 'netns' });
  const sandbox = new Sandbox(r, exec, { watchdog: false, runId: 'unit01' });
  t.teardown(() => sandbox.teardown());
  // The fake answers no link state: the build is judged up to configuring, where it stops.
  await t.throwsAsync(sandbox.build(), { message: /configure|ip -batch/ });
  const batches = exec.calls.map(
    (c) => `${c.argv.slice(0, 3).join(' ')}${c.stdin ? ` <<${c.stdin.split('\n')[0]}` : ''}`,
  );
  const created = batches.findIndex((b) => b.includes('netns add nfl-unit01-node'));
  const veths = batches.findIndex((b) => b.includes('link add nvunit01'));
  const probe = exec.calls.findIndex((c) => c.argv.includes('/proc/sys/net/bridge/bridge-nf-call-iptables'));
  t.true(created >= 0 && probe > created && veths > probe, `create ${created} < probe ${probe} < veths ${veths}`);
  t.deepEqual(
    sandbox.log.slice(0, 2).map((l) => l.text),
    ['ip netns add node', 'ip netns add p1'],
  );
  t.regex(sandbox.log.find((l) => l.phase === 'probe features')!.text, /br_netfilter/);
});

test('a feature the kernel lacks stops the build at its probe, before anything is configured (fake executor: a mock)', async (t) => {
  const exec = new FakeExecutor([
    { match: (argv) => argv.includes('/proc/sys/net/bridge/bridge-nf-call-iptables'), result: { code: 1 } },
  ]);
  const sandbox = new Sandbox(resolveLab(lab('04'), { driver: 'netns' }), exec, { watchdog: false, runId: 'unit02' });
  t.teardown(() => sandbox.teardown());
  await t.throwsAsync(sandbox.build(), { instanceOf: LabSkipped, message: /br_netfilter/ });
  t.false(
    exec.calls.some((c) => (c.stdin ?? '').includes('link add')),
    'no veth was made',
  );
  t.deepEqual([...new Set(sandbox.log.map((l) => l.phase))], ['create nodes', 'probe features']);
});
