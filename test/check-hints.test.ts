// Hints from evidence: a live lab broken the way a student would break it, then `nflab check`.
// For each check kind, a check that is not met says why in words that name what it came from:
// the hop and verdict the trace ended on, the counter that moved, the interface a capture saw the
// packet on, the list, backend or command. One row per kind; each scenario is one run of this test,
// taken down by its own run id.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nflab, jsonOf, runJournal, runNamespaces } from './helpers/system.ts';
import { loadAllLabs } from '../src/resolve/load.ts';
import type { CheckReport, StepReport } from '../src/report/types.ts';

/** kind → the hint of its not-met check must match. */
type Expect = Array<[kind: string, hint: RegExp, description?: RegExp]>;

async function upRun(t: ExecutionContext, lab: string, step: number): Promise<string> {
  const up = await nflab(['up', lab, '--step', String(step), '--again', '--json']);
  t.is(up.code, 0, up.stderr.slice(-2000));
  const runId = (jsonOf(up) as { runId: string }).runId;
  t.teardown(async () => {
    await nflab(['down', runId]);
  });
  return runId;
}

async function notMetChecks(t: ExecutionContext, runId: string, step: number): Promise<CheckReport[]> {
  const r = await nflab(['check', runId, '--step', String(step), '--json']);
  t.is(r.code, 1, `check --step ${step} is not met: ${r.stderr.slice(-1000)}`);
  return (jsonOf(r) as { report: StepReport }).report.checks.filter((c) => c.status === 'not-met');
}

function expectHints(t: ExecutionContext, checks: CheckReport[], rows: Expect): void {
  for (const [kind, hint, description] of rows) {
    const c = checks.find((x) => x.kind === kind && (!description || description.test(x.description)));
    t.truthy(
      c,
      `a ${kind} check${description ? ` like ${description}` : ''} is not met: ${JSON.stringify(checks.map((x) => [x.kind, x.description]))}`,
    );
    t.regex(c?.hint ?? '(no hint)', hint, `the ${kind} check's hint`);
  }
}

async function down(t: ExecutionContext, runId: string): Promise<void> {
  const r = await nflab(['down', runId]);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(runNamespaces(runId), []);
  t.false(runJournal(runId));
}

test('lab 02 without MASQUERADE (up to step 3, step 4 checked): ping, packets, conntrack, counter and path say where the packet went', async (t) => {
  const runId = await upRun(t, '02', 3);
  expectHints(t, await notMetChecks(t, runId, 4), [
    ['ping', /the echo request reached filter FORWARD on host and met its policy ACCEPT/],
    [
      'packets',
      /tcpdump on host:eth0 saw 0 matching .*it saw 2 like it with other addresses, e\.g\. "IP 10\.55\.66\.2 > 198\.51\.100\.8/,
      /source is already translated/,
    ],
    ['packets', /no capture of the step saw it: it never reached host:hwchiu0/, /replies are translated back/],
    ['conntrack', /conntrack on host holds no entry made during the check/],
    ['counter', /the reference rule "-s 10\.55\.66\.2\/32 -o eth0 -j MASQUERADE" is not in nat POSTROUTING on host/],
    [
      'path',
      /the first icmp packet from 10\.55\.66\.2 to 198\.51\.100\.8 reached filter FORWARD on host and met its policy ACCEPT; the expected path continues to nat POSTROUTING: MASQUERADE|icmp packet from 10\.55\.66\.2 to 198\.51\.100\.8 number 1 reached filter FORWARD on host and met its policy ACCEPT; the expected path continues to nat POSTROUTING: MASQUERADE/,
      /first echo request goes FORWARD/,
    ],
  ]);
  await down(t, runId);
});

test('lab 02 up to step 1 (c1 has no default route), step 2 checked: output names the command and the nearest line', async (t) => {
  const runId = await upRun(t, '02', 1);
  expectHints(t, await notMetChecks(t, runId, 2), [
    ['output', /`ip route show` on c1 does not print "default via 10\.55\.66\.1 dev eth0"/],
  ]);
  await down(t, runId);
});

