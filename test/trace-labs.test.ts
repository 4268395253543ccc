// Labs 09-11 (docs/labs.md#l8, #l9, #l12) run for real through the CLI: MASQUERADE's choice of port and
// address read from conntrack, packet marks and the conntrack mark, and the chains each kind of
// packet passes (counters and traces). Then the same labs with Docker containers as nodes.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { containersOf, nflab, rootState, runNamespaces, jsonOf } from './helpers/system.ts';
import type { CheckReport, RunReport } from '../src/report/types.ts';

async function runJson(t: ExecutionContext, args: string[]): Promise<RunReport> {
  const r = await nflab(['run', ...args, '--json']);
  t.is(r.code, 0, r.stderr + r.stdout.slice(0, 4000));
  return jsonOf(r) as RunReport;
}

function check(report: RunReport, lab: string, step: number, description: string): CheckReport {
  const found = report.labs
    .find((l) => l.id === lab)!
    .steps[step - 1]!.checks.find((c) => c.description.includes(description));
  if (!found) throw new Error(`no check "${description}" in lab ${lab} step ${step}`);
  assertMet(found);
  return found;
}
/** A check found by description must also have been met (the run exited 0, but say which one if not). */
function assertMet(c: CheckReport) {
  if (c.status !== 'met') throw new Error(`check "${c.description}" is ${c.status}: ${JSON.stringify(c.observed)}`);
}

const entries = (c: CheckReport) => (c.observed as { entries: string[] }).entries;
const packetsOf = (c: CheckReport) => (c.observed as { packets: string[][] }).packets;
const replyPort = (line: string) =>
  Number(/src=\S+ dst=\S+ sport=\d+ dport=(\d+).*src=\S+ dst=\S+ sport=\d+ dport=(\d+)/.exec(line)![2]);

test('lab 09: MASQUERADE keeps a UDP port, maps TCP into 55666-55680, moves a clashing flow and picks the address by next hop', async (t) => {
  const report = await runJson(t, ['09']);
  t.is(report.labs[0]!.status, 'passed');
  t.regex(
    entries(check(report, '09', 2, 'conntrack: src=172.18.0.2 dst=198.51.100.8 sport=33894'))[0]!,
    /^udp +17 \d+ src=172\.18\.0\.2 dst=198\.51\.100\.8 sport=33894 dport=53 (\[UNREPLIED\] )?src=198\.51\.100\.8 dst=10\.0\.2\.15 sport=53 dport=33894/,
  );
  t.deepEqual(packetsOf(check(report, '09', 2, 'the datagram meets one chain')), [['nat POSTROUTING: MASQUERADE']]);
  t.regex(
    entries(check(report, '09', 3, 'kept port 55672'))[0]!,
    /sport=55672 dport=80 src=198\.51\.100\.81 dst=10\.0\.2\.15 sport=80 dport=55672/,
  );
  // The clash: the host holds 10.0.2.15:55670, so c1's flow from 55670 got another port of the range.
  const moved = replyPort(entries(check(report, '09', 4, 'got another port inside 55666-55680'))[0]!);
  t.true(moved >= 55666 && moved <= 55680 && moved !== 55670, `c1's flow from 55670 was mapped to ${moved}`);
  const fromOutside = replyPort(entries(check(report, '09', 5, 'the flow from 37622'))[0]!);
  t.true(fromOutside >= 55666 && fromOutside <= 55680, `37622 was mapped to ${fromOutside}`);
  // The next hop decides the address: 203.0.113.56 although the SYN never left.
  t.regex(
    entries(check(report, '09', 7, 'reply tuple src=198.51.100.11 dst=203.0.113.56'))[0]!,
    /SYN_SENT src=172\.18\.0\.2 dst=198\.51\.100\.11 sport=\d+ dport=80 \[UNREPLIED\] src=198\.51\.100\.11 dst=203\.0\.113\.56 sport=80 dport=556(6[6-9]|7\d|80)/,
  );
  t.deepEqual(
    (check(report, '09', 8, 'sees client 203.0.113.56').observed as { clientSeen: Record<string, number> }).clientSeen,
    { '203.0.113.56': 1 },
  );
  t.deepEqual(
    (check(report, '09', 9, 'sees client 10.0.2.15').observed as { clientSeen: Record<string, number> }).clientSeen,
    { '10.0.2.15': 1 },
    'never the secondary 10.0.2.99',
  );
});

