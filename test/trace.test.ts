// Packet-path tracing: the parser against recorded xtables-monitor output, then startTrace on the
// real kernel in namespaces made here (docs/labs.md#l1, #l2, #l3 topologies), and proof that the tracer
// leaves nothing behind and hears only its own namespace.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { LocalExecutor } from '../src/exec/local.ts';
import type { Process } from '../src/exec/types.ts';
import { LabError } from '../src/errors.ts';
import { parseTraceLines } from '../src/observe/parse-trace.ts';
import type { TraceHop } from '../src/observe/parse-trace.ts';
import { describeHop, hopsByPacket, markMatches, startTrace } from '../src/observe/trace.ts';

const exec = new LocalExecutor();
const fixture = (name: string) => readFileSync(new URL(`fixtures/trace-${name}.txt`, import.meta.url), 'utf8');
const paths = (hops: TraceHop[]) => hopsByPacket(hops).map((packet) => packet.map(describeHop));

// ---------------------------------------------------------------- parser, recorded output

test('parse: bridged echo request dropped by the FORWARD policy, with bridge ports', (t) => {
  const hops = parseTraceLines(fixture('bridge-forward-drop'));
  t.deepEqual(paths(hops), [['nat PREROUTING: policy ACCEPT', 'filter FORWARD: policy DROP']]);
  const drop = hops.at(-1)!;
  t.like(drop, {
    family: 'ip',
    table: 'filter',
    chain: 'FORWARD',
    policy: true,
    verdict: 'DROP',
    iif: 'hwchiu0',
    oif: 'hwchiu0',
    physin: 'veth0',
    physout: 'veth1',
    src: '10.55.66.2',
    dst: '10.55.66.3',
    proto: 'icmp',
  });
  t.false(
    hops.some((h) => h.table.startsWith('nflab_trace')),
    'the tracer table is not part of the path',
  );
});

test("parse: kernel 6.1 reports a base chain's end as a return event before its policy; the path shows the policy once", (t) => {
  // Recorded in the VM of scripts/vm (Debian 12, kernel 6.1): the same drop as above.
  const hops = parseTraceLines(fixture('kernel61-return-before-policy'));
  t.deepEqual(paths(hops), [['filter FORWARD: policy DROP']]);
  t.false(hops.some((h) => h.verdict === 'RETURN'));
});

test("parse: kernel 6.1 prints no PACKET line before a re-keyed packet's FORWARD events; they still join their packet", (t) => {
  // Recorded in the VM (kernel 6.1) during lab 02's MASQUERADE step: c1 pings 198.51.100.8 twice.
  const hops = parseTraceLines(fixture('kernel61-masquerade'));
  // Request, reply, request, reply: only the first request meets nat (conntrack maps the rest).
  t.deepEqual(paths(hops), [
    ['filter FORWARD: policy ACCEPT', 'nat POSTROUTING: MASQUERADE'],
    ['filter FORWARD: policy ACCEPT'],
    ['filter FORWARD: policy ACCEPT'],
    ['filter FORWARD: policy ACCEPT'],
  ]);
  t.is(hopsByPacket(hops)[1]![0]!.src, '198.51.100.8');
});

test("parse: with bridge-nf-call-iptables=0 a bridged packet meets no iptables chain, only the tracer's bridge chains", (t) => {
  const text = fixture('bridge-nf-call-off');
  t.deepEqual(parseTraceLines(text), []);
  const tracer = parseTraceLines(text, { includeTracer: true });
  t.deepEqual(
    tracer.map((h) => `${h.family} ${h.chain}`),
    ['bridge mark_pre', 'bridge mark_pre', 'bridge port_fwd', 'bridge port_post'],
  );
  t.like(tracer[2], {
    iif: 'veth0',
    oif: 'veth1',
    physin: 'veth0',
    physout: 'veth1',
    src: '10.55.66.2',
    dst: '10.55.66.3',
    proto: 'icmp',
  });
});

