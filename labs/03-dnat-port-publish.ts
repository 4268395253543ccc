#!/usr/bin/env -S node --import tsx
// Lab 03 (docs/labs.md#l3): `docker run -p` by hand. DNAT in nat PREROUTING publishes a container
// port; the client's source survives; locally generated traffic needs nat OUTPUT instead.
import { cmd, conntrack, defineLab, output, packets, path, policy, rule, runIfMain, tcp } from 'nflab';

const fromClient = tcp('client', '172.17.9.103', 2345);

export default defineLab({
  id: '03',
  title: 'Publishing a container port with DNAT (docker run -p by hand)',
  summary:
    "A client on another network reaches a server in c1 through the host's address and port 2345. DNAT keeps the client's source; the FORWARD rules and c1's default route are each needed; the host itself needs nat OUTPUT rules, and loopback needs route_localnet.",
  source: {
    title: 'Docker 網路入門篇(四) – 外界主動存取 (hwchiu); docker_network_basic_4/lab1.sh at bae3acd',
    url: 'https://www.hwchiu.com/docs/2020/docker-network-model-lab-dnat',
    spec: 'L3',
  },
  topology: {
    nodes: {
      host: {
        role: 'host',
        sysctls: { 'net.ipv4.ip_forward': 1, 'net.bridge.bridge-nf-call-iptables': 1 },
        routes: [{ to: 'default', via: '10.0.2.2' }],
      },
      // c1 serves on :8000 (the article's python3 -m http.server); the responder answers with
      // its name and the client address it saw.
      c1: { role: 'container', routes: [{ to: 'default', via: '10.55.66.1' }], listen: [8000] },
      ext: { role: 'outside', addresses: { lo: ['198.51.100.8/32'] } },
      // The "other environment" (originally the laptop hosting the VM), on the host's eth1.
      client: { role: 'outside' },
    },
    bridges: { hwchiu0: { node: 'host', addresses: ['10.55.66.1/24'] } },
    links: [
      {
        a: { node: 'c1', name: 'eth0', addresses: ['10.55.66.2/24'] },
        b: { node: 'host', name: 'veth0', bridge: 'hwchiu0' },
      },
      {
        a: { node: 'host', name: 'eth0', addresses: ['10.0.2.15/24'] },
        b: { node: 'ext', name: 'eth0', addresses: ['10.0.2.2/24'] },
      },
      {
        a: { node: 'host', name: 'eth1', addresses: ['172.17.9.103/24'] },
        b: { node: 'client', name: 'eth1', addresses: ['172.17.9.1/24'] },
      },
    ],
    // The state lab1.sh leaves: FORWARD DROP, SNAT for c1, and interface accept rules.
    setup: [
      cmd('host', 'iptables -P FORWARD DROP'),
      cmd('host', 'iptables -t nat -I POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE'),
      cmd('host', 'iptables -I FORWARD -i hwchiu0 -o eth0 -j ACCEPT'),
      cmd('host', 'iptables -I FORWARD -i eth0 -o hwchiu0 -j ACCEPT'),
      cmd('host', 'iptables -I FORWARD -i hwchiu0 -o eth1 -j ACCEPT'),
      cmd('host', 'iptables -I FORWARD -i eth1 -o hwchiu0 -j ACCEPT'),
    ],
  },
  steps: [
    {
      title: 'The host reaches c1 directly',
      teaches: 'Host to container is local output through hwchiu0; no NAT is involved.',
      expect: [tcp('host', '10.55.66.2', 8000).connects({ answeredBy: 'c1', clientSeen: '10.55.66.1' })],
    },
    {
      title: "Without DNAT the client is refused: nothing listens on the host's port 2345",
      expect: [fromClient.refused()],
    },
    {
      title: 'Publish the port: DNAT 2345 to c1:8000 in nat PREROUTING',
      run: [
        cmd(
          'host',
          'iptables -t nat -A PREROUTING -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000',
        ),
      ],
      expect: [
        output('host', 'iptables -t nat -S PREROUTING').includes(
          '-A PREROUTING -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000',
        ),
      ],
    },
    {
      title: "The client reaches c1, and c1 sees the client's own address",
      questions: [
        {
          ask: 'When the client connects to 172.17.9.103:2345, which source address will c1 see?',
          answer: "The client's own address 172.17.9.1: DNAT rewrites only the destination.",
          observedIn: 0,
        },
        {
          ask: 'Which destination will the SYN have on hwchiu0?',
          answer: '10.55.66.2 port 8000, rewritten by DNAT in nat PREROUTING before routing.',
          observedIn: 3,
        },
      ],
      teaches:
        'DNAT rewrites only the destination: on eth1 the SYN goes to 172.17.9.103:2345, on hwchiu0 to 10.55.66.2:8000, from 172.17.9.1 both times. The DNAT rule counts one connection, not its packets.',
      expect: [
        fromClient.connects({ answeredBy: 'c1', clientSeen: '172.17.9.1' }),
        packets('host', 'eth1', {
          proto: 'tcp',
          src: '172.17.9.1',
          dst: '172.17.9.103',
          dport: 2345,
          flags: 'S',
        }).count(1, 'eth1: the SYN to the published port'),
        packets('host', 'eth1', {
          proto: 'tcp',
          src: '172.17.9.103',
          sport: 2345,
          dst: '172.17.9.1',
          flags: 'S.',
        }).count(1, 'eth1: the SYN-ACK comes back from the published port'),
        packets('host', 'hwchiu0', {
          proto: 'tcp',
          src: '172.17.9.1',
          dst: '10.55.66.2',
          dport: 8000,
          flags: 'S',
        }).count(1, 'hwchiu0: the SYN was DNATed, its source kept'),
        packets('host', 'hwchiu0', {
          proto: 'tcp',
          src: '10.55.66.2',
          sport: 8000,
          dst: '172.17.9.1',
          flags: 'S.',
        }).count(1, 'hwchiu0: c1 answers the client directly'),
        conntrack('host', {
          proto: 'tcp',
          orig: { src: '172.17.9.1', dst: '172.17.9.103', dport: 2345 },
          reply: { src: '10.55.66.2', dst: '172.17.9.1', sport: 8000 },
        }).count(1, 'the reply tuple carries c1:8000'),
        rule('host', 'nat PREROUTING', '--dport 2345 -j DNAT --to-destination 10.55.66.2:8000').delta(
          { packets: 1, bytes: 60 },
          'the DNAT rule counts one connection (its 60-byte SYN)',
        ),
        path('host', { proto: 'tcp', src: '172.17.9.1', dst: '172.17.9.103', dport: 2345 }).through(
          ['nat PREROUTING: DNAT', 'filter FORWARD: ACCEPT', 'nat POSTROUTING'],
          {
            rule: '-i eth1 -o hwchiu0 -j ACCEPT',
            description: 'the SYN is DNATed in nat PREROUTING, then accepted by the eth1→hwchiu0 FORWARD rule',
          },
        ),
        path('host', { proto: 'tcp', src: '172.17.9.1', dst: '172.17.9.103', dport: 2345 }).through(
          ['filter FORWARD: ACCEPT'],
          {
            exact: true,
            packet: 2,
            description: 'the next packet of the connection skips nat PREROUTING: conntrack DNATs it',
          },
        ),
      ],
    },
    {
      title: 'Break: remove the eth1→hwchiu0 FORWARD rule',
      run: [cmd('host', 'iptables -D FORWARD -i eth1 -o hwchiu0 -j ACCEPT')],
      expect: [
        fromClient.timesOut(),
        policy('host', 'filter FORWARD').delta(
          { packets: { min: 1 } },
          'the FORWARD policy drops the SYN (and its retransmissions)',
        ),
      ],
    },
    {
      title: "Restore it, then break c1's default route: the SYN-ACK has no way back",
      run: [cmd('host', 'iptables -I FORWARD -i eth1 -o hwchiu0 -j ACCEPT'), cmd('c1', 'ip route del default')],
      expect: [
        fromClient.timesOut(),
        packets('host', 'hwchiu0', { proto: 'tcp', dst: '10.55.66.2', dport: 8000, flags: 'S' }).seen(
          'the DNATed SYN still reaches hwchiu0',
        ),
        packets('host', 'hwchiu0', { proto: 'tcp', src: '10.55.66.2', flags: 'S.' }).none(
          'c1 cannot route its SYN-ACK to 172.17.9.1',
        ),
      ],
    },
    {
      title: 'The "local access" problem: the host cannot use its own published port',
      teaches:
        "With c1's default route back the client reaches the published port again; the host does not. Locally generated packets go through nat OUTPUT, not PREROUTING, so the DNAT rule never sees them.",
      run: [cmd('c1', 'ip route add default via 10.55.66.1')],
      expect: [
        // Observes this step's command: without c1's route back, the client's connection times out (step 6).
        fromClient.connects({ answeredBy: 'c1', clientSeen: '172.17.9.1' }),
        tcp('host', '172.17.9.103', 2345).refused(),
        tcp('host', '127.0.0.1', 2345).refused(),
      ],
    },
    {
      title: "Fix for the host's address: DNAT in nat OUTPUT for local destinations",
      teaches:
        'The same DNAT in nat OUTPUT, limited to local destination addresses, serves the host. 127.0.0.1 still fails: a packet from 127.0.0.1 may not be routed out of hwchiu0.',
      run: [
        cmd(
          'host',
          'iptables -t nat -A OUTPUT -p tcp --dport 2345 -m addrtype --dst-type LOCAL -j DNAT --to-destination 10.55.66.2:8000',
        ),
      ],
      expect: [
        tcp('host', '172.17.9.103', 2345).connects({ answeredBy: 'c1' }),
        tcp('host', '127.0.0.1', 2345).timesOut(),
      ],
    },
    {
      title: 'Fix for loopback: route_localnet and MASQUERADE of 127.0.0.0/8',
      teaches:
        'route_localnet lets 127.0.0.1 be routed; MASQUERADE gives the packet a source c1 can answer (what docker-proxy avoids by proxying in user space).',
      run: [
        cmd('host', 'sysctl -w net.ipv4.conf.all.route_localnet=1'),
        cmd('host', 'iptables -t nat -A POSTROUTING -s 127.0.0.0/8 -o hwchiu0 -j MASQUERADE'),
      ],
      expect: [tcp('host', '127.0.0.1', 2345).connects({ answeredBy: 'c1', clientSeen: '10.55.66.1' })],
    },
  ],
});

runIfMain(import.meta.url);
