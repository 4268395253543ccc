#!/usr/bin/env -S node --import tsx
// Lab 11 (docs/labs.md#l12): which iptables and ebtables chains a packet passes on a Docker host,
// for four kinds of traffic. Every chain gets a counter-only rule; packet traces show the order.
import { cmd, defineLab, ebrule, output, path, ping, restore, rule, runIfMain, sandboxOnly, tcp } from 'nflab';

/** A counter-only rule (no target) at the top of every table/chain pair: it counts every packet entering the chain,
 * except multicast (the host sends IGMP reports for hwchiu0 on its own, at moments of its choosing). */
const CHAINS: Record<string, string[]> = {
  raw: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
};
const COUNTERS = Object.entries(CHAINS)
  .map(([table, chains]) =>
    [`*${table}`, ...chains.map((chain) => `-I ${chain} ! -d 224.0.0.0/4 -m comment --comment ctr`), 'COMMIT'].join(
      '\n',
    ),
  )
  .join('\n');
const CTR = '! -d 224.0.0.0/4 -m comment --comment ctr';
/** ebtables rules counting IPv4 frames between addresses of the bridge's subnet (the originals' --log rules). */
const EB_MATCH = '-p IPv4 --ip-src 10.55.66.0/24 --ip-dst 10.55.66.0/24';
/** The counter of one chain across the step. It counts every packet, so it holds only where the lab's
 * traffic is all there is: not in a machine's own root namespace (--root-namespace), where the SSH
 * session nflab runs over passes the same chains; the traces, which mark only the lab's packets, still do. */
const ctr = (tableChain: string, packets: number | { min: number }) =>
  sandboxOnly(
    "the machine's own traffic (the SSH session nflab runs over) enters these chains too",
    rule('host', tableChain, CTR).delta(
      { packets },
      `${tableChain} counts ${typeof packets === 'number' ? packets : `at least ${packets.min}`}`,
    ),
  )[0]!;
/** The chains a ping's echo request or reply never enters on the host. */
const none = (...tableChains: string[]) => tableChains.map((tc) => ctr(tc, 0));

const ICMP = 'icmp' as const;