test('lab 04 with bridge-nf-call-iptables=0 (up to step 4), step 5 checked: tcp names the counters the SYNs moved', async (t) => {
  const runId = await upRun(t, '04', 4);
  expectHints(t, await notMetChecks(t, runId, 5), [
    [
      'tcp',
      /of 3 connections from pc to 10\.98\.51\.150:80, 3 timed out.*on node these counted the step's packets: .*-j DNAT --to-destination 10\.244\.0\.\d:80/,
    ],
  ]);
  await down(t, runId);
});

test('lab 06: distribution (affinity still on), then with the rcheck rules deleted by hand: sticky, recent and counter', async (t) => {
  const runId = await upRun(t, '06', 4);
  expectHints(t, await notMetChecks(t, runId, 5), [
    ['distribution', /p\d answered 150 of 150 \(expected \d+\.\.\d+\)/],
  ]);
  // The student deletes the rcheck rules (step 5's commands, typed by hand).
  const lab = (await loadAllLabs()).find((l) => l.id === '06')!;
  for (const c of lab.steps[4]!.run ?? [])
    execFileSync('ip', ['netns', 'exec', `nfl-${runId}-${c.node}`, ...c.argv], { stdio: 'pipe' });
  expectHints(t, await notMetChecks(t, runId, 2), [
    ['sticky', /connections from pc were answered by p\d \d+, p\d \d+.*balanced again/],
    ['recent', /not answered by exactly one backend; list KUBE-SEP-\S+ on node holds/],
    ['counter', /the reference rule ".*--rcheck.*" is not in nat KUBE-SVC-\S+ on node/, /rcheck rules count/],
  ]);
  await down(t, runId);
});

test('a small bridge lab with FORWARD DROP and an ICMP DROP in INPUT typed by hand: all-pairs and all-reach name the drop counters', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-hints-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'reach.ts');
  writeFileSync(
    file,
    `import { allPairs, allReach, defineLab } from 'nflab';
export default defineLab({
  id: 'hint-reach', title: 'Three containers on a bridge', summary: 'Everyone reaches everyone and the gateway.',
  source: { title: 'nflab test: hints of all-pairs and all-reach', url: 'https://example.invalid/nflab-test', spec: 'test' },
  requires: ['br_netfilter'],
  topology: {
    nodes: { host: { role: 'host', sysctls: { 'net.bridge.bridge-nf-call-iptables': 1 } }, c1: { role: 'container' }, c2: { role: 'container' }, c3: { role: 'container' } },
    bridges: { br0: { node: 'host', addresses: ['10.77.0.1/24'] } },
    links: [1, 2, 3].map((i) => ({ a: { node: 'c' + i, name: 'eth0', addresses: ['10.77.0.' + (i + 1) + '/24'] }, b: { node: 'host', name: 'veth' + i, bridge: 'br0' } })),
  },
  steps: [{ title: 'all reach', expect: [allPairs({ c1: '10.77.0.2', c2: '10.77.0.3', c3: '10.77.0.4' }).succeed(), allReach(['c1', 'c2', 'c3'], '10.77.0.1').succeeds()] }],
});
`,
  );
  const runId = await upRun(t, file, 1);
  for (const rule of [
    ['-P', 'FORWARD', 'DROP'],
    ['-A', 'INPUT', '-p', 'icmp', '-j', 'DROP'],
  ])
    execFileSync('ip', ['netns', 'exec', `nfl-${runId}-host`, 'iptables', ...rule]);
  expectHints(t, await notMetChecks(t, runId, 1), [
    [
      'all-pairs',
      /6 pings went against "succeeds": c\d → 10\.77\.0\.\d: no reply.*filter FORWARD policy DROP on host counted \d+ dropped packets/,
    ],
    [
      'all-reach',
      /3 pings went against "succeeds".*filter -A INPUT -p icmp -j DROP on host counted \d+ dropped packets/,
    ],
  ]);
  await down(t, runId);
});
