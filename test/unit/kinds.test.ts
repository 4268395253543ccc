// Every check kind, through the registry, judged on observations recorded from the real tools
// (test/fixtures: ping, socat, tcpdump, conntrack, iptables-save output captured on a kernel):
// each kind is met by what satisfies it and not met by what does not, describes itself, and writes
// its exported-script line with every lab word quoted. No root, no kernel.
import test from 'ava';
import { readFileSync } from 'node:fs';
import {
  allPairs,
  allReach,
  conntrack,
  output,
  packets,
  path,
  ping,
  policy,
  recent,
  rule,
  tcp,
} from '../../src/lab/define.ts';
import type { Check, Traffic } from '../../src/lab/types.ts';
import { CHECK_KINDS, describeCheck, moduleOf } from '../../src/check/registry.ts';
import { evaluate } from '../../src/check/evaluate.ts';
import { Observations } from '../../src/check/observations.ts';
import { NotInStep, type ExportIds } from '../../src/check/kind.ts';
import { parsePing } from '../../src/observe/parse-ping.ts';
import { parseTcpClient } from '../../src/observe/parse-tcp-client.ts';
import { parseTcpdump } from '../../src/observe/parse-tcpdump.ts';
import { parseConntrack } from '../../src/observe/parse-conntrack.ts';
import { parseIptablesSave } from '../../src/observe/parse-iptables-save.ts';
import { parseXtRecent } from '../../src/observe/parse-xt-recent.ts';
import { parseTraceLines } from '../../src/observe/parse-trace.ts';
import type { TrafficResult } from '../../src/traffic/run.ts';

const fixture = (p: string) => readFileSync(new URL(`../fixtures/${p}`, import.meta.url), 'utf8');
const recorded = (p: string) => JSON.parse(fixture(p)) as { stdout: string; stderr: string; exitCode: number };
const pinged = (p: string) => {
  const r = recorded(p);
  return parsePing(r.stdout, r.stderr, r.exitCode);
};
const connected = (p: string) => {
  const r = recorded(p);
  return parseTcpClient(r.stdout, r.stderr, r.exitCode);
};

function withTraffic(t: Traffic, result: Omit<TrafficResult, 'traffic' | 'display'>): Observations {
  const obs = new Observations();
  obs.set({ type: 'traffic', traffic: t }, { traffic: t, display: '', ...result });
  return obs;
}

const covered = new Set<string>();
function judged(check: Check, obs: Observations): string {
  covered.add(check.kind);
  return evaluate(check, obs).status;
}

test('ping: met on the replies it expects, not met on silence (recorded iputils output)', (t) => {
  const p = ping('c1', '10.55.66.3', { count: 2 });
  t.is(judged(p.succeeds(), withTraffic(p.traffic, { ping: pinged('ping/iputils-success.json') })), 'met');
  t.is(judged(p.succeeds(), withTraffic(p.traffic, { ping: pinged('ping/iputils-no-reply.json') })), 'not-met');
  t.is(judged(p.fails(), withTraffic(p.traffic, { ping: pinged('ping/iputils-no-reply.json') })), 'met');
  t.is(
    judged(
      p.fails('Network is unreachable'),
      withTraffic(p.traffic, { ping: pinged('ping/iputils-unreachable-network.json') }),
    ),
    'met',
  );
  t.is(
    judged(p.fails('Network is unreachable'), withTraffic(p.traffic, { ping: pinged('ping/iputils-no-reply.json') })),
    'not-met',
  );
  t.is(judged(p.succeeds(), new Observations()), 'not-met', 'a ping that did not run is not met');
});

test('tcp: the answering node and the client it saw decide (recorded socat output)', (t) => {
  const c = tcp('c1', '10.55.66.3', 8000);
  const ok = withTraffic(c.traffic, { tcp: [connected('socat/success.json')] });
  t.is(judged(c.connects({ answeredBy: 'c2', clientSeen: '10.55.66.2' }), ok), 'met');
  t.is(judged(c.connects({ answeredBy: 'c3' }), ok), 'not-met');
  t.is(judged(c.refused(), withTraffic(c.traffic, { tcp: [connected('socat/refused.json')] })), 'met');
  t.is(judged(c.timesOut(), withTraffic(c.traffic, { tcp: [connected('socat/refused.json')] })), 'not-met');
});

