// Parsers checked against output recorded from the real tools on this kernel (test/fixtures,
// see its README). Expected values are read off the samples by eye, never computed by a parser.
// Tests marked "hand-written" feed lines that were typed, not recorded, to pin down tolerance.

import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { splitWords } from '../src/lab/words.ts';
import { parseConntrack } from '../src/observe/parse-conntrack.ts';
import { parseIptablesSave, ruleSpecMatches } from '../src/observe/parse-iptables-save.ts';
import { parsePing } from '../src/observe/parse-ping.ts';
import { parseTcpClient, responderArgv, tcpClientArgv } from '../src/observe/parse-tcp-client.ts';
import { parseTcpdump, parseTcpdumpLine } from '../src/observe/parse-tcpdump.ts';
import type { PacketRecord, SavedRule } from '../src/observe/types.ts';

function fixture(path: string): string {
  return readFileSync(new URL(`./fixtures/${path}`, import.meta.url), 'utf8');
}

interface RecordedRun {
  netns: string;
  argv: string[];
  exitCode: number;
  stdout: string;
  stderr: string;
}

function run(path: string): RecordedRun {
  return JSON.parse(fixture(path)) as RecordedRun;
}

function withoutLine(records: PacketRecord[]): Array<Omit<PacketRecord, 'line'>> {
  return records.map(({ line: _line, ...rest }) => rest);
}

// ---- tcpdump -----------------------------------------------------------------------------------

test('tcpdump veth0: ARP, ICMP, TCP handshake and RST, DNS, UDP, ICMP6', (t) => {
  const records = parseTcpdump(fixture('tcpdump/veth0.txt'));
  t.is(records.length, 33); // the capture's own count: "33 packets captured"
  t.deepEqual(withoutLine(records.slice(0, 3)), [
    { proto: 'arp', src: '10.55.66.2', dst: '10.55.66.3' }, // Request who-has 10.55.66.3 tell 10.55.66.2
    { proto: 'arp', src: '10.55.66.3' }, // Reply 10.55.66.3 is-at e2:86:c4:fc:5a:36
    { proto: 'icmp', src: '10.55.66.2', dst: '10.55.66.3', icmp: 'echo-request' },
  ]);
  t.deepEqual(records[3], {
    proto: 'icmp',
    src: '10.55.66.3',
    dst: '10.55.66.2',
    icmp: 'echo-reply',
    line: '00:07:41.444424 IP 10.55.66.3 > 10.55.66.2: ICMP echo reply, id 20096, seq 1, length 64',
  });
  t.deepEqual(withoutLine([records[6]!, records[7]!, records[8]!, records[9]!, records[10]!]), [
    { proto: 'tcp', src: '10.55.66.2', dst: '10.55.66.3', sport: 34740, dport: 8000, flags: 'S' },
    { proto: 'tcp', src: '10.55.66.3', dst: '10.55.66.2', sport: 8000, dport: 34740, flags: 'S.' },
    { proto: 'tcp', src: '10.55.66.2', dst: '10.55.66.3', sport: 34740, dport: 8000, flags: '.' },
    { proto: 'tcp', src: '10.55.66.2', dst: '10.55.66.3', sport: 34740, dport: 8000, flags: 'F.' },
    { proto: 'tcp', src: '10.55.66.3', dst: '10.55.66.2', sport: 8000, dport: 34740, flags: 'P.' },
  ]);
  // Connection to a closed port: SYN answered by RST-ACK.
  t.deepEqual(withoutLine(records.slice(14, 16)), [
    { proto: 'tcp', src: '10.55.66.2', dst: '10.55.66.3', sport: 60250, dport: 8001, flags: 'S' },
    { proto: 'tcp', src: '10.55.66.3', dst: '10.55.66.2', sport: 8001, dport: 60250, flags: 'R.' },
  ]);
  // `41162+ A? example.test. (30)`: DNS-decoded UDP, then the port-unreachable answer.
  t.deepEqual(withoutLine(records.slice(20, 22)), [
    { proto: 'udp', src: '10.55.66.2', dst: '198.51.100.8', sport: 36910, dport: 53 },
    { proto: 'icmp', src: '198.51.100.8', dst: '10.55.66.2', icmp: 'udp-port-unreachable' },
  ]);
  t.deepEqual(withoutLine([records[22]!]), [
    { proto: 'icmp6', src: 'fe80::e07a:96ff:fe83:6f68', dst: 'ff02::2', icmp: 'router-solicitation' },
  ]);
  // `UDP, length 5`
  t.deepEqual(withoutLine([records[25]!]), [
    { proto: 'udp', src: '10.55.66.2', dst: '198.51.100.8', sport: 32797, dport: 9999 },
  ]);
  t.deepEqual(withoutLine(records.slice(27, 31)), [
    { proto: 'icmp6', src: 'fd00:55::2', dst: 'ff02::1:ff00:3', icmp: 'neighbor-solicitation' },
    { proto: 'icmp6', src: 'fd00:55::3', dst: 'fd00:55::2', icmp: 'neighbor-advertisement' },
    { proto: 'icmp6', src: 'fd00:55::2', dst: 'fd00:55::3', icmp: 'echo-request' },
    { proto: 'icmp6', src: 'fd00:55::3', dst: 'fd00:55::2', icmp: 'echo-reply' },
  ]);
});

