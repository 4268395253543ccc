// Generated topologies at scale, for real: the scale labs at N = 50 meet every check and leave
// nothing behind; a container cut off from the bridge is caught and named; a ping expected to fail
// stops as soon as the drop counters answer, with the verdicts waiting would give.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nflab, rootState, runJournal, runNamespaces, jsonOf } from './helpers/system.ts';
import type { CheckReport, LabReport, RunReport } from '../src/report/types.ts';
import { bridgeOfContainers, hostsBehindRouter, macOf, memberAddress } from '../src/topology/generate.ts';
import { validateLab } from '../src/resolve/validate-lab.ts';
import { planTopology } from '../src/topology/plan.ts';

async function runScaleLab(
  t: import('ava').ExecutionContext,
  file: string,
  n: number,
  extra: string[] = [],
): Promise<LabReport> {
  const r = await nflab(['run', file, '--json', ...extra], { env: { NFLAB_N: String(n) } });
  t.is(r.code, 0, r.stderr + r.stdout.slice(0, 3000));
  const lab = (jsonOf(r) as RunReport).labs[0]!;
  t.deepEqual(runNamespaces(lab.runId), [], 'no namespace of the run remains');
  t.false(runJournal(lab.runId), 'the run record is removed');
  return lab;
}

const checksOf = (lab: LabReport): CheckReport[] => lab.steps.flatMap((s) => s.checks);

test('generated bridge: names, addresses, MACs and pinned neighbours; 1000 containers validate', (t) => {
  const g = bridgeOfContainers(3);
  t.deepEqual(g.members, ['c1', 'c2', 'c3']);
  t.deepEqual(g.addresses, { c1: '10.80.0.2', c2: '10.80.0.3', c3: '10.80.0.4' });
  t.is(memberAddress(80, 255), '10.80.1.0');
  t.is(macOf('10.80.1.0'), '02:00:0a:50:01:00');
  t.deepEqual(g.topology.links[0], {
    a: { node: 'c1', name: 'eth0', addresses: ['10.80.0.2/16'], mac: '02:00:0a:50:00:02' },
    b: { node: 'host', name: 'v1', bridge: 'br0' },
  });
  t.deepEqual(g.topology.nodes.c1!.neighbors, [{ address: '10.80.0.1', mac: '02:00:0a:50:00:01', dev: 'eth0' }]);
  t.is(g.topology.nodes.host!.neighbors!.length, 3);
  t.is(
    bridgeOfContainers(3, { staticNeighbors: 'all' }).topology.nodes.c2!.neighbors!.length,
    3,
    'the gateway and the two others',
  );
  t.is(bridgeOfContainers(3, { staticNeighbors: 'none' }).topology.nodes.c2!.neighbors, undefined);
  t.throws(() => bridgeOfContainers(0), { instanceOf: RangeError });

  const big = bridgeOfContainers(1000);
  const lab = validateLab({
    id: 'big',
    title: 't',
    summary: 's',
    source: { title: 's' },
    topology: big.topology,
    steps: [{ title: 's' }],
  });
  const plan = planTopology(lab.topology);
  t.is(plan.nodes.length, 1001);
  t.is(plan.veths.length, 1000);
  t.true(
    plan.perNode
      .get('c1000')!
      .ip.some((argv) => argv.join(' ') === 'neigh replace 10.80.0.1 lladdr 02:00:0a:50:00:01 dev eth0 nud permanent'),
  );
  t.true(plan.perNode.get('host')!.ip.some((argv) => argv.join(' ') === 'link set br0 address 02:00:0a:50:00:01'));

  const r = hostsBehindRouter(2);
  t.deepEqual(Object.keys(r.topology.nodes), ['router', 'ext', 'h1', 'h2']);
  t.deepEqual(r.topology.nodes.h1!.routes, [{ to: 'default', via: '10.81.0.1' }]);
  t.deepEqual(r.topology.setup![0]!.argv, [
    'iptables',
    '-t',
    'nat',
    '-A',
    'POSTROUTING',
    '-s',
    '10.81.0.0/16',
    '-o',
    'eth0',
    '-j',
    'MASQUERADE',
  ]);
});