test('distribution and sticky: counts per backend, every connection answered', (t) => {
  const c = tcp('pc', '10.96.0.10', 80, { connections: 6 });
  const answers = (by: string[]) =>
    withTraffic(c.traffic, {
      tcp: by.map((b) => ({ result: 'connects' as const, answeredBy: b, clientSeen: '10.244.0.5', output: '' })),
    });
  t.is(judged(c.spreads({ p1: 0.5, p2: 0.5 }, { sigmas: 0 }), answers(['p1', 'p2', 'p1', 'p2', 'p1', 'p2'])), 'met');
  t.is(
    judged(c.spreads({ p1: 0.5, p2: 0.5 }, { sigmas: 0 }), answers(['p1', 'p1', 'p1', 'p1', 'p1', 'p2'])),
    'not-met',
  );
  t.is(judged(c.sticks(), answers(['p2', 'p2', 'p2', 'p2', 'p2', 'p2'])), 'met');
  t.is(judged(c.sticks(), answers(['p2', 'p2', 'p1', 'p2', 'p2', 'p2'])), 'not-met');
});

test('packets: tcpdump lines matched by protocol and addresses (recorded capture)', (t) => {
  const obs = new Observations();
  obs.set(
    { type: 'capture', node: 'host', iface: 'eth0' },
    { packets: parseTcpdump(fixture('tcpdump/host-eth0.txt')) },
  );
  t.is(judged(packets('host', 'eth0', { proto: 'icmp', src: '10.0.2.15' }).seen(), obs), 'met');
  t.is(
    judged(packets('host', 'eth0', { proto: 'icmp', src: '10.55.66.2' }).seen(), obs),
    'not-met',
    'an untranslated source is not on eth0',
  );
  t.is(judged(packets('host', 'eth0', { proto: 'icmp', src: '10.0.2.15' }).none(), obs), 'not-met');
});

test("counter: a rule's and a policy's delta across the step (recorded iptables-save -c)", (t) => {
  const after = parseIptablesSave(fixture('iptables-save/kube-like.txt'));
  const before = parseIptablesSave(
    fixture('iptables-save/kube-like.txt')
      .replace(/^\[\d+:\d+\] /gm, '[0:0] ')
      .replace(/ \[\d+:\d+\]$/gm, ' [0:0]'),
  );
  const obs = new Observations();
  obs.set({ type: 'counters', node: 'host' }, { before, after });
  t.is(judged(rule('host', 'mangle PREROUTING', '-i eth1 -p tcp -j MARK').delta({ packets: 35 }), obs), 'met');
  t.is(judged(rule('host', 'mangle PREROUTING', '-i eth1 -p tcp -j MARK').delta({ packets: 1 }), obs), 'not-met');
  t.is(
    judged(rule('host', 'mangle PREROUTING', '-i eth9 -j DROP').delta({ packets: 0 }), obs),
    'not-met',
    'a rule that is not there is not met, whatever the count',
  );
  t.is(judged(policy('host', 'filter INPUT').delta({ packets: 0 }), obs), 'met');
  const noCounters = new Observations();
  t.is(judged(policy('host', 'filter INPUT').delta({ packets: 0 }), noCounters), 'not-met');
});

test('conntrack: entries matched by tuple (recorded conntrack -L)', (t) => {
  const obs = new Observations();
  obs.set({ type: 'conntrack', node: 'host' }, { after: parseConntrack(fixture('conntrack/tcp.txt')) });
  t.is(
    judged(
      conntrack('host', {
        proto: 'tcp',
        orig: { src: '172.17.9.1', dport: 2345 },
        reply: { src: '10.55.66.2' },
      }).present(),
      obs,
    ),
    'met',
  );
  t.is(judged(conntrack('host', { proto: 'tcp', orig: { src: '172.17.9.99' } }).present(), obs), 'not-met');
  t.is(judged(conntrack('host', { proto: 'udp' }).absent(), obs), 'met');
});

test('recent: an xt_recent list holds the client or not', (t) => {
  const obs = new Observations();
  obs.set(
    { type: 'recent', node: 'node', list: 'KUBE-SEP-A' },
    { entries: parseXtRecent('src=10.244.0.5 ttl: 64 last_seen: 4296620656 oldest_pkt: 1 4296620656\n') },
  );
  t.is(judged(recent('node', 'KUBE-SEP-A').has('10.244.0.5'), obs), 'met');
  t.is(judged(recent('node', 'KUBE-SEP-A').has('10.244.0.6'), obs), 'not-met');
  t.is(judged(recent('node', 'KUBE-SEP-A').empty(), obs), 'not-met');
});