test('tcpdump -e: the same 33 packets, captured at the same time, parse to the same records', (t) => {
  const linkLevel = parseTcpdump(fixture('tcpdump/veth0-e.txt'));
  t.is(linkLevel.length, 33);
  t.deepEqual(withoutLine(linkLevel), withoutLine(parseTcpdump(fixture('tcpdump/veth0.txt'))));
  // Spot checks straight from the -e lines.
  t.deepEqual(withoutLine([linkLevel[0]!]), [{ proto: 'arp', src: '10.55.66.2', dst: '10.55.66.3' }]);
  t.deepEqual(withoutLine([linkLevel[18]!]), [
    { proto: 'icmp', src: '10.55.66.2', dst: '198.51.100.8', icmp: 'echo-request' },
  ]);
  t.true(linkLevel[18]!.line.startsWith('00:07:42.485930 e2:7a:96:83:6f:68 > 06:29:f6:03:9e:02, ethertype IPv4'));
});

test('tcpdump status lines on stderr are not packets', (t) => {
  for (const name of ['veth0', 'veth0-e', 'host-eth0', 'host-eth1', 'host-hwchiu0', 'icmp-errors']) {
    t.deepEqual(parseTcpdump(fixture(`tcpdump/${name}.stderr.txt`)), [], name);
  }
  t.is(parseTcpdumpLine('listening on veth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes'), undefined);
  t.is(parseTcpdumpLine('33 packets captured'), undefined);
  t.is(parseTcpdumpLine(''), undefined);
});

test('tcpdump host eth0: MASQUERADE shows the host address as source', (t) => {
  const records = parseTcpdump(fixture('tcpdump/host-eth0.txt'));
  t.is(records.length, 19);
  t.deepEqual(withoutLine(records.slice(0, 2)), [
    { proto: 'icmp', src: '10.0.2.15', dst: '198.51.100.8', icmp: 'echo-request' },
    { proto: 'icmp', src: '198.51.100.8', dst: '10.0.2.15', icmp: 'echo-reply' },
  ]);
  // `domain [length 5 < 12] (invalid)`: five bytes sent to port 53 that tcpdump failed to decode as DNS.
  t.deepEqual(withoutLine([records[4]!]), [
    { proto: 'udp', src: '10.0.2.15', dst: '198.51.100.8', sport: 39607, dport: 53 },
  ]);
  // `Flags [P.], ... length 27: HTTP` (port 8080 guessed as HTTP) is still TCP with its flags.
  t.deepEqual(withoutLine([records[13]!]), [
    { proto: 'tcp', src: '198.51.100.8', dst: '10.0.2.15', sport: 8080, dport: 43338, flags: 'P.' },
  ]);
  // The SYN to a dropped port and its retransmission.
  t.deepEqual(withoutLine(records.slice(17)), [
    { proto: 'tcp', src: '10.0.2.15', dst: '198.51.100.8', sport: 36942, dport: 81, flags: 'S' },
    { proto: 'tcp', src: '10.0.2.15', dst: '198.51.100.8', sport: 36942, dport: 81, flags: 'S' },
  ]);
});

test('tcpdump DNAT: eth1 shows the public address, the bridge the translated destination', (t) => {
  const outside = parseTcpdump(fixture('tcpdump/host-eth1.txt'));
  const bridge = parseTcpdump(fixture('tcpdump/host-hwchiu0.txt'));
  t.is(outside.length, 66);
  t.is(bridge.length, 80);
  t.deepEqual(withoutLine(outside.slice(2, 4)), [
    { proto: 'tcp', src: '172.17.9.1', dst: '172.17.9.103', sport: 56844, dport: 2345, flags: 'S' },
    { proto: 'tcp', src: '172.17.9.103', dst: '172.17.9.1', sport: 2345, dport: 56844, flags: 'S.' },
  ]);
  t.deepEqual(withoutLine(bridge.slice(7, 9)), [
    { proto: 'tcp', src: '172.17.9.1', dst: '10.55.66.2', sport: 56844, dport: 8000, flags: 'S' },
    { proto: 'tcp', src: '10.55.66.2', dst: '172.17.9.1', sport: 8000, dport: 56844, flags: 'S.' },
  ]);
  // The last packets on eth1: UDP to a closed port, and a ping the FORWARD policy dropped.
  t.deepEqual(withoutLine(outside.slice(-3)), [
    { proto: 'udp', src: '172.17.9.1', dst: '172.17.9.103', sport: 33325, dport: 9999 },
    { proto: 'icmp', src: '172.17.9.103', dst: '172.17.9.1', icmp: 'udp-port-unreachable' },
    { proto: 'icmp', src: '172.17.9.1', dst: '10.0.2.2', icmp: 'echo-request' },
  ]);
});