test('parse: ebtables-nft rules are hops of family bridge, in order with the iptables ones', (t) => {
  const hops = parseTraceLines(fixture('ebtables'));
  t.deepEqual(paths(hops), [
    [
      'bridge nat PREROUTING: ACCEPT',
      'nat PREROUTING: policy ACCEPT',
      'bridge filter FORWARD: ACCEPT',
      'filter FORWARD: policy DROP',
    ],
  ]);
  t.like(hops[2], {
    family: 'bridge',
    handle: 2,
    iif: 'veth0',
    oif: 'veth1',
    physin: 'veth0',
    physout: 'veth1',
    src: '10.55.66.2',
    proto: 'icmp',
  });
  t.is(hops[2]!.rule, undefined, 'xtables-monitor prints no ebtables rule; startTrace takes it from ebtables-save');
});

test('parse: DNAT shows in nat PREROUTING of the first packet only; later hops see the new destination', (t) => {
  const hops = parseTraceLines(fixture('dnat'));
  const [first, ...later] = hopsByPacket(hops);
  t.deepEqual(first!.map(describeHop), [
    'nat PREROUTING: DNAT',
    'filter FORWARD: ACCEPT',
    'nat POSTROUTING: policy ACCEPT',
  ]);
  t.like(first![0], {
    rule: '-A PREROUTING -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000',
    handle: 4,
    verdict: 'ACCEPT',
    dst: '172.17.9.103',
    dport: 2345,
    proto: 'tcp',
    iif: 'eth1',
  });
  t.like(first![1], {
    rule: '-A FORWARD -i eth1 -o hwchiu0 -j ACCEPT',
    dst: '10.55.66.2',
    dport: 8000,
    oif: 'hwchiu0',
    physout: 'veth0',
  });
  t.true(later.length >= 3);
  for (const packet of later) t.deepEqual(packet.map(describeHop), ['filter FORWARD: ACCEPT']);
});

test('parse: a kernel trace id reused by a later packet of the flow still starts a new packet', (t) => {
  const text = fixture('dnat-id-reuse');
  const marks = text
    .split('\n')
    .filter((l) => /:mark_pre:rule:/.test(l))
    .map((l) => l.split(/\s+/)[3]);
  t.true(new Set(marks).size < marks.length, 'the recording does reuse an id');
  const packets = hopsByPacket(parseTraceLines(text));
  t.is(packets.length, marks.length);
  t.deepEqual(
    packets.map((p) => p[0]!.packetId),
    ['ec0f8b98', '8b3de4c7', 'ec0f8b98#2', 'b0b85bf5', 'b0b85bf5#2'],
  );
});

test('parse: a bridged packet that is routed keeps one packet id although the kernel re-keys it (MASQUERADE)', (t) => {
  const text = fixture('masquerade');
  t.regex(
    text,
    /PACKET: 2 (\w+) IN=hwchiu0 MAC[^\n]*\n[^\n]*\n[^\n]*\nPACKET: 2 (?!\1)\w+ IN=hwchiu0 OUT=eth0/,
    'the recording changes id before FORWARD',
  );
  const packets = hopsByPacket(parseTraceLines(text));
  t.deepEqual(
    packets.map((p) => p.map(describeHop)),
    [
      ['nat PREROUTING: policy ACCEPT', 'filter FORWARD: ACCEPT', 'nat POSTROUTING: MASQUERADE'],
      ['filter FORWARD: ACCEPT'],
    ],
  );
  t.like(packets[0]![2], {
    rule: '-A POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE',
    src: '10.55.66.2',
    oif: 'eth0',
    physin: 'veth0',
  });
});