test('all-pairs and all-reach: every ping as expected', (t) => {
  const pairs = allPairs({ a: '10.0.0.1', b: '10.0.0.2' }).succeed();
  const reach = allReach(['a', 'b'], '10.0.0.254').succeeds();
  const obs = new Observations();
  const outcomes = (codes: number[], to: string[]) =>
    codes.map((code, i) => ({ from: i === 0 ? 'a' : 'b', to: to[i]!, code }));
  obs.set(
    { type: 'reach', check: pairs as never },
    { outcomes: outcomes([0, 0], ['10.0.0.2', '10.0.0.1']), parallel: 2, ms: 5, display: '' },
  );
  obs.set(
    { type: 'reach', check: reach as never },
    { outcomes: outcomes([0, 1], ['10.0.0.254', '10.0.0.254']), parallel: 2, ms: 5, display: '' },
  );
  t.is(judged(pairs, obs), 'met');
  t.is(judged(reach, obs), 'not-met');
});

test('path: the hops of a traced packet (recorded nftables trace)', (t) => {
  const obs = new Observations();
  const hops = parseTraceLines(fixture('trace-bridge-forward-drop.txt'));
  const filter = { proto: 'icmp' as const };
  obs.set({ type: 'trace', node: 'host', filter }, { hops, problems: [] });
  t.is(judged(path('host', filter).through(['filter FORWARD: policy DROP']), obs), 'met');
  t.is(judged(path('host', filter).through(['nat POSTROUTING: MASQUERADE']), obs), 'not-met');
});

test("output: a command's output includes and excludes text", (t) => {
  const c = output('c1', 'ip route');
  const obs = new Observations();
  obs.set(
    { type: 'output', command: (c.includes('x') as Extract<Check, { kind: 'output' }>).command },
    { code: 0, stdout: '10.55.66.0/24 dev eth0 proto kernel scope link\n', stderr: '' },
  );
  t.is(judged(c.excludes('default'), obs), 'met');
  t.is(judged(c.includes('default'), obs), 'not-met');
});

test.after('every kind in the registry was judged met and not met above', (t) => {
  t.deepEqual([...covered].sort(), [...CHECK_KINDS].sort());
});

test('every kind describes itself and writes its exported line with lab words quoted', (t) => {
  const hostile = "x'; touch /tmp/nflab-pwned; '";
  const p = ping('c1', '10.0.0.1');
  const checks: Check[] = [
    p.fails(hostile),
    tcp('c1', '10.0.0.1', 80).connects({ answeredBy: 'c2', clientSeen: hostile }),
    packets('host', 'eth0', { proto: 'icmp' }).seen(),
    rule('host', 'filter FORWARD', `-m comment --comment ${JSON.stringify(hostile)} -j ACCEPT`).delta({ packets: 1 }),
    conntrack('host', { proto: 'tcp' }).present(),
    recent('node', 'LIST').lacks('10.0.0.2'),
    output('c1', 'ip route').includes(hostile),
    tcp('c1', '10.0.0.1', 80, { connections: 4 }).spreads({ a: 0.5, b: 0.5 }),
    tcp('c1', '10.0.0.1', 80, { connections: 4 }).sticks(),
    allPairs({ a: '10.0.0.1', b: '10.0.0.2' }).succeed(),
    allReach(['a'], '10.0.0.1').succeeds(),
    path('host', { proto: 'icmp' }).through(['filter FORWARD']),
  ];
  const ids: ExportIds = { traffic: () => 't1', capture: () => 'cap1', output: () => 'o1', reach: () => 'r1' };
  for (const c of checks) {
    t.true(describeCheck(c).length > 10, `${c.kind} describes itself`);
    const line = moduleOf(c).exportLine(c as never, "'desc'", ids);
    // The hostile text appears only inside single quotes: never as shell syntax.
    const unquoted = line.replace(/'(?:[^']|'\\'')*'/g, "''");
    t.false(unquoted.includes('touch'), `${c.kind}: ${line}`);
  }
  const noTraffic: ExportIds = {
    ...ids,
    traffic: (tr) => {
      throw new NotInStep(tr.kind);
    },
  };
  t.throws(() => moduleOf(checks[0]!).exportLine(checks[0] as never, "'d'", noTraffic), { instanceOf: NotInStep });
});

test('a many-connection TCP check agrees in number ("4 TCP connections … time out")', (t) => {
  t.regex(
    describeCheck(tcp('c1', '10.0.0.1', 80, { connections: 4 }).timesOut()),
    /^4 TCP connections from c1 to 10\.0\.0\.1:80 time out$/,
  );
  t.regex(
    describeCheck(tcp('c1', '10.0.0.1', 80).timesOut()),
    /^a TCP connection from c1 to 10\.0\.0\.1:80 times out$/,
  );
});
