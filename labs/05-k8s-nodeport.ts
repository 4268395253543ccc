#!/usr/bin/env -S node --import tsx
// Lab 05 (docs/labs.md#l5): a NodePort Service. Every local address of the node forwards the port
// to the Service's backends; KUBE-MARK-MASQ both masquerades the client and lets the connection
// through a FORWARD DROP policy; without the mark the client's address survives.
import {
  CLUSTER_CIDR,
  CNI0_IP,
  EXT_IP,
  NODE_IP,
  BACKENDS,
  cmd,
  conntrack,
  defineLab,
  kubeProxyRules,
  kubeRuleCommand,
  kubeRules,
  output,
  packets,
  podTopology,
  policy,
  rule,
  ruleText,
  runIfMain,
  tcp,
  type KubeProxySpec,
  kubeProxyProfile,
  nftChains,
  nftCommand,
  nftRules,
  nftAddRule,
  NFT_TABLE,
  type Step,
} from 'nflab';

const NODE_PORT = 30136;
// nftables mode (v1.33+) writes no iptables rules: its steps read the kube-proxy table's counters.
const NFTABLES = kubeProxyProfile() === 'nftables';
const PROXY: KubeProxySpec = {
  node: 'node',
  services: [
    {
      name: 'k8s-nginx-node',
      clusterIP: '10.98.128.179',
      port: 80,
      protocol: 'tcp',
      type: 'NodePort',
      nodePort: NODE_PORT,
      endpoints: Object.values(BACKENDS),
    },
  ],
  // The lab starts without KUBE-SERVICES' last rule (nftables mode: without the node's address in
  // nodeport-ips) and adds it in step 2.
  options: NFTABLES
    ? { era: 'nftables', clusterCIDR: CLUSTER_CIDR, nodeIPs: [] }
    : { era: kubeProxyProfile(), clusterCIDR: CLUSTER_CIDR, omit: ['nodeports-jump'] },
};
// A first SYN with its options is 60 bytes: each NAT rule counts one per connection (G9).
const N = 30;
const SYN = 60;
const fromExt = tcp('ext', NODE_IP, NODE_PORT, { connections: N });
const blocked = tcp('ext', NODE_IP, NODE_PORT, { connections: 3, timeout: 1 });

export default defineLab({
  id: '05',
  title: NFTABLES
    ? 'Kubernetes NodePort (nftables mode): nodeport-ips, the masquerade mark and FORWARD DROP'
    : 'Kubernetes NodePort: KUBE-NODEPORTS, the masquerade mark and FORWARD DROP',
  summary: NFTABLES
    ? "In nftables mode a NodePort Service answers on the addresses of the nodeport-ips set only. The external chain marks the connection for masquerade, so the backend sees the cni0 address; nothing in kube-proxy's table accepts forwarded traffic, so a FORWARD DROP policy in iptables' filter table drops it; without the mark the backend sees the real client."
    : 'A NodePort Service answers on every local address of the node. The KUBE-MARK-MASQ mark masquerades the external client to the cni0 address and is also what lets the first packet through FORWARD DROP; without it the connection hangs, or, with FORWARD ACCEPT, the backend sees the real client.',
  source: {
    title:
      '[Kubernetes] How to Implement Kubernetes Service - NodePort (hwchiu); kubeDemo services/service/nginx-node.yml',
    url: 'https://www.hwchiu.com/docs/2018/kubernetes-service-iii',
    spec: 'L5',
  },
  requires: ['br_netfilter'],
  kubeProxy: PROXY,
  topology: podTopology({
    setup: NFTABLES ? kubeProxyRules(PROXY) : [cmd('node', 'iptables -P FORWARD DROP'), ...kubeProxyRules(PROXY)],
  }),
  steps: [...(NFTABLES ? nftablesSteps() : iptablesSteps())],
});

