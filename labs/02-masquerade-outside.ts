#!/usr/bin/env -S node --import tsx
// Lab 02 (docs/labs.md#l2): a container reaches an outside host. It needs a default route, FORWARD
// accept rules and MASQUERADE, and each one missing breaks it in its own way.
import { cmd, conntrack, defineLab, output, packets, path, ping, rule, runIfMain, sandboxOnly } from 'nflab';

const toInternet = ping('c1', '198.51.100.8', { count: 2 });

export default defineLab({
  id: '02',
  title: 'A container reaches the outside: default route, FORWARD rules and MASQUERADE',
  summary:
    'c1 pings an "internet" host (198.51.100.8). Without a route the kernel refuses to send; without SNAT the replies cannot come back; under FORWARD DROP nothing leaves; MASQUERADE plus two FORWARD rules make it work.',
  source: {
    title:
      'Docker 網路入門篇(三) – 網路存取分析 (hwchiu), section 容器如何主動存取外部服務; docker_network_basic_3/lab1.sh and docker_network_basic_4/lab1.sh',
    url: 'https://www.hwchiu.com/docs/2020/docker-network-model-snat',
    spec: 'L2',
  },
  topology: {
    nodes: {
      host: {
        role: 'host',
        sysctls: { 'net.ipv4.ip_forward': 1, 'net.bridge.bridge-nf-call-iptables': 1 },
        routes: [{ to: 'default', via: '10.0.2.2' }],
      },
      c1: { role: 'container' },
      // The "internet": it owns 198.51.100.8 and has no route back to 10.55.66.0/24, so
      // un-NATed replies cannot return.
      ext: { role: 'outside', addresses: { lo: ['198.51.100.8/32'] }, sysctls: { 'net.ipv4.ip_forward': 0 } },
    },
    bridges: { hwchiu0: { node: 'host' } },
    links: [
      {
        a: { node: 'c1', name: 'eth0', addresses: ['10.55.66.2/24'] },
        b: { node: 'host', name: 'veth0', bridge: 'hwchiu0' },
      },
      {
        a: { node: 'host', name: 'eth0', addresses: ['10.0.2.15/24'] },
        b: { node: 'ext', name: 'eth0', addresses: ['10.0.2.2/24'] },
      },
    ],
    setup: [cmd('host', 'iptables -P FORWARD DROP')],
  },
  steps: [
    {
      title: 'No route: the kernel refuses to send',
      teaches: 'c1 has only its connected route 10.55.66.0/24, so ping fails before a packet leaves.',
      expect: [
        ping('c1', '198.51.100.8').fails('Network is unreachable'),
        output('c1', 'ip route').excludes('default'),
      ],
    },
    {
      title: 'Give the bridge an address and c1 a default route through it',
      run: [cmd('host', 'ip addr add 10.55.66.1/24 dev hwchiu0'), cmd('c1', 'ip route add default via 10.55.66.1')],
      expect: [
        output('c1', 'ip route show').includes(
          'default via 10.55.66.1 dev eth0',
          '10.55.66.0/24 dev eth0 proto kernel scope link src 10.55.66.2',
        ),
      ],
    },
    {
      title: 'FORWARD ACCEPT but no SNAT: requests leave, replies cannot return',
      questions: [
        {
          ask: "With FORWARD open but no SNAT, which source address will the capture on host's eth0 show for the echo requests?",
          answer: "The container's private address 10.55.66.2, unchanged: nothing rewrites it, so ext cannot answer.",
          observedIn: 1,
        },
      ],
      teaches:
        'The request leaves eth0 with the private source 10.55.66.2; the outside host has no route back. Conntrack stays empty: nothing in this namespace needs it yet (G1).',
      run: [cmd('host', 'iptables -P FORWARD ACCEPT')],
      expect: [
        toInternet.fails(),
        packets('host', 'eth0', { proto: 'icmp', icmp: 'echo-request', src: '10.55.66.2', dst: '198.51.100.8' }).count(
          2,
          'host eth0 carries both requests with the private source',
        ),
        packets('host', 'eth0', { proto: 'icmp', icmp: 'echo-reply' }).none('no reply comes back'),
        ...sandboxOnly(
          "a machine's root namespace tracks its own connections (the SSH session) already",
          conntrack('host').count(0, 'conntrack is empty: it is enabled lazily per namespace'),
        ),
      ],
    },
    {
      title: 'Fix: MASQUERADE in nat POSTROUTING',
      questions: [
        {
          ask: "After MASQUERADE, which source address will the capture on host's eth0 show?",
          answer: "The host's own eth0 address 10.0.2.15: MASQUERADE rewrote the source on the way out.",
          observedIn: 1,
        },
        {
          ask: 'How many packets will the MASQUERADE rule count for a ping of two echo requests?',
          answer: 'One: a nat rule sees only the first packet of a flow; conntrack applies the mapping to the rest.',
          observedIn: 7,
        },
      ],
      teaches:
        "MASQUERADE rewrites the source to eth0's address; conntrack reverses it for the replies, so c1 never sees the host's address. The rule counts flows, not packets.",
      run: [cmd('host', 'iptables -t nat -I POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE')],
      expect: [
        toInternet.succeeds(),
        packets('host', 'eth0', { proto: 'icmp', icmp: 'echo-request', src: '10.0.2.15', dst: '198.51.100.8' }).count(
          2,
          'on eth0 the source is already translated',
        ),
        packets('host', 'eth0', { proto: 'icmp', icmp: 'echo-reply', src: '198.51.100.8', dst: '10.0.2.15' }).count(2),
        packets('host', 'hwchiu0', {
          proto: 'icmp',
          icmp: 'echo-request',
          src: '10.55.66.2',
          dst: '198.51.100.8',
        }).count(2, "on hwchiu0 the container's own address"),
        packets('host', 'hwchiu0', { proto: 'icmp', icmp: 'echo-reply', src: '198.51.100.8', dst: '10.55.66.2' }).count(
          2,
          'replies are translated back before the bridge',
        ),
        packets('host', 'hwchiu0', { dst: '10.0.2.15' }).none("the container never sees the host's address"),
        conntrack('host', {
          proto: 'icmp',
          orig: { src: '10.55.66.2', dst: '198.51.100.8' },
          reply: { src: '198.51.100.8', dst: '10.0.2.15' },
        }).count(1, 'the reply tuple carries the translated destination'),
        rule('host', 'nat POSTROUTING', '-s 10.55.66.2/32 -o eth0 -j MASQUERADE').delta(
          { packets: 1, bytes: 84 },
          'MASQUERADE counts one flow (the first packet), not 2 packets',
        ),
        path('host', { proto: 'icmp', src: '10.55.66.2', dst: '198.51.100.8' }).through(
          ['filter FORWARD: policy ACCEPT', 'nat POSTROUTING: MASQUERADE'],
          {
            exact: true,
            description:
              'the first echo request goes FORWARD → nat POSTROUTING, where MASQUERADE translates it (no nat PREROUTING hop: iptables-nft creates a built-in chain only when a rule is added to it)',
          },
        ),
        path('host', { proto: 'icmp', src: '10.55.66.2', dst: '198.51.100.8' }).through(
          ['filter FORWARD: policy ACCEPT'],
          {
            exact: true,
            packet: 2,
            description: 'the second echo request meets no nat chain: conntrack applies the mapping of the first',
          },
        ),
        path('host', { proto: 'icmp', src: '198.51.100.8' }).notThrough(['nat PREROUTING', 'nat POSTROUTING'], {
          packet: 'each',
          description: 'the replies skip the nat chains too',
        }),
      ],
    },
    {
      title: 'Break: FORWARD policy back to DROP',
      run: [cmd('host', 'iptables -P FORWARD DROP')],
      expect: [
        toInternet.fails(),
        packets('host', 'eth0', { proto: 'icmp' }).none('nothing leaves eth0'),
        packets('host', 'hwchiu0', { proto: 'icmp', icmp: 'echo-request', src: '10.55.66.2' }).count(
          2,
          'the requests still reach hwchiu0',
        ),
      ],
    },
    {
      title: 'Fix: accept hwchiu0→eth0 and eth0→hwchiu0 in FORWARD',
      teaches: 'Docker uses interface rules, so the number of rules does not grow with the number of containers.',
      run: [
        cmd('host', 'iptables -t filter -I FORWARD -i hwchiu0 -o eth0 -j ACCEPT'),
        cmd('host', 'iptables -t filter -I FORWARD -i eth0 -o hwchiu0 -j ACCEPT'),
      ],
      expect: [
        toInternet.succeeds(),
        rule('host', 'filter FORWARD', '-i hwchiu0 -o eth0 -j ACCEPT').delta({ packets: 2, bytes: 168 }),
        rule('host', 'filter FORWARD', '-i eth0 -o hwchiu0 -j ACCEPT').delta({ packets: 2, bytes: 168 }),
      ],
    },
    {
      title: 'Break: ip_forward=0 stops routing between hwchiu0 and eth0',
      run: [cmd('host', 'sysctl -w net.ipv4.ip_forward=0')],
      expect: [toInternet.fails(), packets('host', 'eth0', { proto: 'icmp' }).none()],
    },
    {
      title: 'Fix: ip_forward=1',
      run: [cmd('host', 'sysctl -w net.ipv4.ip_forward=1')],
      expect: [toInternet.succeeds()],
    },
  ],
});

runIfMain(import.meta.url);
