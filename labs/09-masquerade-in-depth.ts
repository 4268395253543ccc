#!/usr/bin/env -S node --import tsx
// Lab 09 (docs/labs.md#l8): what MASQUERADE chooses. The source port is kept when it can be, a
// `--to-ports` range is used otherwise, a clash moves a flow to another port, and the source
// address is the primary address of the outgoing interface in the next hop's subnet.
import { cmd, conntrack, defineLab, output, packets, path, rule, runIfMain, tcp, udp } from 'nflab';

const RANGE = { min: 55666, max: 55680 };
const TCP_RULE = '-s 172.18.0.0/16 -p tcp ! -o docker0 -j MASQUERADE --to-ports 55666-55680';
const ANY_RULE = '-s 172.18.0.0/16 ! -o docker0 -j MASQUERADE';
/** TCP_RULE as iptables prints it back: the protocol moves after the interface. */
const TCP_SAVED = '-s 172.18.0.0/16 ! -o docker0 -p tcp -j MASQUERADE --to-ports 55666-55680';
const HTTP = '198.51.100.80';
const FAR = '198.51.100.11';
/** More web server addresses (ext answers all of 198.51.100.80/28). A 15-port range fills fast: flows of
 * different steps go to different addresses, so that none competes for another's tuple (see the clash step). */
const web = (n: number) => `198.51.100.${80 + n}`;

/** The TCP packets from a source to a destination's port 80, traced on the host. */
const synFrom = (src: string, dst: string) => path('host', { proto: 'tcp', src, dst, dport: 80 });