/** iptables mode: KUBE-NODEPORTS, KUBE-MARK-MASQ, KUBE-FORWARD's accept of marked packets under FORWARD DROP. */
function iptablesSteps(): Step[] {
  const [nodePortsJump] = kubeRules(PROXY, 'nat', { id: 'nodeports-jump' });
  const [markMasq] = kubeRules(PROXY, 'nat', { id: 'nodeport-mark-masq' });
  // (from v1.2x a second rule serves NodePorts on 127.0.0.0/8; the one for the node's addresses is the other)
  const [svcJump] = kubeRules(PROXY, 'nat', { id: 'nodeport-svc-jump' })
    .filter((r) => !r.args.includes('127.0.0.0/8'))
    .map(ruleText);
  const [masquerade] = kubeRules(PROXY, 'nat', { id: 'postrouting-masquerade' }).map(ruleText);
  const [markAccept] = kubeRules(PROXY, 'filter', { id: 'forward-mark-accept' }).map(ruleText);
  // The RELATED,ESTABLISHED accept rules: per pod source and destination up to v1.2x, one rule later.
  const established = kubeRules(PROXY, 'filter', { chain: 'KUBE-FORWARD' })
    .filter((r) => r.args.includes('RELATED,ESTABLISHED'))
    .map(ruleText);
  return [
    {
      title: "Without KUBE-SERVICES' last rule the node port is closed",
      teaches:
        'Nothing listens on 30136 and no rule leads to KUBE-NODEPORTS, so the node answers the SYN with a reset.',
      expect: [
        tcp('ext', NODE_IP, NODE_PORT).refused(),
        packets('node', 'eth0', { proto: 'tcp', src: NODE_IP, sport: NODE_PORT, flags: 'R.' }).count(
          1,
          'the node answers with a reset',
        ),
      ],
    },
    {
      title: `Add the rule; ext opens ${N} connections to the node port`,
      teaches:
        '`-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS` sends every connection to a local address into KUBE-NODEPORTS, which marks it for masquerade and jumps to the Service. The backend sees 10.244.0.1; the marked first packet passes FORWARD DROP, the rest of the connection is ESTABLISHED.',
      run: [kubeRuleCommand('node', 'nat', '-A', nodePortsJump!)],
      expect: [
        fromExt.spreads({ p1: 1 / 3, p2: 1 / 3, p3: 1 / 3 }),
        fromExt.connects({
          clientSeen: CNI0_IP,
          description: `every backend sees the client as ${CNI0_IP} (masqueraded to cni0's address)`,
        }),
        rule('node', `nat ${markMasq!.chain}`, ruleText(markMasq!)).delta(
          { packets: N, bytes: N * SYN },
          'KUBE-NODEPORTS: the KUBE-MARK-MASQ rule counts one SYN per connection',
        ),
        rule('node', 'nat KUBE-NODEPORTS', svcJump!).delta(
          { packets: N, bytes: N * SYN },
          'KUBE-NODEPORTS: the jump to the Service counts the same',
        ),
        rule('node', 'nat KUBE-POSTROUTING', masquerade!).delta(
          { packets: N, bytes: N * SYN },
          'KUBE-POSTROUTING masquerades every marked connection',
        ),
        rule('node', 'filter KUBE-FORWARD', markAccept!).delta(
          { packets: N, bytes: N * SYN },
          'KUBE-FORWARD accepts each marked first SYN',
        ),
        ...established.map((r, i) =>
          rule('node', 'filter KUBE-FORWARD', r).delta(
            { packets: { min: N } },
            established.length === 2
              ? [
                  "the conntrack pod source rule carries the backends' packets",
                  "the conntrack pod destination rule carries the client's later packets",
                ][i]
              : 'the conntrack rule carries the rest of each connection, both ways',
          ),
        ),
        policy('node', 'filter FORWARD').delta({ packets: 0 }, 'the FORWARD DROP policy drops nothing'),
        conntrack('node', {
          proto: 'tcp',
          orig: { src: EXT_IP, dst: NODE_IP, dport: NODE_PORT },
          reply: { dst: CNI0_IP, sport: 80 },
        }).count(N, 'conntrack: DNAT (reply from a pod:80) and SNAT (reply to 10.244.0.1) in each reply tuple'),
      ],
    },
    {
      title: "A pod reaches the node port on cni0's address",
      teaches: '--dst-type LOCAL matches any local address of the node, 10.244.0.1 included.',
      expect: [tcp('pc', CNI0_IP, NODE_PORT).connects({ clientSeen: CNI0_IP })],
    },
    {
      title: `Break: delete the ${markMasq!.chain.startsWith('KUBE-EXT-') ? 'KUBE-EXT' : 'KUBE-NODEPORTS'} KUBE-MARK-MASQ rule (and conntrack -F)`,
      teaches:
        'The connection is still DNATed, but its unmarked NEW SYN matches no KUBE-FORWARD rule and the FORWARD DROP policy drops it. A dropped SYN never confirms its conntrack entry, so every retransmission is a new connection to the nat table.',
      run: [kubeRuleCommand('node', 'nat', '-D', markMasq!), cmd('node', 'conntrack -F')],
      expect: [
        blocked.timesOut(),
        // A dropped SYN never confirms its conntrack entry, so a retransmitted SYN is new to nat again.
        rule('node', 'nat KUBE-NODEPORTS', svcJump!).delta(
          { packets: { min: 3 } },
          'the SYNs are still sent to the Service (DNAT), retransmissions included',
        ),
        rule('node', 'filter KUBE-FORWARD', markAccept!).delta(
          { packets: 0 },
          'nothing is marked, so KUBE-FORWARD accepts nothing',
        ),
        policy('node', 'filter FORWARD').delta(
          { packets: { min: 3 } },
          'the FORWARD DROP policy drops the SYNs (and retransmissions)',
        ),
      ],
    },
    {
      title: 'Variant: FORWARD policy ACCEPT, still without the mark: the backend sees the real client',
      teaches:
        'Unmarked, the connection is not masqueraded: the backend answers 172.17.8.1 through its default route, the node un-DNATs the reply. Source preservation is what externalTrafficPolicy: Local relies on.',
      run: [cmd('node', 'iptables -P FORWARD ACCEPT'), cmd('node', 'conntrack -F')],
      expect: [
        tcp('ext', NODE_IP, NODE_PORT, { connections: 3 }).connects({ clientSeen: EXT_IP }),
        rule('node', 'nat KUBE-POSTROUTING', masquerade!).delta({ packets: 0 }, 'nothing is masqueraded'),
        conntrack('node', {
          proto: 'tcp',
          orig: { src: EXT_IP, dst: NODE_IP, dport: NODE_PORT },
          reply: { dst: EXT_IP, sport: 80 },
        }).count(3, 'conntrack: only DNAT in the reply tuple'),
      ],
    },
    {
      title: 'Nothing listens on the node port',
      teaches:
        'The emulation does not reserve the port as kube-proxy does (it holds a socket on it); the rules alone forward it.',
      expect: [output('node', 'ss -ltn').excludes(`:${NODE_PORT}`)],
    },
  ];
}