test('tcpdump ICMP errors keep their kind and drop addresses', (t) => {
  const records = parseTcpdump(fixture('tcpdump/icmp-errors.txt'));
  t.deepEqual(
    records.map((r) => r.icmp),
    [
      'echo-request',
      'host-unreachable-admin-prohibited-filter', // REJECT --reject-with icmp-admin-prohibited
      'echo-request',
      'net-unreachable', // icmp-net-unreachable
      'echo-request',
      'host-unreachable-admin-prohibited', // icmp-host-prohibited
      'host-unreachable-admin-prohibited-filter', // the same REJECT answering a TCP SYN
      'echo-request',
      'time-exceeded-in-transit', // ping -t1
      'echo-request',
      'host-unreachable', // no ARP answer behind the router
    ],
  );
  t.deepEqual(withoutLine([records[10]!]), [
    { proto: 'icmp', src: '10.0.2.15', dst: '10.55.66.2', icmp: 'host-unreachable' },
  ]);
});

test('tcpdump -i any, with and without -e: interface and direction are skipped', (t) => {
  const expected = [
    { proto: 'icmp', src: '10.55.66.2', dst: '10.55.66.3', icmp: 'echo-request' },
    { proto: 'icmp', src: '10.55.66.3', dst: '10.55.66.2', icmp: 'echo-reply' },
  ];
  t.deepEqual(withoutLine(parseTcpdump(fixture('tcpdump/c1-any.txt'))), expected);
  t.deepEqual(withoutLine(parseTcpdump(fixture('tcpdump/c1-any-e.txt'))), expected);
});

test('tcpdump hand-written lines: unknown packets are kept as other, 802.1Q is unwrapped', (t) => {
  t.deepEqual(
    parseTcpdumpLine(
      '00:00:01.000000 STP 802.1d, Config, Flags [none], bridge-id 8000.aa:bb:cc:dd:ee:ff.8001, length 35',
    ),
    {
      proto: 'other',
      line: '00:00:01.000000 STP 802.1d, Config, Flags [none], bridge-id 8000.aa:bb:cc:dd:ee:ff.8001, length 35',
    },
  );
  const vlan = parseTcpdumpLine(
    '00:00:01.000000 aa:bb:cc:dd:ee:01 > aa:bb:cc:dd:ee:02, ethertype 802.1Q (0x8100), length 102: vlan 10, p 0, ethertype IPv4 (0x0800), 10.1.1.1 > 10.1.1.2: ICMP echo request, id 1, seq 1, length 64',
  );
  t.like(vlan, { proto: 'icmp', src: '10.1.1.1', dst: '10.1.1.2', icmp: 'echo-request' });
  t.like(
    parseTcpdumpLine(
      '00:00:01.000000 IP 10.0.0.1 > 10.0.0.2: GREv0, length 88: IP 192.168.0.1 > 192.168.0.2: ICMP echo request, id 1, seq 1, length 64',
    ),
    {
      proto: 'other',
      src: '10.0.0.1',
      dst: '10.0.0.2',
    },
  );
  t.like(parseTcpdumpLine('00:00:01.000000 IP6 fd00::1.5000 > fd00::2.80: Flags [S], seq 1, win 64800, length 0'), {
    proto: 'tcp',
    src: 'fd00::1',
    dst: 'fd00::2',
    sport: 5000,
    dport: 80,
    flags: 'S',
  });
});

// ---- iptables-save -c --------------------------------------------------------------------------

const kube = parseIptablesSave(fixture('iptables-save/kube-like.txt'));

function rule(table: string, chain: string, index: number): SavedRule {
  const found = kube.rules.find((r) => r.table === table && r.chain === chain && r.index === index);
  if (!found) throw new Error(`no rule ${table} ${chain} ${index}`);
  return found;
}

test('iptables-save: chains of all four tables with policies and counters', (t) => {
  t.is(kube.chains.length, 21);
  t.deepEqual(
    kube.chains.filter((c) => c.table === 'filter'),
    [
      { table: 'filter', chain: 'INPUT', policy: 'ACCEPT', packets: 0, bytes: 0 },
      { table: 'filter', chain: 'FORWARD', policy: 'DROP', packets: 1, bytes: 84 },
      { table: 'filter', chain: 'OUTPUT', policy: 'ACCEPT', packets: 0, bytes: 0 },
      { table: 'filter', chain: 'KUBE-FIREWALL', policy: '-', packets: 0, bytes: 0 },
    ],
  );
  t.deepEqual(
    kube.chains.filter((c) => c.table === 'raw').map((c) => c.chain),
    ['PREROUTING', 'OUTPUT'],
  );
  t.deepEqual(
    kube.chains.filter((c) => c.table === 'nat' && c.policy === '-').map((c) => c.chain),
    ['KUBE-MARK-MASQ', 'KUBE-POSTROUTING', 'KUBE-SEP-C1', 'KUBE-SEP-C2', 'KUBE-SERVICES', 'KUBE-SVC-TEST'],
  );
});