test('50 containers on one bridge: everyone reaches the gateway, all 2450 pairs reach each other, nothing remains', async (t) => {
  const before = rootState();
  const lab = await runScaleLab(t, 'labs/scale/bridge-n.ts', 50);
  t.is(lab.status, 'passed');
  t.true(
    checksOf(lab).every((c) => c.status === 'met'),
    JSON.stringify(checksOf(lab).filter((c) => c.status !== 'met')),
  );
  const gateway = checksOf(lab).find((c) => c.kind === 'all-reach')!;
  t.like(gateway.observed, { pings: 50, replies: 50 });
  const pairs = checksOf(lab).find((c) => c.kind === 'all-pairs')!;
  t.like(pairs.observed, { pings: 2450, replies: 2450 });
  t.deepEqual(pairs.expected, { pings: 2450, replies: 2450 });
  t.deepEqual(rootState(), before);
});

test('50 hosts behind a masquerading router: one translated flow per host, nothing remains', async (t) => {
  const lab = await runScaleLab(t, 'labs/scale/router-n.ts', 50);
  t.is(lab.status, 'passed');
  t.true(
    checksOf(lab).every((c) => c.status === 'met'),
    JSON.stringify(checksOf(lab).filter((c) => c.status !== 'met')),
  );
  const masquerade = checksOf(lab).find((c) => c.kind === 'counter')!;
  t.like(masquerade.observed, { packets: 50 });
  const flows = checksOf(lab).find((c) => c.kind === 'conntrack')!;
  t.like(flows.observed, { count: 50 });
});

test('a container cut off from the bridge fails everyone-reaches-the-gateway, and the report names it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-scale-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'cut-off.ts');
  writeFileSync(
    file,
    `
import { allPairs, allReach, bridgeOfContainers, cmd, defineLab } from 'nflab';
const g = bridgeOfContainers(6, { staticNeighbors: 'all' });
export default defineLab({
  id: 'cut-off', title: 'one container cut off', summary: 'c3 loses its link', source: { title: 'test' },
  topology: g.topology,
  steps: [{ title: 'c3 down', run: [cmd('c3', 'ip link set eth0 down')], expect: [allReach(g.members, g.gateway).succeeds(), allPairs(g.addresses).succeed()] }],
});
`,
  );
  const r = await nflab(['run', file, '--json']);
  t.is(r.code, 1, r.stderr);
  const lab = (jsonOf(r) as RunReport).labs[0]!;
  const [gateway, pairs] = lab.steps[0]!.checks as [CheckReport, CheckReport];
  t.is(gateway.status, 'not-met');
  t.like(gateway.observed, { pings: 6, replies: 5, unexpected: ['c3 → 10.80.0.1: error'] });
  t.is(pairs.status, 'not-met');
  // c3 cannot send (5 pairs) and nobody reaches c3 (5 pairs): 20 of 30 pairs answer.
  t.like(pairs.observed, { pings: 30, replies: 20 });
  t.deepEqual(runNamespaces(lab.runId), []);
});

test('a ping expected to fail stops once the FORWARD policy has dropped its request, with the verdicts waiting gives', async (t) => {
  const r = await nflab(['run', '01', '--json']);
  t.is(r.code, 0, r.stderr);
  const step = (jsonOf(r) as RunReport).labs[0]!.steps[0]!;
  const ping = step.checks.find((c) => c.kind === 'ping')!;
  t.is(ping.status, 'met');
  t.deepEqual(ping.observed, { outcome: 'fails', transmitted: 1, received: 0 });
  t.regex(
    ping.reason ?? '',
    /^stopped after [\d.]+ s instead of waiting up to 1 s for a reply: filter FORWARD policy DROP on host counted 1 dropped packet, as many as the 1 echo request sent$/,
  );
  t.deepEqual(step.checks.find((c) => c.kind === 'counter')!.observed, {
    packets: 1,
    bytes: 84,
    policy: 'FORWARD DROP',
  });
  const stoppedAfter = Number(/^stopped after ([\d.]+) s/.exec(ping.reason ?? '')?.[1]);
  t.true(stoppedAfter < 1, `the ping ran ${stoppedAfter} s; waiting for its timeout takes 1 s`);
  // Where no counter answers (lab 02 step 3: the outside cannot route the replies back), the ping waits.
  const r2 = await nflab(['run', '02', '--json']);
  const lab2 = (jsonOf(r2) as RunReport).labs[0]!;
  t.is(lab2.steps[2]!.checks.find((c) => c.kind === 'ping')!.reason, undefined);
  t.true(lab2.steps[2]!.durationMs >= 1200, 'count 2 with -i 0.2 and -W 1: at least 1.2 s');
});