/**
 * nftables mode: NodePorts answer only on the addresses in the nodeport-ips set (kube-proxy's
 * --nodeport-addresses, the node's primary address by default), through the service-nodeports map
 * into the external chain, which marks for masquerade. Nothing in kube-proxy's table accepts
 * forwarded traffic: an accept in one nftables table never overrides a drop in another table's
 * chain, so a FORWARD DROP policy (iptables' filter table) drops the NodePort's connections.
 */
function nftablesSteps(): Step[] {
  const { service, external } = nftChains(PROXY, 'k8s-nginx-node');
  const at = (chain: string) => `${NFT_TABLE} ${chain}`;
  const mark = rule('node', at(external), 'jump mark-for-masquerade');
  const masquerade = rule('node', at('masquerading'), 'masquerade');
  const addNodeIP = nftCommand('node', 'add', 'element', ...NFT_TABLE.split(' '), 'nodeport-ips', '{', NODE_IP, '}');
  const [, gotoService] = nftRules(PROXY, external);
  return [
    {
      title: "Without the node's address in nodeport-ips the node port is closed",
      teaches:
        'The services chain sends a packet to service-nodeports only when its destination is in the nodeport-ips set, still empty here; nothing listens on 30136, so the node answers the SYN with a reset.',
      expect: [
        tcp('ext', NODE_IP, NODE_PORT).refused(),
        packets('node', 'eth0', { proto: 'tcp', src: NODE_IP, sport: NODE_PORT, flags: 'R.' }).count(
          1,
          'the node answers with a reset',
        ),
      ],
    },
    {
      title: `Add ${NODE_IP} to nodeport-ips; ext opens ${N} connections to the node port`,
      teaches:
        'service-nodeports maps tcp . 30136 to the external chain, which jumps to mark-for-masquerade and goes to the service chain. The backend sees 10.244.0.1.',
      run: [addNodeIP],
      expect: [
        fromExt.spreads({ p1: 1 / 3, p2: 1 / 3, p3: 1 / 3 }),
        fromExt.connects({
          clientSeen: CNI0_IP,
          description: `every backend sees the client as ${CNI0_IP} (masqueraded to cni0's address)`,
        }),
        mark.delta({ packets: N, bytes: N * SYN }, 'the external chain marks one SYN per connection for masquerade'),
        rule('node', at(external), `goto ${service}`).delta(
          { packets: N, bytes: N * SYN },
          'and goes to the service chain with the same SYNs',
        ),
        masquerade.delta({ packets: N, bytes: N * SYN }, 'the masquerading chain masquerades every marked connection'),
        conntrack('node', {
          proto: 'tcp',
          orig: { src: EXT_IP, dst: NODE_IP, dport: NODE_PORT },
          reply: { dst: CNI0_IP, sport: 80 },
        }).count(N, 'conntrack: DNAT (reply from a pod:80) and SNAT (reply to 10.244.0.1) in each reply tuple'),
      ],
    },
    {
      title: "A pod reaches the node port on the node's address, not on cni0's",
      teaches:
        'In nftables mode a NodePort answers only on the addresses in nodeport-ips; 10.244.0.1 is not one of them (in iptables mode any local address is).',
      expect: [
        tcp('pc', NODE_IP, NODE_PORT).connects({ clientSeen: CNI0_IP }),
        tcp('pc', CNI0_IP, NODE_PORT).refused(
          `a connection to ${CNI0_IP}:${NODE_PORT} is refused: that address is not in nodeport-ips`,
        ),
      ],
    },
    {
      title: 'Break: iptables -P FORWARD DROP (and conntrack -F): nothing in nftables mode accepts the connection',
      teaches:
        "The connection is still marked and DNATed in kube-proxy's table, but iptables' filter FORWARD chain is another base chain on the same hook: its DROP policy drops the SYN whatever kube-proxy's table decided. A dropped SYN never confirms its conntrack entry, so every retransmission is new to the nat hooks again.",
      run: [cmd('node', 'iptables -P FORWARD DROP'), cmd('node', 'conntrack -F')],
      expect: [
        blocked.timesOut(),
        mark.delta(
          { packets: { min: 3 } },
          'the SYNs are still marked and sent to the Service (DNAT), retransmissions included',
        ),
        policy('node', 'filter FORWARD').delta(
          { packets: { min: 3 } },
          'the FORWARD DROP policy drops the SYNs (and retransmissions)',
        ),
      ],
    },
    {
      title: 'Variant: FORWARD policy ACCEPT and no mark: the backend sees the real client',
      teaches:
        'The external chain is written again without its mark-for-masquerade jump: unmarked, the connection is not masqueraded, the backend answers 172.17.8.1 through its default route and the node un-DNATs the reply. Source preservation is what externalTrafficPolicy: Local relies on.',
      run: [
        cmd('node', 'iptables -P FORWARD ACCEPT'),
        nftCommand('node', 'flush', 'chain', ...at(external).split(' ')),
        nftAddRule('node', external, gotoService!),
        cmd('node', 'conntrack -F'),
      ],
      expect: [
        tcp('ext', NODE_IP, NODE_PORT, { connections: 3 }).connects({ clientSeen: EXT_IP }),
        masquerade.delta({ packets: 0 }, 'nothing is masqueraded'),
        conntrack('node', {
          proto: 'tcp',
          orig: { src: EXT_IP, dst: NODE_IP, dport: NODE_PORT },
          reply: { dst: EXT_IP, sport: 80 },
        }).count(3, 'conntrack: only DNAT in the reply tuple'),
      ],
    },
    {
      title: 'Nothing listens on the node port',
      teaches:
        'The emulation does not reserve the port as kube-proxy does (it holds a socket on it); the rules alone forward it.',
      expect: [output('node', 'ss -ltn').excludes(`:${NODE_PORT}`)],
    },
  ];
}

runIfMain(import.meta.url);