test('iptables-save: rules keep their saved text, counters and 1-based index per chain', (t) => {
  t.is(kube.rules.length, 27);
  t.deepEqual(rule('nat', 'PREROUTING', 1), {
    table: 'nat',
    chain: 'PREROUTING',
    index: 1,
    spec: '-d 172.17.9.103/32 -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000',
    packets: 1,
    bytes: 60,
  });
  // Two identical rules: only the index tells them apart.
  t.like(rule('filter', 'FORWARD', 1), { spec: '-p tcp -m tcp --dport 8002 -j DROP', packets: 0, bytes: 0 });
  t.like(rule('filter', 'FORWARD', 2), { spec: '-p tcp -m tcp --dport 8002 -j DROP', packets: 2, bytes: 120 });
  t.like(rule('filter', 'FORWARD', 7), {
    spec: '-d 10.55.66.2/32 -i eth1 -o hwchiu0 -p tcp -m tcp --dport 8000 -j ACCEPT',
    packets: 1,
    bytes: 60,
  });
  t.like(rule('filter', 'INPUT', 2), {
    spec: String.raw`-p tcp -m multiport --dports 22,80 -m comment --comment "say \"hi\" it\'s quoted" -j ACCEPT`,
  });
  t.like(rule('nat', 'KUBE-SVC-TEST', 1), {
    spec: '-m comment --comment "default/k8s-nginx-cluster:" -m statistic --mode random --probability 0.33332999982 -j KUBE-SEP-C1',
    packets: 2,
    bytes: 120,
  });
  t.like(rule('nat', 'KUBE-SVC-TEST', 2), { packets: 4, bytes: 240 });
  t.like(rule('nat', 'KUBE-MARK-MASQ', 1), { spec: '-j MARK --set-xmark 0x4000/0x4000', packets: 6, bytes: 360 });
  t.like(rule('nat', 'POSTROUTING', 1), { spec: '-s 10.55.66.0/24 -o eth0 -j MASQUERADE', packets: 8, bytes: 444 });
  t.like(rule('raw', 'PREROUTING', 1), {
    spec: '-i eth1 -p udp -m udp --dport 9999 -j CT --zone 7',
    packets: 1,
    bytes: 32,
  });
  t.like(rule('mangle', 'PREROUTING', 1), {
    spec: '-i eth1 -p tcp -j MARK --set-xmark 0x1/0xffffffff',
    packets: 35,
    bytes: 1876,
  });
});

test('iptables-save: a netns without tables saves nothing', (t) => {
  t.deepEqual(parseIptablesSave(fixture('iptables-save/empty.txt')), { chains: [], rules: [] });
});

test('iptables-save hand-written: a rule without counters is refused, not read as 0', (t) => {
  const error = t.throws(() => parseIptablesSave('*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n'));
  t.regex(error.message, /without counters.*-c/);
});

test('ruleSpecMatches: words in order, with saved additions in between', (t) => {
  const dnat = rule('nat', 'PREROUTING', 1).spec;
  t.true(ruleSpecMatches(dnat, '-p tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000'));
  t.true(ruleSpecMatches(dnat, '-d 172.17.9.103 -p tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000'));
  t.true(ruleSpecMatches(dnat, '-d 172.17.9.103/32 -j DNAT'));
  t.false(ruleSpecMatches(dnat, '-p tcp --dport 2346 -j DNAT'));
  t.false(ruleSpecMatches(dnat, '-d 172.17.9.10 -j DNAT'));
  t.false(ruleSpecMatches(dnat, '-j DNAT --dport 2345'), 'order of non-basic words matters');
  t.false(ruleSpecMatches(dnat, '-p udp --dport 2345'));
});

test('ruleSpecMatches: -s/-d/-i/-o/-p match in any order, negation must agree', (t) => {
  const accept = rule('filter', 'FORWARD', 7).spec; // -d 10.55.66.2/32 -i eth1 -o hwchiu0 -p tcp -m tcp --dport 8000 -j ACCEPT
  t.true(ruleSpecMatches(accept, '-i eth1 -o hwchiu0 -p tcp -d 10.55.66.2 --dport 8000 -j ACCEPT'));
  t.true(ruleSpecMatches(accept, '--in-interface eth1 --protocol tcp -j ACCEPT'));
  t.false(ruleSpecMatches(accept, '-i eth0 -o hwchiu0 -j ACCEPT'));
  const masq = rule('nat', 'KUBE-SERVICES', 1).spec; // ! -s 10.55.66.0/24 -d 10.98.51.150/32 ...
  t.true(ruleSpecMatches(masq, '! -s 10.55.66.0/24 -d 10.98.51.150/32 -p tcp --dport 80 -j KUBE-MARK-MASQ'));
  t.false(ruleSpecMatches(masq, '-s 10.55.66.0/24 -d 10.98.51.150/32 -j KUBE-MARK-MASQ'));
});

