#!/usr/bin/env -S node --import tsx
// Lab 01 (docs/labs.md#l1): two containers on a hand-made Linux bridge, and why Docker's
// FORWARD DROP policy silently breaks it while br_netfilter hands bridged frames to iptables.
import { cmd, defineLab, packets, path, ping, policy, rule, output, runIfMain } from 'nflab';

const c1PingsC2 = ping('c1', '10.55.66.3');

export default defineLab({
  id: '01',
  title: 'Two containers on a hand-made bridge: br_netfilter and FORWARD DROP',
  summary:
    'Build the Docker bridge by hand (a bridge, two veth pairs, two containers), see the FORWARD DROP policy Docker leaves behind drop bridged IPv4, then fix it three ways.',
  source: {
    title: 'Docker 網路入門篇(三) – 網路存取分析 (hwchiu); docker_network_basic_3/lab1.sh at f71d224',
    url: 'https://www.hwchiu.com/docs/2020/docker-network-model-lab',
    spec: 'L1',
  },
  topology: {
    nodes: {
      // The Docker host of the articles. bridge-nf-call-iptables=1 makes bridged IPv4 traverse iptables.
      host: { role: 'host', sysctls: { 'net.bridge.bridge-nf-call-iptables': 1, 'net.ipv4.ip_forward': 1 } },
      c1: { role: 'container' },
      c2: { role: 'container' },
    },
    bridges: { hwchiu0: { node: 'host' } },
    links: [
      {
        a: { node: 'c1', name: 'eth0', addresses: ['10.55.66.2/24'] },
        b: { node: 'host', name: 'veth0', bridge: 'hwchiu0' },
      },
      {
        a: { node: 'c2', name: 'eth0', addresses: ['10.55.66.3/24'] },
        b: { node: 'host', name: 'veth1', bridge: 'hwchiu0' },
      },
    ],
    // What dockerd leaves behind when it enables ip_forward itself (moby/libnetwork #1526).
    setup: [cmd('host', 'iptables -P FORWARD DROP')],
  },
  steps: [
    {
      title: 'c1 pings c2: the FORWARD policy drops the bridged echo request',
      questions: [
        {
          ask: "c1 and c2 are on the same bridge. Will c1's ping reach c2, and if not, which chain stops it?",
          answer:
            'No. The bridged echo request is handed to iptables (bridge-nf-call-iptables=1) and the filter FORWARD policy DROP discards it.',
          observedIn: 5,
        },
        {
          ask: "Will c1 still learn c2's MAC address (ip neigh)?",
          answer: 'Yes: ARP is not IPv4, so iptables never sees it and the neighbour entry is made.',
          observedIn: 4,
        },
      ],
      teaches:
        "With bridge-nf-call-iptables=1 a frame bridged between two ports of hwchiu0 traverses iptables FORWARD, where Docker's DROP policy discards it. ARP is not IPv4, so c1 still learns c2's MAC address.",
      expect: [
        c1PingsC2.fails(),
        policy('host', 'filter FORWARD').delta(
          { packets: 1, bytes: 84 },
          'the FORWARD policy counts the one echo request it dropped (84 bytes)',
        ),
        packets('host', 'veth0', { proto: 'icmp', icmp: 'echo-request', src: '10.55.66.2', dst: '10.55.66.3' }).seen(
          "veth0 (c1's port) carries the echo request",
        ),
        packets('host', 'veth1', { proto: 'icmp' }).none("veth1 (c2's port) never sees it"),
        output('c1', 'ip neigh show 10.55.66.3').includes('10.55.66.3 dev eth0 lladdr'),
        path('host', { proto: 'icmp', src: '10.55.66.2', dst: '10.55.66.3' }).through(['filter FORWARD: policy DROP'], {
          exact: true,
        }),
      ],
    },
    {
      title: 'Fix A: stop handing bridged frames to iptables',
      teaches:
        'With bridge-nf-call-iptables=0 the bridge forwards by its MAC table alone and iptables never sees the frame.',
      run: [cmd('host', 'sysctl -w net.bridge.bridge-nf-call-iptables=0')],
      expect: [
        c1PingsC2.succeeds(),
        policy('host', 'filter FORWARD').delta({ packets: 0 }, 'the FORWARD policy counts nothing'),
        packets('host', 'veth1', { proto: 'icmp', icmp: 'echo-request', src: '10.55.66.2' }).seen(
          'veth1 now carries the echo request',
        ),
      ],
    },
    {
      title: 'Set bridge-nf-call-iptables back to 1: broken again',
      run: [cmd('host', 'sysctl -w net.bridge.bridge-nf-call-iptables=1')],
      expect: [c1PingsC2.fails(), policy('host', 'filter FORWARD').delta({ packets: 1 })],
    },
    {
      title: 'Fix B: the "mysterious command" iptables -P FORWARD ACCEPT',
      teaches:
        'Accepting everything in FORWARD fixes the bridge, and opens forwarding for every other interface of the host too.',
      run: [cmd('host', 'iptables -P FORWARD ACCEPT')],
      expect: [
        c1PingsC2.succeeds(),
        policy('host', 'filter FORWARD').delta(
          { packets: 2, bytes: 168 },
          'the ACCEPT policy now counts the request and the reply',
        ),
      ],
    },
    {
      title: "Fix C: a whitelist rule like Docker's own, with the policy back to DROP",
      questions: [
        {
          ask: 'How many packets will the whitelist rule count for one ping of one echo request?',
          answer:
            'Two: the echo request and the echo reply both cross FORWARD on the bridge and both match the rule for hwchiu0 to hwchiu0.',
          observedIn: 1,
        },
      ],
      teaches:
        'Docker accepts hwchiu0→hwchiu0 traffic with one interface rule (-i docker0 -o docker0 -j ACCEPT); the DROP policy stays for everything else.',
      run: [
        cmd('host', 'iptables -P FORWARD DROP'),
        cmd('host', 'iptables -A FORWARD -i hwchiu0 -o hwchiu0 -j ACCEPT'),
      ],
      expect: [
        c1PingsC2.succeeds(),
        rule('host', 'filter FORWARD', '-i hwchiu0 -o hwchiu0 -j ACCEPT').delta(
          { packets: 2, bytes: 168 },
          'the whitelist rule counts the request and the reply',
        ),
        policy('host', 'filter FORWARD').delta({ packets: 0 }, 'the DROP policy counts nothing'),
      ],
    },
  ],
});

runIfMain(import.meta.url);