export default defineLab({
  id: '09',
  title: 'MASQUERADE in depth: which source port and which source address',
  summary:
    "MASQUERADE keeps a flow's source port when it can; with --to-ports it picks a port inside the range (randomly on this kernel), a clash moves the second flow to another port, and --random randomises on purpose. The source address is the primary address of the outgoing interface in the next hop's subnet: a secondary address is never chosen.",
  source: {
    title:
      'Linux NAT Masquerade 研究(上)/(下) (hwchiu); network-study iptables/masquerade (Makefile, ipt_MASQUERADE.c)',
    url: 'https://www.hwchiu.com/docs/2020/iptables-masquerade-handson',
    spec: 'L8',
  },
  topology: {
    nodes: {
      // The Docker host of the original (docker0 172.18.0.0/16), uplink eth0 10.0.2.15.
      host: {
        role: 'host',
        sysctls: { 'net.ipv4.ip_forward': 1, 'net.bridge.bridge-nf-call-iptables': 1 },
        routes: [{ to: 'default', via: '10.0.2.2' }],
      },
      c1: { role: 'container', routes: [{ to: 'default', via: '172.18.0.1' }] },
      // The "internet": the DNS server 198.51.100.8 (was 8.8.8.8), the web server 198.51.100.80 (was
      // google.com) and 198.51.100.11 (was 1.1.1.1), all answered by one TCP responder on :80.
      ext: { role: 'outside', addresses: { lo: ['198.51.100.8/32', `${HTTP}/28`, `${FAR}/32`] }, listen: [80] },
    },
    bridges: { docker0: { node: 'host', addresses: ['172.18.0.1/16'] } },
    links: [
      {
        a: { node: 'c1', name: 'eth0', addresses: ['172.18.0.2/16'] },
        b: { node: 'host', name: 'veth0', bridge: 'docker0' },
      },
      {
        a: { node: 'host', name: 'eth0', addresses: ['10.0.2.15/24'] },
        b: { node: 'ext', name: 'eth0', addresses: ['10.0.2.2/24'] },
      },
    ],
    // What Docker installs for docker0.
    setup: [cmd('host', `iptables -t nat -A POSTROUTING ${ANY_RULE}`)],
  },
  steps: [
    {
      title: "Replace Docker's MASQUERADE with two rules: TCP into 55666-55680, everything else as before",
      teaches:
        '--to-ports needs a protocol with ports: without -p tcp iptables refuses the rule. The TCP rule comes first, so UDP and ICMP fall through to the plain MASQUERADE.',
      run: [
        cmd('host', `iptables -t nat -D POSTROUTING ${ANY_RULE}`),
        cmd(
          'host',
          'iptables -t nat -A POSTROUTING -s 172.18.0.0/16 ! -o docker0 -j MASQUERADE --to-ports 55666-55680',
          { expectFailure: true },
        ),
        cmd('host', `iptables -t nat -A POSTROUTING ${TCP_RULE}`),
        cmd('host', `iptables -t nat -A POSTROUTING ${ANY_RULE}`),
      ],
      expect: [
        output('host', 'iptables -t nat -S POSTROUTING').includes(
          `-A POSTROUTING ${TCP_SAVED}`,
          `-A POSTROUTING ${ANY_RULE}`,
        ),
        output(
          'host',
          'iptables -t nat -A POSTROUTING -s 172.18.0.0/16 ! -o docker0 -j MASQUERADE --to-ports 55666-55680',
        ).includes('Need TCP, UDP, SCTP or DCCP with port specification'),
      ],
    },
    {
      title: 'UDP keeps its source port: only the address changes',
      teaches:
        'c1 sends a datagram from port 33894 to the DNS server. It matches the second rule (no --to-ports), and the port is free on 10.0.2.15, so MASQUERADE keeps it: the reply tuple differs from the original only in the address.',
      send: [udp('c1', '198.51.100.8', 53, { sourcePort: 33894 })],
      expect: [
        conntrack('host', {
          proto: 'udp',
          orig: { src: '172.18.0.2', dst: '198.51.100.8', sport: 33894, dport: 53 },
          reply: { src: '198.51.100.8', dst: '10.0.2.15', sport: 53, dport: 33894 },
        }).count(
          1,
          'conntrack: src=172.18.0.2 dst=198.51.100.8 sport=33894 dport=53, reply src=198.51.100.8 dst=10.0.2.15 sport=53 dport=33894',
        ),
        packets('host', 'eth0', { proto: 'udp', src: '10.0.2.15', sport: 33894, dst: '198.51.100.8', dport: 53 }).count(
          1,
          'eth0 carries the datagram from 10.0.2.15:33894',
        ),
        rule('host', 'nat POSTROUTING', ANY_RULE).delta({ packets: 1 }, 'the plain MASQUERADE rule translated it'),
        rule('host', 'nat POSTROUTING', TCP_RULE).delta({ packets: 0 }, 'the TCP rule did not'),
        path('host', { proto: 'udp', src: '172.18.0.2', dport: 53 }).through(['nat POSTROUTING: MASQUERADE'], {
          exact: true,
          rule: ANY_RULE,
          description:
            'the datagram meets one chain on the host: nat POSTROUTING, where the plain MASQUERADE rule takes it (the filter table has no chain yet)',
        }),
      ],
    },
    {
      title: 'TCP from a free port inside the range keeps it',
      teaches:
        'c1 connects to the web server from port 55672: inside 55666-55680 and unused on 10.0.2.15, so MASQUERADE changes only the address.',
      expect: [
        tcp('c1', web(1), 80, { sourcePort: 55672 }).connects({ answeredBy: 'ext', clientSeen: '10.0.2.15' }),
        conntrack('host', {
          proto: 'tcp',
          orig: { src: '172.18.0.2', sport: 55672 },
          reply: { src: web(1), dst: '10.0.2.15', dport: 55672 },
        }).count(1, "c1's flow kept port 55672"),
        synFrom('172.18.0.2', web(1)).through(['nat POSTROUTING: MASQUERADE'], {
          exact: true,
          rule: TCP_RULE,
          description: 'the SYN meets nat POSTROUTING only, where the TCP rule (with --to-ports) masquerades it',
        }),
      ],
    },
    {
      title: 'A clash: the tuple is taken, so the second flow moves to another port of the range',
      teaches:
        "The host itself first connects from 10.0.2.15:55670 to 198.51.100.80:80 (no NAT). When c1 then connects from port 55670, keeping it would give c1's flow the same tuple on the wire, so MASQUERADE picks another port inside the range (the original got 55671).",
      send: [tcp('host', HTTP, 80, { sourcePort: 55670 }).traffic],
      expect: [
        tcp('c1', HTTP, 80, { sourcePort: 55670 }).connects({ answeredBy: 'ext', clientSeen: '10.0.2.15' }),
        conntrack('host', {
          proto: 'tcp',
          orig: { src: '10.0.2.15', sport: 55670, dst: HTTP, dport: 80 },
          reply: { dst: '10.0.2.15', dport: 55670 },
        }).count(1, "the host's own flow holds 10.0.2.15:55670 → 198.51.100.80:80"),
        conntrack('host', {
          proto: 'tcp',
          orig: { src: '172.18.0.2', sport: 55670 },
          reply: { dst: '10.0.2.15', dport: 55670 },
        }).count(0, "c1's flow from 55670 could not keep its port"),
        conntrack('host', {
          proto: 'tcp',
          orig: { src: '172.18.0.2', sport: 55670 },
          reply: { dst: '10.0.2.15', dport: RANGE },
        }).count(1, "c1's flow got another port inside 55666-55680"),
      ],
    },
    {
      title: 'TCP from a port outside the range gets a port inside it',
      teaches:
        'Port 37622 lies outside 55666-55680, so it cannot be kept: this kernel picks a random port inside the range (4.15 took the first free one). The original tuple stays as c1 sent it; only the reply tuple names the new port. Assert the range, not a value.',
      expect: [
        tcp('c1', web(2), 80, { sourcePort: 37622 }).connects({ answeredBy: 'ext', clientSeen: '10.0.2.15' }),
        conntrack('host', {
          proto: 'tcp',
          orig: { src: '172.18.0.2', dst: web(2), sport: 37622, dport: 80 },
          reply: { src: web(2), dst: '10.0.2.15', sport: 80, dport: RANGE },
        }).count(
          1,
          'the flow from 37622: original tuple unchanged, reply tuple dst=10.0.2.15 with a port inside 55666-55680',
        ),
        rule('host', 'nat POSTROUTING', TCP_RULE).delta({ packets: 1 }, 'the TCP rule counts the new flow'),
      ],
    },
    {
      title: 'Three more connections: each gets a port inside the range',
      expect: [
        ...[3, 4, 5].flatMap((n) => [
          tcp('c1', web(n), 80).connects({ answeredBy: 'ext', clientSeen: '10.0.2.15' }),
          conntrack('host', {
            proto: 'tcp',
            orig: { src: '172.18.0.2', dst: web(n) },
            reply: { dst: '10.0.2.15', dport: RANGE },
          }).count(1),
        ]),
        rule('host', 'nat POSTROUTING', TCP_RULE).delta({ packets: 3 }, 'the TCP rule counts three new flows'),
      ],
    },
    {
      title: 'Two addresses on eth0, the next hop absent: MASQUERADE picks 203.0.113.56 anyway',
      teaches:
        'The route to 198.51.100.11 goes via 203.0.113.4. MASQUERADE takes the primary address of eth0 whose subnet holds the next hop: 203.0.113.56, not 10.0.2.15. Nobody answers ARP for 203.0.113.4, so the SYN never leaves, but conntrack already holds the translation.',
      run: [
        cmd('host', 'ip addr add 203.0.113.56/24 dev eth0'),
        cmd('host', `ip route add ${FAR}/32 via 203.0.113.4 dev eth0`),
      ],
      expect: [
        tcp('c1', FAR, 80).timesOut(),
        conntrack('host', {
          proto: 'tcp',
          orig: { src: '172.18.0.2', dst: FAR, dport: 80 },
          reply: { src: FAR, dst: '203.0.113.56', sport: 80, dport: RANGE },
        }).count(1, 'conntrack: [UNREPLIED] reply tuple src=198.51.100.11 dst=203.0.113.56, port inside the range'),
        packets('host', 'eth0', { proto: 'arp' }).seen('the host asks for 203.0.113.4 on eth0'),
        packets('host', 'eth0', { proto: 'tcp', dst: FAR }).none('the SYN never leaves: there is no next hop'),
        synFrom('172.18.0.2', FAR).through(['nat POSTROUTING: MASQUERADE'], {
          description: 'the SYN was masqueraded in nat POSTROUTING before the neighbour lookup failed',
        }),
      ],
    },
    {
      title: 'The next hop appears: the same source 203.0.113.56, and it works',
      teaches:
        'The host still remembers that 203.0.113.4 did not answer; flushing its neighbour entries makes the next packet ask again.',
      run: [cmd('ext', 'ip addr add 203.0.113.4/24 dev eth0'), cmd('host', 'ip neigh flush dev eth0')],
      expect: [tcp('c1', FAR, 80).connects({ answeredBy: 'ext', clientSeen: '203.0.113.56' })],
    },
    {
      title: 'A secondary address is never chosen',
      teaches:
        '10.0.2.99/24 lies in the subnet of 10.0.2.15/24, so the kernel marks it secondary. MASQUERADE (inet_select_addr) only looks at primary addresses: the source stays 10.0.2.15.',
      run: [cmd('host', 'ip addr add 10.0.2.99/24 dev eth0')],
      expect: [
        output('host', 'ip -4 addr show dev eth0').includes(
          'inet 10.0.2.15/24 scope global eth0',
          'inet 10.0.2.99/24 scope global secondary eth0',
        ),
        tcp('c1', web(6), 80).connects({ answeredBy: 'ext', clientSeen: '10.0.2.15' }),
      ],
    },
    {
      title: '--random: ports inside the range, chosen at random on purpose',
      teaches:
        '--random sets NF_NAT_RANGE_PROTO_RANDOM: the port is never kept, the offset into the range comes from a keyed hash. Every new flow still lands inside 55666-55680.',
      run: [cmd('host', `iptables -t nat -R POSTROUTING 1 ${TCP_RULE} --random`)],
      expect: [
        output('host', 'iptables -t nat -S POSTROUTING').includes(`-A POSTROUTING ${TCP_SAVED} --random`),
        ...[7, 8, 9, 10].flatMap((n) => [
          tcp('c1', web(n), 80).connects({ answeredBy: 'ext', clientSeen: '10.0.2.15' }),
          conntrack('host', {
            proto: 'tcp',
            orig: { src: '172.18.0.2', dst: web(n) },
            reply: { dst: '10.0.2.15', dport: RANGE },
          }).count(1),
        ]),
        rule('host', 'nat POSTROUTING', `${TCP_RULE} --random`).delta({ packets: 4 }),
      ],
    },
  ],
});

runIfMain(import.meta.url);