test('ruleSpecMatches: quoted comments are one word', (t) => {
  const portals = rule('nat', 'PREROUTING', 2).spec;
  t.true(ruleSpecMatches(portals, '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'));
  t.true(ruleSpecMatches(portals, "-m comment --comment 'kubernetes service portals'"));
  t.false(ruleSpecMatches(portals, '-m comment --comment kubernetes -j KUBE-SERVICES'));
  t.false(ruleSpecMatches(portals, '--comment "kubernetes postrouting rules"'));
  const quoted = rule('filter', 'INPUT', 2).spec; // --comment "say \"hi\" it\'s quoted"
  t.true(ruleSpecMatches(quoted, `-p tcp --comment 'say "hi" it'"'"'s quoted' -j ACCEPT`));
  t.true(ruleSpecMatches(quoted, String.raw`--comment "say \"hi\" it's quoted"`));
  t.false(ruleSpecMatches(quoted, '--comment "say hi"'));
});

test('ruleSpecMatches: probabilities, marks and address masks as iptables renders them (G5, G6)', (t) => {
  t.true(
    ruleSpecMatches(
      rule('nat', 'KUBE-SVC-TEST', 1).spec,
      '-m statistic --mode random --probability 0.33333 -j KUBE-SEP-C1',
    ),
  );
  t.false(
    ruleSpecMatches(
      rule('nat', 'KUBE-SVC-TEST', 1).spec,
      '-m statistic --mode random --probability 0.5 -j KUBE-SEP-C1',
    ),
  );
  t.true(ruleSpecMatches(rule('nat', 'KUBE-MARK-MASQ', 1).spec, '-j MARK --or-mark 0x4000'));
  t.false(ruleSpecMatches(rule('nat', 'KUBE-MARK-MASQ', 1).spec, '-j MARK --xor-mark 0x4000'));
  t.true(ruleSpecMatches(rule('filter', 'KUBE-FIREWALL', 1).spec, '-m mark --mark 0x8000/0x8000 -j DROP'));

  const saved = parseIptablesSave(fixture('iptables-save/renderings.txt')).rules.filter((r) => r.table === 'mangle');
  const spec = (index: number) => saved.find((r) => r.index === index)!.spec;
  t.true(ruleSpecMatches(spec(1), '-j MARK --set-mark 0x1')); // saved: --set-xmark 0x1/0xffffffff
  t.true(ruleSpecMatches(spec(2), '-j MARK --or-mark 0x4000')); // --set-xmark 0x4000/0x4000
  t.true(ruleSpecMatches(spec(3), '-j MARK --xor-mark 0x4000')); // --set-xmark 0x4000/0x0
  t.false(ruleSpecMatches(spec(3), '-j MARK --or-mark 0x4000'));
  t.true(ruleSpecMatches(spec(5), '-m mark --mark 16')); // --mark 0x10
  t.false(ruleSpecMatches(spec(5), '-m mark --mark 17'));
  t.true(
    ruleSpecMatches(spec(6), String.raw`-m comment --comment 'a\b' -m comment --comment "" -m comment --comment "x y"`),
  );
  t.true(ruleSpecMatches(spec(7), '! -s 10.1.2.3 -d 10.0.0.0/16 -j ACCEPT'));
  t.true(ruleSpecMatches(spec(8), '--probability 0.3333333333 -j RETURN')); // saved 0.33333333349
  t.true(ruleSpecMatches(spec(9), '--probability 0.5 -j RETURN')); // saved 0.50000000000
  t.deepEqual(
    saved.map((r) => [r.index, r.packets, r.bytes]),
    [
      [1, 3, 252],
      [2, 3, 252],
      [3, 3, 252],
      [4, 3, 252],
      [5, 0, 0],
      [6, 3, 252],
      [7, 0, 0],
      [8, 2, 168],
      [9, 1, 84],
    ],
  );
});

test('ruleSpecMatches: an empty pattern is an error, not a match', (t) => {
  t.throws(() => ruleSpecMatches('-j ACCEPT', '   '), { message: /empty rule pattern/ });
});

// ---- splitWords --------------------------------------------------------------------------------

test('splitWords: shell quoting without expansion', (t) => {
  t.deepEqual(splitWords('  -m comment\t--comment "kubernetes service portals" -j KUBE-SERVICES '), [
    '-m',
    'comment',
    '--comment',
    'kubernetes service portals',
    '-j',
    'KUBE-SERVICES',
  ]);
  t.deepEqual(splitWords(`a'b c'd "e\\"f" "\\$HOME" $HOME * ''`), ['ab cd', 'e"f', '$HOME', '$HOME', '*', '']);
  t.deepEqual(splitWords(String.raw`"a\b" a\ b 'c\d'`), [String.raw`a\b`, 'a b', String.raw`c\d`]);
  t.deepEqual(splitWords(String.raw`"it\'s"`, 'iptables'), ["it's"]);
  t.deepEqual(splitWords(''), []);
});