test('lab 10: MARK --or/--xor-mark saved as --set-xmark; only marked traffic is masqueraded; CONNMARK sets the conntrack mark', async (t) => {
  const report = await runJson(t, ['10']);
  t.is(report.labs[0]!.status, 'passed');
  t.deepEqual(check(report, '10', 2, 'the MARK --or-mark rule').observed, {
    packets: 1,
    bytes: 84,
    rule: '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
  });
  t.deepEqual(check(report, '10', 2, 'the MARK --xor-mark rule').observed, {
    packets: 1,
    bytes: 84,
    rule: '-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0',
  });
  t.deepEqual(packetsOf(check(report, '10', 2, "c1's echo request: PREROUTING → KUBE-MARK-MASQ"))[0], [
    'nat PREROUTING: KUBE-MARK-MASQ',
    'nat KUBE-MARK-MASQ: MARK',
    'nat PREROUTING: policy ACCEPT',
    'filter FORWARD: policy ACCEPT',
    'nat POSTROUTING: KUBE-POSTROUTING',
    'nat KUBE-POSTROUTING: MARK',
    'nat KUBE-POSTROUTING: MASQUERADE',
  ]);
  t.regex(
    entries(check(report, '10', 2, 'with mark=0'))[0]!,
    /src=10\.55\.66\.2 dst=198\.51\.100\.8 .* src=198\.51\.100\.8 dst=10\.0\.2\.15 .*mark=0 /,
  );
  t.regex(
    entries(check(report, '10', 3, "c2's flow [UNREPLIED]"))[0]!,
    /src=10\.55\.66\.3 dst=198\.51\.100\.8 .*\[UNREPLIED\] src=198\.51\.100\.8 dst=10\.55\.66\.3 /,
  );
  t.regex(entries(check(report, '10', 4, 'mark=16384'))[0]!, /src=10\.55\.66\.2 dst=198\.51\.100\.8 .*mark=16384 /);
  t.deepEqual(check(report, '10', 5, 'KUBE-FIREWALL DROP rule').observed, {
    packets: 1,
    bytes: 84,
    rule: '-A KUBE-FIREWALL -m mark --mark 0x8000/0x8000 -j DROP',
  });
});

test('lab 11: per-chain counters and traces for four kinds of traffic; replies skip the nat chains', async (t) => {
  const report = await runJson(t, ['11']);
  t.is(report.labs[0]!.status, 'passed');
  const counted = (step: number, chain: string) =>
    (check(report, '11', step, `${chain} counts`).observed as { packets: number }).packets;
  // Container to container: request and reply through PREROUTING/FORWARD/POSTROUTING, nat only for the request.
  t.deepEqual(
    ['raw PREROUTING', 'nat PREROUTING', 'filter FORWARD', 'nat POSTROUTING', 'filter INPUT', 'filter OUTPUT'].map(
      (c) => counted(2, c),
    ),
    [2, 1, 2, 1, 0, 0],
  );
  const [request] = packetsOf(check(report, '11', 2, 'the echo request goes through each bridge (ebtables) hook'));
  t.deepEqual(
    request!.map((hop) => hop.replace(/: .*/, '')).filter((hop, i, all) => hop !== all[i - 1]),
    [
      'bridge nat PREROUTING',
      'raw PREROUTING',
      'mangle PREROUTING',
      'nat PREROUTING',
      'bridge filter FORWARD',
      'mangle FORWARD',
      'filter FORWARD',
      'bridge nat POSTROUTING',
      'mangle POSTROUTING',
      'nat POSTROUTING',
    ],
  );
  const [reply] = packetsOf(check(report, '11', 2, 'the echo reply takes the same hooks'));
  t.false(
    reply!.some((hop) => hop.startsWith('nat ')),
    'the reply meets no nat chain',
  );
  // Host to container: OUTPUT chains for the request, INPUT for the reply, no FORWARD.
  t.deepEqual(
    [
      'raw OUTPUT',
      'nat OUTPUT',
      'nat POSTROUTING',
      'raw PREROUTING',
      'filter INPUT',
      'nat PREROUTING',
      'filter FORWARD',
    ].map((c) => counted(3, c)),
    [1, 1, 1, 1, 1, 0, 0],
  );
  // Outside to the published port: DNAT makes the SYN forwarded, not input.
  const syn = check(report, '11', 4, 'the SYN is DNATed in nat PREROUTING');
  t.true(packetsOf(syn)[0]!.includes('nat PREROUTING: DNAT'));
  t.false(packetsOf(syn)[0]!.some((hop) => hop.startsWith('filter INPUT')));
  t.true(counted(4, 'filter FORWARD') >= 4);
  t.is(counted(4, 'filter INPUT'), 0);
  // Container to outside: the bridge's INPUT, then FORWARD and MASQUERADE.
  const out = packetsOf(check(report, '11', 5, 'bridge PREROUTING (with iptables PREROUTING inside it)'))[0]!;
  t.true(out.indexOf('nat POSTROUTING: MASQUERADE') > out.findIndex((hop) => hop.startsWith('bridge filter INPUT')));
  t.false(out.some((hop) => hop.startsWith('bridge filter FORWARD')));
});

const verdicts = (report: RunReport) =>
  report.labs.map((lab) => ({
    lab: lab.id,
    status: lab.status,
    checks: lab.steps.flatMap((s, i) => s.checks.map((c) => `${i + 1}: ${c.description} => ${c.status}`)),
  }));

test('labs 09-11 with Docker containers as nodes: every check met, the same checks as with namespaces, nothing left behind', async (t) => {
  const before = rootState();
  const docker = await runJson(t, ['09', '10', '11', '--nodes', 'docker']);
  t.true(docker.labs.every((l) => l.driver === 'docker' && l.status === 'passed'));
  const netns = await runJson(t, ['09', '10', '11']);
  t.deepEqual(verdicts(docker), verdicts(netns));
  for (const lab of docker.labs) {
    t.deepEqual(containersOf(lab.runId), []);
    t.deepEqual(runNamespaces(lab.runId), []);
  }
  t.deepEqual(rootState(), before);
});