test('parse: JUMP, RETURN and REJECT, with the ICMP error REJECT sends printed in the middle', (t) => {
  const hops = parseTraceLines(fixture('jump-return-reject'));
  t.deepEqual(paths(hops), [
    ['nat PREROUTING: policy ACCEPT', 'filter FORWARD: MYCHAIN', 'filter MYCHAIN: RETURN', 'filter FORWARD: REJECT'],
  ]);
  t.like(hops[1], { verdict: 'JUMP:MYCHAIN', rule: '-A FORWARD -p icmp -j MYCHAIN' });
  t.like(hops[2], { verdict: 'RETURN' });
  t.like(hops[3], {
    verdict: 'DROP',
    rule: '-A FORWARD -p icmp -m comment --comment "no ping for you" -j REJECT --reject-with icmp-port-unreachable',
  });
});

test('parse: 30 fast echo requests stay 30 packets although the kernel gives later packets the FORWARD ids of earlier ones', (t) => {
  const text = fixture('fast-ping');
  const forwardIds = text
    .split('\n')
    .filter((l) => l.includes(' filter:FORWARD:'))
    .map((l) => l.trim().split(/\s+/)[2]);
  t.true(new Set(forwardIds).size < forwardIds.length, 'the recording does reuse FORWARD ids');
  const packets = hopsByPacket(parseTraceLines(text));
  t.is(packets.length, 30);
  t.deepEqual(packets[0]!.map(describeHop), [
    'nat PREROUTING: policy ACCEPT',
    'filter FORWARD: ACCEPT',
    'nat POSTROUTING: MASQUERADE',
  ]);
  for (const packet of packets.slice(1)) t.deepEqual(packet.map(describeHop), ['filter FORWARD: ACCEPT']);
  t.is(new Set(packets.map((p) => p[0]!.packetId)).size, 30);
});

test('parse: two tracer sessions in one namespace mark the same packet: one packet, seen by both', (t) => {
  const text = fixture('two-sessions');
  const tables = [...new Set([...text.matchAll(/TRACE: \d+ \w+ (nflab_trace_\w+):/g)].map((m) => m[1]!))];
  t.is(tables.length, 2);
  const expected = [['nat PREROUTING: policy ACCEPT', 'filter FORWARD: ACCEPT', 'nat POSTROUTING: MASQUERADE']];
  t.deepEqual(paths(parseTraceLines(text)), expected);
  for (const table of tables) t.deepEqual(paths(parseTraceLines(text, { markedBy: table })), expected);
  t.deepEqual(parseTraceLines(text, { markedBy: 'nflab_trace_other' }), []);
});

test('parse: nat chains are not traversed until conntrack is on in the namespace (G1, docs/kernel-facts.md)', (t) => {
  t.deepEqual(paths(parseTraceLines(fixture('conntrack-off'))), [
    ['filter INPUT: CONTINUE', 'filter INPUT: policy ACCEPT'],
  ]);
  t.deepEqual(paths(parseTraceLines(fixture('conntrack-on'))), [
    [
      'nat PREROUTING: CONTINUE',
      'nat PREROUTING: policy ACCEPT',
      'filter INPUT: CONTINUE',
      'filter INPUT: policy ACCEPT',
    ],
  ]);
});

test('filter: values that are not addresses or ports are refused before reaching nft', (t) => {
  t.throws(() => markMatches({ src: '10.0.0.1; flush ruleset' }), { instanceOf: LabError });
  t.throws(() => markMatches({ dst: '300.1.1.1' }), { instanceOf: LabError });
  t.throws(() => markMatches({ proto: 'tcp', dport: 70000 }), { instanceOf: LabError });
  t.throws(() => markMatches({ proto: 'icmp', dport: 80 }), { instanceOf: LabError });
  t.deepEqual(markMatches({ proto: 'tcp', dst: '172.17.9.103', dport: 2345 }), [
    'meta l4proto tcp ip daddr 172.17.9.103 th dport 2345',
  ]);
  t.is(markMatches({}).length, 4, 'one marking rule per protocol, plus the rest');
});

// ---------------------------------------------------------------- real kernel