test('splitWords: an unterminated quote is an error that says where', (t) => {
  t.throws(() => splitWords('--comment "open'), { message: /unterminated double quote at column 11/ });
  t.throws(() => splitWords("--comment 'open"), { message: /unterminated single quote at column 11/ });
  t.throws(() => splitWords('"ends with escaped quote\\"'), { message: /unterminated double quote/ });
});

// ---- conntrack -L ------------------------------------------------------------------------------

test('conntrack -L: every entry line after NAT, summary ignored', (t) => {
  const entries = parseConntrack(fixture('conntrack/all.txt'));
  t.is(entries.length, 15); // "15 flow entries have been shown." on stderr
  t.deepEqual(parseConntrack(fixture('conntrack/all.stderr.txt')), []);

  const dnat = entries.find((e) => e.orig.dport === 2345)!;
  t.deepEqual(dnat, {
    proto: 'tcp',
    protonum: 6,
    timeout: 116,
    state: 'TIME_WAIT',
    orig: { src: '172.17.9.1', dst: '172.17.9.103', sport: 56844, dport: 2345 },
    reply: { src: '10.55.66.2', dst: '172.17.9.1', sport: 8000, dport: 56844 },
    flags: ['ASSURED'],
    mark: 0,
    line: 'tcp      6 116 TIME_WAIT src=172.17.9.1 dst=172.17.9.103 sport=56844 dport=2345 src=10.55.66.2 dst=172.17.9.1 sport=8000 dport=56844 [ASSURED] mark=0 use=1',
  });

  const synSent = entries.find((e) => e.orig.dport === 81)!;
  t.like(synSent, {
    state: 'SYN_SENT',
    flags: ['UNREPLIED'],
    orig: { src: '10.55.66.2', dst: '198.51.100.8', sport: 36942, dport: 81 },
    reply: { src: '198.51.100.8', dst: '10.0.2.15', sport: 81, dport: 36942 },
  });

  const icmp = entries.find((e) => e.proto === 'icmp')!;
  t.deepEqual([icmp.protonum, icmp.timeout, icmp.state, icmp.flags], [1, 25, undefined, []]);
  t.deepEqual(icmp.orig, { src: '10.55.66.2', dst: '198.51.100.8', type: 8, code: 0, id: 2250 });
  t.deepEqual(icmp.reply, { src: '198.51.100.8', dst: '10.0.2.15', type: 0, code: 0, id: 2250 });

  // CT --zone 7 in raw PREROUTING: `mark=0 zone=7 use=1` after the tuples.
  const zoned = entries.find((e) => e.orig.dport === 9999)!;
  t.like(zoned, { proto: 'udp', protonum: 17, timeout: 28, flags: ['UNREPLIED'], mark: 0 });
  t.deepEqual(zoned.reply, { src: '172.17.9.103', dst: '172.17.9.1', sport: 9999, dport: 33325 });
  t.is(zoned.state, undefined);

  // ClusterIP through KUBE-SVC-TEST: DNAT to a pod and MASQUERADE to the bridge address.
  const clusterIp = entries.filter((e) => e.orig.dst === '10.98.51.150');
  t.is(clusterIp.length, 6);
  t.deepEqual(clusterIp.map((e) => e.reply.src).sort(), [
    '10.55.66.2',
    '10.55.66.2',
    '10.55.66.3',
    '10.55.66.3',
    '10.55.66.3',
    '10.55.66.3',
  ]);
  t.true(clusterIp.every((e) => e.reply.dst === '10.55.66.1'));

  t.deepEqual(
    parseConntrack(fixture('conntrack/tcp.txt')).map((e) => e.orig.sport),
    [56844, 58868, 58898, 58838, 58884, 58854, 58910, 43338, 36942, 34740],
  );
});

test('conntrack -L: CONNMARK mark, UNREPLIED icmp, and -o extended', (t) => {
  const entries = parseConntrack(fixture('conntrack/icmp-mark.txt'));
  t.deepEqual(
    entries.map((e) => [e.orig.dst, e.flags, e.mark, e.timeout]),
    [
      ['198.51.100.77', ['UNREPLIED'], 16384, 28],
      ['10.55.66.99', ['UNREPLIED'], 16384, 27],
      ['10.55.66.2', [], 16384, 27],
    ],
  );
  t.deepEqual(entries[2]!.reply, { src: '10.55.66.2', dst: '10.55.66.3', type: 0, code: 0, id: 14213 });
  const extended = parseConntrack(fixture('conntrack/extended.txt'));
  t.deepEqual(
    extended.map((e) => [e.proto, e.protonum, e.timeout, e.orig.id, e.flags]),
    [
      ['icmp', 1, 26, 14915, ['UNREPLIED']],
      ['icmp', 1, 25, 14217, ['UNREPLIED']],
      ['icmp', 1, 25, 14213, []],
    ],
  );
  t.deepEqual(parseConntrack(fixture('conntrack/empty.txt')), []);
});

test('conntrack hand-written: an entry id printed by -o id is not the ICMP id', (t) => {
  const [entry] = parseConntrack(
    'icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=7 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=7 mark=0 use=1 id=3735928559\n',
  );
  t.is(entry!.orig.id, 7);
  t.is(entry!.reply.id, 7);
});