export default defineLab({
  id: '11',
  title: 'Chain traversal: which iptables and ebtables chains a packet passes on a Docker host',
  summary:
    'A counter-only rule in every table and chain, conntrack forced on, and packet traces: container to container (bridged), host to container (local output), outside to a published port (DNAT) and container to outside (MASQUERADE). The nat chains see only the first packet of a connection; replies skip them.',
  source: {
    title:
      '[netfilter] Dig Into Docker Bridge Network By iptables/ebtables (hwchiu); iptablesExample docker/*/{iptables,ebtables}.sh',
    url: 'https://www.hwchiu.com/docs/2018/netfilter-eiptables-iii',
    spec: 'L12',
  },
  requires: ['br_netfilter'],
  topology: {
    nodes: {
      host: {
        role: 'host',
        sysctls: { 'net.ipv4.ip_forward': 1, 'net.bridge.bridge-nf-call-iptables': 1 },
        routes: [{ to: 'default', via: '10.0.2.2' }],
      },
      c1: { role: 'container', routes: [{ to: 'default', via: '10.55.66.1' }], listen: [80] },
      c2: { role: 'container', routes: [{ to: 'default', via: '10.55.66.1' }] },
      // The WAN side: a client (10.0.2.2) and an "internet" host (198.51.100.8) in one node.
      ext: { role: 'outside', addresses: { lo: ['198.51.100.8/32'] } },
    },
    bridges: { hwchiu0: { node: 'host', addresses: ['10.55.66.1/24'] } },
    links: [
      {
        a: { node: 'c1', name: 'eth0', addresses: ['10.55.66.2/24'] },
        b: { node: 'host', name: 'veth0', bridge: 'hwchiu0' },
      },
      {
        a: { node: 'c2', name: 'eth0', addresses: ['10.55.66.3/24'] },
        b: { node: 'host', name: 'veth1', bridge: 'hwchiu0' },
      },
      {
        a: { node: 'host', name: 'eth0', addresses: ['10.0.2.15/24'] },
        b: { node: 'ext', name: 'eth0', addresses: ['10.0.2.2/24'] },
      },
    ],
    // What Docker sets up for `docker run -p 5566:80` on c1: MASQUERADE for the bridge's subnet and
    // DNAT of the published port (the originals' nginx), with FORWARD open.
    setup: [
      cmd('host', 'iptables -P FORWARD ACCEPT'),
      cmd('host', 'iptables -t nat -A POSTROUTING -s 10.55.66.0/24 ! -o hwchiu0 -j MASQUERADE'),
      cmd(
        'host',
        'iptables -t nat -A PREROUTING ! -i hwchiu0 -p tcp -m tcp --dport 5566 -j DNAT --to-destination 10.55.66.2:80',
      ),
    ],
  },
  steps: [
    {
      title: 'A counter in every chain, ebtables rules on the bridge, conntrack forced on',
      teaches:
        'LOG is silent inside a network namespace (G2), so every table/chain pair gets a rule with no target, inserted first: its counter counts every packet that enters the chain. A conntrack match makes sure the namespace tracks connections (G1), as a Docker host always does.',
      run: [
        restore('host', COUNTERS),
        cmd('host', 'iptables -A INPUT -m conntrack --ctstate INVALID -j DROP'),
        ...['nat PREROUTING', 'nat OUTPUT', 'nat POSTROUTING', 'filter INPUT', 'filter FORWARD', 'filter OUTPUT'].map(
          (tc) => {
            const [table, chain] = tc.split(' ');
            return cmd('host', `ebtables -t ${table} -I ${chain} ${EB_MATCH}`);
          },
        ),
      ],
      expect: [
        output('host', 'iptables -t nat -S').includes(`-A PREROUTING ${CTR}`, `-A POSTROUTING ${CTR}`),
        output('host', 'iptables -S INPUT').includes('-A INPUT -m conntrack --ctstate INVALID -j DROP'),
        output('host', 'ebtables -t filter -L FORWARD').includes(`${EB_MATCH} -j CONTINUE`),
      ],
    },
    {
      title: 'Container to container: bridged, yet through PREROUTING, FORWARD and POSTROUTING',
      questions: [
        {
          ask: 'c1 pings c2 across the bridge. Which iptables hooks will the echo request pass: INPUT, FORWARD, OUTPUT?',
          answer:
            'FORWARD only, between PREROUTING and POSTROUTING: br_netfilter treats the bridged frame as routed from hwchiu0 to hwchiu0, never INPUT or OUTPUT.',
          observedIn: 20,
        },
        {
          ask: 'How many packets will nat PREROUTING count for one ping: 1 or 2?',
          answer:
            'One: only the echo request starts a new connection; the reply belongs to it and skips the nat table.',
          observedIn: 3,
        },
      ],
      teaches:
        'br_netfilter hands the bridged frame to iptables as if it were routed from hwchiu0 to hwchiu0: PREROUTING, FORWARD, POSTROUTING, never INPUT or OUTPUT. The nat chains count 1, not 2: only the echo request is a new connection; the reply is matched by conntrack and skips them.',
      expect: [
        ping('c1', '10.55.66.3').succeeds(),
        ctr('raw PREROUTING', 2),
        ctr('mangle PREROUTING', 2),
        ctr('nat PREROUTING', 1),
        ctr('mangle FORWARD', 2),
        ctr('filter FORWARD', 2),
        ctr('mangle POSTROUTING', 2),
        ctr('nat POSTROUTING', 1),
        ...none(
          'mangle INPUT',
          'filter INPUT',
          'nat INPUT',
          'raw OUTPUT',
          'mangle OUTPUT',
          'nat OUTPUT',
          'filter OUTPUT',
        ),
        // ebtables counts both frames in its PREROUTING, FORWARD and POSTROUTING, none in INPUT or OUTPUT.
        ...(
          [
            ['nat PREROUTING', 2],
            ['filter FORWARD', 2],
            ['nat POSTROUTING', 2],
            ['filter INPUT', 0],
            ['filter OUTPUT', 0],
          ] as const
        ).map(([tableChain, n]) =>
          ebrule('host', tableChain, EB_MATCH).delta({ packets: n }, `ebtables ${tableChain} counts ${n}`),
        ),
        path('host', { proto: ICMP, src: '10.55.66.2', dst: '10.55.66.3' }).through(
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
          {
            notThrough: ['bridge filter INPUT', 'bridge filter OUTPUT', 'filter INPUT', 'filter OUTPUT'],
            description:
              'the echo request goes through each bridge (ebtables) hook and, within it, the iptables chains br_netfilter calls: PREROUTING, FORWARD, POSTROUTING',
          },
        ),
        path('host', { proto: ICMP, src: '10.55.66.3', dst: '10.55.66.2' }).through(
          [
            'bridge nat PREROUTING',
            'raw PREROUTING',
            'bridge filter FORWARD',
            'filter FORWARD',
            'bridge nat POSTROUTING',
            'mangle POSTROUTING',
          ],
          {
            notThrough: ['nat PREROUTING', 'nat POSTROUTING'],
            packet: 'each',
            description: 'the echo reply takes the same hooks but skips both nat chains',
          },
        ),
      ],
    },
    {
      title: 'Host to container: OUTPUT, then POSTROUTING; the reply comes in through INPUT',
      teaches:
        "The host's own echo request starts in the OUTPUT chains (raw, mangle, nat, filter) and leaves through POSTROUTING; the reply enters through PREROUTING and INPUT. Nothing is forwarded.",
      expect: [
        ping('host', '10.55.66.2').succeeds(),
        ctr('raw OUTPUT', 1),
        ctr('mangle OUTPUT', 1),
        ctr('nat OUTPUT', 1),
        ctr('filter OUTPUT', 1),
        ctr('mangle POSTROUTING', 1),
        ctr('nat POSTROUTING', 1),
        ctr('raw PREROUTING', 1),
        ctr('mangle PREROUTING', 1),
        ctr('mangle INPUT', 1),
        ctr('filter INPUT', 1),
        ...none('nat PREROUTING', 'nat INPUT', 'mangle FORWARD', 'filter FORWARD'),
        path('host', { proto: ICMP, src: '10.55.66.1', dst: '10.55.66.2' }).through(
          [
            'raw OUTPUT',
            'mangle OUTPUT',
            'nat OUTPUT',
            'filter OUTPUT',
            'mangle POSTROUTING',
            'nat POSTROUTING',
            'bridge filter OUTPUT',
            'bridge nat OUTPUT',
            'bridge nat POSTROUTING',
          ],
          {
            notThrough: ['filter FORWARD', 'bridge filter FORWARD'],
            description:
              "the echo request goes through the iptables OUTPUT and POSTROUTING chains first, then the bridge's OUTPUT and POSTROUTING",
          },
        ),
        path('host', { proto: ICMP, src: '10.55.66.2', dst: '10.55.66.1' }).through(
          [
            'bridge nat PREROUTING',
            'raw PREROUTING',
            'mangle PREROUTING',
            'bridge filter INPUT',
            'mangle INPUT',
            'filter INPUT',
          ],
          {
            notThrough: ['nat PREROUTING', 'nat INPUT', 'filter FORWARD'],
            description:
              "the echo reply enters through PREROUTING, the bridge's INPUT and INPUT, skipping both nat chains",
          },
        ),
      ],
    },
    {
      title: 'Outside to a published port: DNAT in nat PREROUTING turns input into forwarding',
      teaches:
        "The SYN to 10.0.2.15:5566 is addressed to the host, but nat PREROUTING rewrites it to c1:80 before the routing decision, so it is forwarded (FORWARD, not INPUT). Later packets and c1's replies are translated by conntrack without the nat chains.",
      expect: [
        tcp('ext', '10.0.2.15', 5566).connects({ answeredBy: 'c1', clientSeen: '10.0.2.2' }),
        ctr('nat PREROUTING', 1),
        ctr('nat POSTROUTING', 1),
        ctr('filter FORWARD', { min: 4 }),
        ...none('filter INPUT', 'nat INPUT', 'filter OUTPUT'),
        path('host', { proto: 'tcp', src: '10.0.2.2', dst: '10.0.2.15', dport: 5566 }).through(
          ['nat PREROUTING: DNAT', 'filter FORWARD', 'nat POSTROUTING'],
          {
            notThrough: ['filter INPUT'],
            rule: '--dport 5566 -j DNAT --to-destination 10.55.66.2:80',
            description: 'the SYN is DNATed in nat PREROUTING, then forwarded, not delivered to INPUT',
          },
        ),
        path('host', { proto: 'tcp', src: '10.0.2.2', dst: '10.0.2.15', dport: 5566 }).through(['filter FORWARD'], {
          notThrough: ['nat PREROUTING', 'nat POSTROUTING'],
          packet: 2,
          description: 'the next packet from the client skips the nat chains',
        }),
        path('host', { proto: 'tcp', src: '10.55.66.2', dst: '10.0.2.2', sport: 80 }).through(['filter FORWARD'], {
          notThrough: ['nat PREROUTING', 'nat POSTROUTING'],
          packet: 'each',
          description: "c1's replies are forwarded without the nat chains",
        }),
      ],
    },
    {
      title: 'Container to outside: to the bridge, forwarded to eth0, MASQUERADE in nat POSTROUTING',
      teaches:
        "c1's frame is addressed to the bridge's own MAC. It enters the bridge's PREROUTING, where br_netfilter runs the iptables PREROUTING chains; the bridge then hands it up to the host (ebtables INPUT, not FORWARD), which routes it from hwchiu0 to eth0: iptables FORWARD, and MASQUERADE in nat POSTROUTING. (The 2020 talk drew ebtables INPUT before iptables PREROUTING; the trace shows the opposite order.)",
      expect: [
        ping('c1', '198.51.100.8').succeeds(),
        path('host', { proto: ICMP, src: '10.55.66.2', dst: '198.51.100.8' }).through(
          [
            'bridge nat PREROUTING',
            'nat PREROUTING',
            'bridge filter INPUT',
            'filter FORWARD',
            'nat POSTROUTING: MASQUERADE',
          ],
          {
            notThrough: ['bridge filter FORWARD', 'filter INPUT'],
            description:
              "the echo request: bridge PREROUTING (with iptables PREROUTING inside it), the bridge's INPUT (not its FORWARD), then iptables FORWARD and MASQUERADE in nat POSTROUTING",
          },
        ),
        path('host', { proto: ICMP, src: '198.51.100.8' }).through(['filter FORWARD'], {
          notThrough: ['nat PREROUTING', 'nat POSTROUTING'],
          packet: 'each',
          description: 'the replies are forwarded back without the nat chains',
        }),
        ctr('nat PREROUTING', 1),
        ctr('nat POSTROUTING', 1),
        ctr('filter FORWARD', 2),
        ...none('filter INPUT', 'filter OUTPUT'),
      ],
    },
  ],
});

runIfMain(import.meta.url);