async function sh(argv: string[], stdin?: string): Promise<string> {
  const r = await exec.run(argv, { stdin, timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

const inNs = (ns: string) => (argv: string[]) => ['ip', 'netns', 'exec', ns, ...argv];
// Under npx/npm, PATH starts with node_modules/.bin, which holds @vercel/nft's `nft` (an ava dependency).
const nft = (ns: string, ...args: string[]) => inNs(ns)(['env', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'nft', ...args]);

interface Lab {
  host: string;
  c1: string;
  c2: string;
  ext: string;
  client: string;
}

/** docs/labs.md#l1 (c1, c2 on bridge hwchiu0, FORWARD policy DROP), plus with `routed` the L2/L3 parts:
 * hwchiu0 10.55.66.1, ext (198.51.100.8) behind eth0, client 172.17.9.1 on eth1. */
async function buildLab(t: ExecutionContext, routed: boolean): Promise<Lab> {
  const id = randomBytes(3).toString('hex');
  const lab: Lab = {
    host: `ht4-${id}-host`,
    c1: `ht4-${id}-c1`,
    c2: `ht4-${id}-c2`,
    ext: `ht4-${id}-ext`,
    client: `ht4-${id}-cli`,
  };
  const all = routed ? Object.values(lab) : [lab.host, lab.c1, lab.c2];
  t.teardown(async () => {
    for (const ns of all) await exec.run(['ip', 'netns', 'del', ns]);
  });
  for (const ns of all) {
    await sh(['ip', 'netns', 'add', ns]);
    await sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  }
  const h = ['ip', '-n', lab.host];
  await sh([...h, 'link', 'add', 'hwchiu0', 'type', 'bridge']);
  await sh([...h, 'link', 'set', 'hwchiu0', 'up']);
  for (const [c, port, addr] of [
    [lab.c1, 'veth0', '10.55.66.2'],
    [lab.c2, 'veth1', '10.55.66.3'],
  ] as const) {
    await sh([...h, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c]);
    await sh([...h, 'link', 'set', port, 'master', 'hwchiu0', 'up']);
    await sh(['ip', '-n', c, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
    await sh(['ip', '-n', c, 'link', 'set', 'eth0', 'up']);
  }
  await sh(inNs(lab.host)(['sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=1']));
  await sh(inNs(lab.host)(['sysctl', '-qw', `net.ipv4.ip_forward=${routed ? 1 : 0}`]));
  await sh(inNs(lab.host)(['iptables', '-P', 'FORWARD', 'DROP']));
  if (!routed) return lab;
  await sh([...h, 'addr', 'add', '10.55.66.1/24', 'dev', 'hwchiu0']);
  await sh(['ip', '-n', lab.c1, 'route', 'add', 'default', 'via', '10.55.66.1']);
  for (const [peer, dev, hostAddr, peerAddr] of [
    [lab.ext, 'eth0', '10.0.2.15', '10.0.2.2'],
    [lab.client, 'eth1', '172.17.9.103', '172.17.9.1'],
  ] as const) {
    await sh([...h, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', dev, 'netns', peer]);
    await sh([...h, 'addr', 'add', `${hostAddr}/24`, 'dev', dev]);
    await sh([...h, 'link', 'set', dev, 'up']);
    await sh(['ip', '-n', peer, 'addr', 'add', `${peerAddr}/24`, 'dev', dev]);
    await sh(['ip', '-n', peer, 'link', 'set', dev, 'up']);
  }
  await sh(['ip', '-n', lab.ext, 'addr', 'add', '198.51.100.8/32', 'dev', 'lo']);
  await sh([...h, 'route', 'add', 'default', 'via', '10.0.2.2']);
  // docs/labs.md#l3 setup: lab1.sh's MASQUERADE and FORWARD whitelist.
  const ipt = (...args: string[]) => sh(inNs(lab.host)(['iptables', ...args]));
  await ipt('-t', 'nat', '-I', 'POSTROUTING', '-s', '10.55.66.2/32', '-o', 'eth0', '-j', 'MASQUERADE');
  await ipt('-I', 'FORWARD', '-i', 'hwchiu0', '-o', 'eth0', '-j', 'ACCEPT');
  await ipt('-I', 'FORWARD', '-i', 'eth0', '-o', 'hwchiu0', '-j', 'ACCEPT');
  await ipt('-I', 'FORWARD', '-i', 'hwchiu0', '-o', 'eth1', '-j', 'ACCEPT');
  await ipt('-I', 'FORWARD', '-i', 'eth1', '-o', 'hwchiu0', '-j', 'ACCEPT');
  return lab;
}

/** What the tracer must leave untouched: iptables-save without counters/dates, and the nft ruleset. */
async function rulesetOf(ns: string): Promise<{ saved: string; nft: string }> {
  const saved = (await sh(inNs(ns)(['iptables-save'])))
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/, ''))
    .join('\n');
  const ruleset = (await sh(nft(ns, 'list', 'ruleset'))).replace(/counter packets \d+ bytes \d+/g, 'counter');
  return { saved, nft: ruleset };
}

async function monitorsIn(ns: string): Promise<string[]> {
  const pids = (await sh(['ip', 'netns', 'pids', ns])).split('\n').filter(Boolean);
  const names = await Promise.all(
    pids.map(async (pid) => (await exec.run(['cat', `/proc/${pid}/cmdline`])).stdout.replace(/\0/g, ' ')),
  );
  return names.filter((n) => n.includes('xtables-monitor'));
}

async function assertNoResidue(t: ExecutionContext, ns: string, before: { saved: string; nft: string }): Promise<void> {
  const after = await rulesetOf(ns);
  t.is(after.saved, before.saved, 'iptables-save is as before');
  t.is(after.nft, before.nft, 'nft list ruleset is as before');
  t.notRegex(after.nft, /nflab_trace|nftrace/);
  t.notRegex(after.saved, /nflab-trace|TRACE/);
  t.deepEqual(await monitorsIn(ns), [], 'no xtables-monitor left running');
}

test.serial(
  'real kernel: L1 echo request between bridged containers is dropped by filter FORWARD policy DROP',
  async (t) => {
    const lab = await buildLab(t, false);
    const before = await rulesetOf(lab.host);
    const session = await startTrace(exec, inNs(lab.host), { proto: 'icmp', src: '10.55.66.2', dst: '10.55.66.3' });
    const ping = await exec.run(inNs(lab.c1)(['ping', '-c1', '-W1', '10.55.66.3']));
    const hops = await session.stop();
    t.is(ping.code, 1, 'the ping fails');
    t.deepEqual(session.problems, []);
    t.deepEqual(paths(hops), [['filter FORWARD: policy DROP']]);
    t.like(hops[0], {
      family: 'ip',
      table: 'filter',
      chain: 'FORWARD',
      policy: true,
      verdict: 'DROP',
      iif: 'hwchiu0',
      oif: 'hwchiu0',
      physin: 'veth0',
      physout: 'veth1',
      src: '10.55.66.2',
      dst: '10.55.66.3',
      proto: 'icmp',
    });
    await assertNoResidue(t, lab.host, before);
  },
);

test.serial(
  'real kernel: L1 step 2, bridge-nf-call-iptables=0: the echo request is bridged veth0 -> veth1 without meeting iptables',
  async (t) => {
    const lab = await buildLab(t, false);
    await sh(inNs(lab.host)(['sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=0']));
    const session = await startTrace(exec, inNs(lab.host), { proto: 'icmp', dst: '10.55.66.3' });
    const ping = await exec.run(inNs(lab.c1)(['ping', '-c1', '-W1', '10.55.66.3']));
    const all = await session.stop({ includeTracer: true });
    t.is(ping.code, 0, 'the ping succeeds');
    t.deepEqual(await session.stop(), [], 'no iptables chain saw it');
    t.true(all.length > 0 && all.every((h) => h.family === 'bridge' && h.table === session.table));
    t.like(
      all.find((h) => h.chain === 'port_fwd'),
      { physin: 'veth0', physout: 'veth1', src: '10.55.66.2', dst: '10.55.66.3', proto: 'icmp' },
    );
  },
);

test.serial('real kernel: an ebtables rule on the bridge is a hop with its ebtables-save text', async (t) => {
  const lab = await buildLab(t, false);
  await sh(inNs(lab.host)(['ebtables', '-A', 'FORWARD', '-p', 'IPv4', '--ip-src', '10.55.66.2', '-j', 'ACCEPT']));
  const session = await startTrace(exec, inNs(lab.host), { proto: 'icmp', dst: '10.55.66.3' });
  await exec.run(inNs(lab.c1)(['ping', '-c1', '-W1', '10.55.66.3']));
  const hops = await session.stop();
  t.deepEqual(paths(hops), [['bridge filter FORWARD: ACCEPT', 'filter FORWARD: policy DROP']]);
  t.like(hops[0], {
    rule: '-A FORWARD -p IPv4 --ip-src 10.55.66.2 -j ACCEPT',
    ruleIndex: 1,
    physin: 'veth0',
    physout: 'veth1',
  });
});

test.serial('real kernel: L3 SYN is DNATed in nat PREROUTING to 10.55.66.2:8000 and accepted in FORWARD', async (t) => {
  const lab = await buildLab(t, true);
  const dnat = ['-p', 'tcp', '-m', 'tcp', '--dport', '2345', '-j', 'DNAT', '--to-destination', '10.55.66.2:8000'];
  await sh(inNs(lab.host)(['iptables', '-t', 'nat', '-A', 'PREROUTING', ...dnat]));
  await sh(['ip', '-n', lab.client, 'route', 'add', 'default', 'via', '172.17.9.103']);
  const server: Process = exec.spawn(
    inNs(lab.c1)(['socat', 'TCP-LISTEN:8000,fork,reuseaddr', 'EXEC:echo hello-from-c1']),
  );
  t.teardown(() => server.kill('SIGKILL'));
  for (let i = 0; i < 100 && !(await sh(inNs(lab.c1)(['ss', '-Hltn', 'sport', '=', ':8000']))).includes('8000'); i++)
    await new Promise((r) => setTimeout(r, 20));
  const before = await rulesetOf(lab.host);

  const session = await startTrace(exec, inNs(lab.host), { proto: 'tcp', dst: '172.17.9.103', dport: 2345 });
  const client = await exec.run(inNs(lab.client)(['socat', '-T2', '-', 'TCP:172.17.9.103:2345,connect-timeout=2']), {
    timeoutMs: 10_000,
  });
  const hops = await session.stop();
  t.is(client.stdout.trim(), 'hello-from-c1');
  t.deepEqual(session.problems, []);

  const [syn, ...rest] = hopsByPacket(hops);
  t.deepEqual(syn!.map(describeHop), [
    'nat PREROUTING: DNAT',
    'filter FORWARD: ACCEPT',
    'nat POSTROUTING: policy ACCEPT',
  ]);
  t.like(syn![0], {
    rule: `-A PREROUTING ${dnat.join(' ')}`,
    ruleIndex: 1,
    verdict: 'ACCEPT',
    proto: 'tcp',
    iif: 'eth1',
    dst: '172.17.9.103',
    dport: 2345,
  });
  // iptables numbers the FORWARD rules 1..4 in reverse order of insertion: eth1 -> hwchiu0 was inserted last.
  t.like(syn![1], {
    rule: '-A FORWARD -i eth1 -o hwchiu0 -j ACCEPT',
    ruleIndex: 1,
    iif: 'eth1',
    oif: 'hwchiu0',
    physout: 'veth0',
    dst: '10.55.66.2',
    dport: 8000,
  });
  t.true(rest.length >= 2, 'the rest of the connection was traced too');
  for (const packet of rest)
    t.false(
      packet.some((h) => h.table === 'nat'),
      'nat chains see only the first packet',
    );
  await assertNoResidue(t, lab.host, before);
});

test.serial(
  'real kernel: L2 echo request is MASQUERADEd in nat POSTROUTING, one packet id across the bridge-to-route re-keying',
  async (t) => {
    const lab = await buildLab(t, true);
    const before = await rulesetOf(lab.host);
    const session = await startTrace(exec, inNs(lab.host), { proto: 'icmp', src: '10.55.66.2', dst: '198.51.100.8' });
    const ping = await exec.run(inNs(lab.c1)(['ping', '-c2', '-i0.2', '-W1', '198.51.100.8']));
    const hops = await session.stop();
    t.is(ping.code, 0, 'the ping succeeds through MASQUERADE');
    t.deepEqual(session.problems, []);
    t.deepEqual(paths(hops), [['filter FORWARD: ACCEPT', 'nat POSTROUTING: MASQUERADE'], ['filter FORWARD: ACCEPT']]);
    t.like(hops[0], {
      rule: '-A FORWARD -i hwchiu0 -o eth0 -j ACCEPT',
      ruleIndex: 4,
      iif: 'hwchiu0',
      oif: 'eth0',
      physin: 'veth0',
    });
    t.like(hops[1], {
      rule: '-A POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE',
      ruleIndex: 1,
      src: '10.55.66.2',
      oif: 'eth0',
    });
    await assertNoResidue(t, lab.host, before);
  },
);

test.serial(
  'real kernel: a tracer hears only its own namespace; the first packet after startTrace is always seen',
  async (t) => {
    // Two identical L1 labs: same addresses, same traffic, different namespaces.
    const a = await buildLab(t, false);
    const b = await buildLab(t, false);
    for (const lab of [a, b]) await sh(inNs(lab.host)(['iptables', '-P', 'FORWARD', 'ACCEPT']));
    for (let round = 0; round < 5; round++) {
      const inA = await startTrace(exec, inNs(a.host), { proto: 'icmp', dst: '10.55.66.3' });
      const inB = await startTrace(exec, inNs(b.host), { proto: 'icmp', dst: '10.55.66.3' });
      await sh(inNs(a.c1)(['ping', '-c1', '-W1', '10.55.66.3']));
      await sh(inNs(b.c1)(['ping', '-c3', '-i0.1', '-W1', '10.55.66.3']));
      const [hopsA, hopsB] = await Promise.all([inA.stop(), inB.stop()]);
      t.is(
        hopsByPacket(hopsA).length,
        1,
        `round ${round}: namespace A saw its one echo request and nothing of B's three`,
      );
      t.is(hopsByPacket(hopsB).length, 3, `round ${round}: namespace B saw its three`);
      t.true(hopsA.every((h) => describeHop(h) === 'filter FORWARD: policy ACCEPT'));
    }
  },
);

test.serial(
  'real kernel: two sessions side by side in one namespace each report only the packets their filter chose',
  async (t) => {
    const lab = await buildLab(t, false);
    await sh(inNs(lab.host)(['iptables', '-P', 'FORWARD', 'ACCEPT']));
    const before = await rulesetOf(lab.host);
    const requests = await startTrace(exec, inNs(lab.host), { proto: 'icmp', src: '10.55.66.2', dst: '10.55.66.3' });
    const replies = await startTrace(exec, inNs(lab.host), { proto: 'icmp', src: '10.55.66.3', dst: '10.55.66.2' });
    t.not(requests.table, replies.table);
    await sh(inNs(lab.c1)(['ping', '-c2', '-i0.1', '-W1', '10.55.66.3']));
    const [fromC1, fromC2] = await Promise.all([requests.stop(), replies.stop()]);
    t.is(hopsByPacket(fromC1).length, 2);
    t.true(fromC1.every((h) => h.src === '10.55.66.2' && h.physin === 'veth0' && h.physout === 'veth1'));
    t.is(hopsByPacket(fromC2).length, 2);
    t.true(fromC2.every((h) => h.src === '10.55.66.3' && h.physin === 'veth1' && h.physout === 'veth0'));
    await assertNoResidue(t, lab.host, before);
  },
);