// ---- ping --------------------------------------------------------------------------------------

function ping(path: string) {
  const r = run(`ping/${path}`);
  const { output, ...rest } = parsePing(r.stdout, r.stderr, r.exitCode);
  return { rest, output, r };
}

test('ping iputils: success, no reply, local and ICMP errors', (t) => {
  t.deepEqual(ping('iputils-success.json').rest, { transmitted: 2, received: 2, loss: 0, exitCode: 0 });
  t.deepEqual(ping('iputils-no-reply.json').rest, { transmitted: 2, received: 0, loss: 100, exitCode: 1 });
  t.deepEqual(ping('iputils-unreachable-network.json').rest, {
    transmitted: 0,
    received: 0,
    loss: 100,
    error: 'ping: connect: Network is unreachable',
    exitCode: 2,
  });
  t.deepEqual(ping('iputils-host-unreachable-routed.json').rest, {
    transmitted: 1,
    received: 0,
    loss: 100,
    error: 'From 10.55.66.1 icmp_seq=1 Destination Host Unreachable',
    exitCode: 1,
  });
  t.deepEqual(ping('iputils-host-unreachable-local.json').rest, {
    transmitted: 2,
    received: 0,
    loss: 100,
    error: 'From 10.55.66.2 icmp_seq=1 Destination Host Unreachable',
    exitCode: 1,
  });
  t.like(ping('iputils-net-unreachable-icmp.json').rest, {
    error: 'From 10.55.66.1 icmp_seq=1 Destination Net Unreachable',
  });
  t.like(ping('iputils-packet-filtered.json').rest, {
    error: 'From 10.55.66.1 icmp_seq=1 Packet filtered',
    exitCode: 1,
  });
  t.like(ping('iputils-unknown-host.json').rest, {
    error: 'ping: nosuch.invalid: Temporary failure in name resolution',
    exitCode: 2,
  });
  const { output, r } = ping('iputils-success.json');
  t.is(output, r.stdout);
});

test('ping busybox: success, no reply, sendto error', (t) => {
  t.deepEqual(ping('busybox-success.json').rest, { transmitted: 2, received: 2, loss: 0, exitCode: 0 });
  t.deepEqual(ping('busybox-no-reply.json').rest, { transmitted: 2, received: 0, loss: 100, exitCode: 1 });
  // busybox prints no ICMP errors: a REJECT looks like plain loss.
  t.deepEqual(ping('busybox-packet-filtered.json').rest, { transmitted: 1, received: 0, loss: 100, exitCode: 1 });
  t.deepEqual(ping('busybox-host-unreachable-routed.json').rest, {
    transmitted: 1,
    received: 0,
    loss: 100,
    exitCode: 1,
  });
  const unreachable = ping('busybox-unreachable-network.json');
  t.deepEqual(unreachable.rest, {
    transmitted: 0,
    received: 0,
    loss: 100,
    error: 'ping: sendto: Network is unreachable',
    exitCode: 1,
  });
  t.is(unreachable.output, 'PING 198.51.100.8 (198.51.100.8): 56 data bytes\nping: sendto: Network is unreachable\n');
  t.like(ping('busybox-unknown-host.json').rest, { error: "ping: bad address 'nosuch.invalid'" });
});

test('ping hand-written: killed before its summary, counts come from the reply lines', (t) => {
  const stdout =
    'PING 10.55.66.3 (10.55.66.3) 56(84) bytes of data.\n64 bytes from 10.55.66.3: icmp_seq=1 ttl=64 time=0.054 ms\n64 bytes from 10.55.66.3: icmp_seq=2 ttl=64 time=0.062 ms\n';
  t.like(parsePing(stdout, '', null), { transmitted: 2, received: 2, loss: 0, exitCode: -1 });
});

// ---- socat TCP client --------------------------------------------------------------------------

function tcp(path: string) {
  const r = run(`socat/${path}`);
  const { output, ...rest } = parseTcpClient(r.stdout, r.stderr, r.exitCode);
  return { rest, output, r };
}

test('tcp client: the responder answer names the node and the client it saw', (t) => {
  t.deepEqual(tcp('success.json').rest, {
    result: 'connects',
    answeredBy: 'c2',
    clientSeen: '10.55.66.2',
    clientPort: 34636,
  });
  t.deepEqual(tcp('success-sourceport.json').rest, {
    result: 'connects',
    answeredBy: 'c2',
    clientSeen: '10.55.66.2',
    clientPort: 40001,
  });
  t.is(tcp('success.json').output, 'c2 client=10.55.66.2:34636\n');
});

test('tcp client: refused, timeout, unreachable and other errors from socat stderr', (t) => {
  t.deepEqual(tcp('refused.json').rest, {
    result: 'refused',
    error: 'connect(5, AF=2 10.55.66.3:8001, 16): Connection refused',
  });
  t.deepEqual(tcp('timeout.json').rest, {
    result: 'timeout',
    error: 'connecting to AF=2 10.55.66.3:8002: Connection timed out',
  });
  t.deepEqual(tcp('unreachable-network.json').rest, {
    result: 'unreachable',
    error: 'connect(5, AF=2 198.51.100.8:8000, 16): Network is unreachable',
  });
  t.like(tcp('unreachable-no-route-to-host.json').rest, {
    result: 'unreachable',
    error: 'connect(5, AF=2 10.0.2.99:8000, 16): No route to host',
  });
  t.like(tcp('unreachable-on-link.json').rest, {
    result: 'unreachable',
    error: 'connect(5, AF=2 10.55.66.9:8000, 16): No route to host',
  });
  t.like(tcp('unreachable-net-icmp.json').rest, { result: 'unreachable' }); // REJECT icmp-net-unreachable
  t.like(tcp('unreachable-admin-prohibited.json').rest, { result: 'unreachable' }); // REJECT icmp-admin-prohibited
  // A fixed source port still in TIME_WAIT from the previous connection.
  t.deepEqual(tcp('error-sourceport-in-use.json').rest, {
    result: 'error',
    error: 'bind(5, {AF=2 0.0.0.0:40000}, 16): Address already in use',
  });
});

test('tcp client hand-written: killed by the caller is a timeout', (t) => {
  t.like(parseTcpClient('', '', null), { result: 'timeout' });
});

test('socat argv: exactly the commands the fixtures were recorded with', (t) => {
  t.deepEqual(tcpClientArgv('10.55.66.3', 8000, { timeout: 2 }), tcp('success.json').r.argv);
  t.deepEqual(
    tcpClientArgv('10.55.66.3', 8000, { timeout: 2, sourcePort: 40001 }),
    tcp('success-sourceport.json').r.argv,
  );
  t.deepEqual(tcpClientArgv('10.0.2.99', 8000, { timeout: 5 }), tcp('unreachable-no-route-to-host.json').r.argv);
  t.deepEqual(responderArgv('c2', 8000), [
    'socat',
    'TCP-LISTEN:8000,fork,reuseaddr',
    'SYSTEM:echo "c2 client=$SOCAT_PEERADDR:$SOCAT_PEERPORT"',
  ]);
  t.deepEqual(tcpClientArgv('fd00::3', 80, { timeout: 1 }), [
    'socat',
    '-T1',
    '-',
    'TCP:[fd00::3]:80,connect-timeout=1',
  ]);
  t.throws(() => responderArgv('c1;reboot', 8000), { message: /may only contain/ });
  t.throws(() => tcpClientArgv('10.0.0.1', 0, { timeout: 1 }), { message: /1-65535/ });
});

// Real socat in a throwaway namespace on loopback: proves socat reads these argv arrays as meant.
test.serial('socat argv run for real: responder answers, closed port refuses', async (t) => {
  const netns = `hp1-parsers-${process.pid}`;
  const ip = (...args: string[]) => spawnSync('ip', args, { encoding: 'utf8' });
  const created = ip('netns', 'add', netns);
  if (created.status !== 0) return t.fail(`ip netns add failed (needs root): ${created.stderr}`);
  const responder = spawn('ip', ['netns', 'exec', netns, ...responderArgv('n1', 8000)], { stdio: 'ignore' });
  try {
    t.is(ip('-n', netns, 'link', 'set', 'lo', 'up').status, 0);
    const client = (port: number) => {
      for (let attempt = 0; ; attempt++) {
        const r = spawnSync('ip', ['netns', 'exec', netns, ...tcpClientArgv('127.0.0.1', port, { timeout: 2 })], {
          encoding: 'utf8',
          input: '',
        });
        const outcome = parseTcpClient(r.stdout, r.stderr, r.status);
        // The responder may still be starting: retry a refused connection to its port briefly.
        if (port !== 8000 || outcome.result !== 'refused' || attempt >= 20) return outcome;
        spawnSync('sleep', ['0.1']);
      }
    };
    t.like(client(8000), { result: 'connects', answeredBy: 'n1', clientSeen: '127.0.0.1' });
    t.like(client(8001), { result: 'refused' });
  } finally {
    responder.kill();
    await new Promise((resolve) =>
      responder.exitCode !== null || responder.signalCode !== null
        ? resolve(undefined)
        : responder.once('exit', resolve),
    );
    ip('netns', 'del', netns);
  }
});

test('socat 1.8\'s connect timeout ("Operation now in progress", seen on Debian 13 in the kernel matrix) is a timeout', (t) => {
  const stderr = '2026/12/01 23:20:11 socat[812] E TCP:172.17.9.103:2345: Operation now in progress\n';
  t.like(parseTcpClient('', stderr, 1), {
    result: 'timeout',
    error: 'TCP:172.17.9.103:2345: Operation now in progress',
  });
  t.like(
    parseTcpClient('', stderr.replace('Operation now in progress', 'Connection refused'), 1),
    { result: 'refused' },
    'a refusal stays a refusal',
  );
});
