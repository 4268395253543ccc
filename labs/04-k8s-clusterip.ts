#!/usr/bin/env -S node --import tsx
// Lab 04 (docs/labs.md#l4): a Kubernetes ClusterIP built from kube-proxy's iptables rules on one
// emulated node: DNAT to a random backend with `statistic --mode random`, no NAT of the pod's
// source, masquerading for the node itself, and why kube-proxy needs bridge-nf-call-iptables=1.
import {
  BACKENDS,
  CLIENTS,
  CLUSTER_CIDR,
  CNI0_IP,
  NODE_IP,
  cmd,
  conntrack,
  defineLab,
  kubeChains,
  kubeProxyRules,
  kubeRules,
  output,
  packets,
  podTopology,
  rule,
  ruleText,
  runIfMain,
  tcp,
  type KubeProxySpec,
  endpointChoices,
  savedRuleLine,
  perProfile,
  kubeProxyProfile,
  nftChains,
  NFT_TABLE,
  type Step,
} from 'nflab';

const VIP = '10.98.51.150';
const PROXY: KubeProxySpec = {
  node: 'node',
  services: [
    { name: 'k8s-nginx-cluster', clusterIP: VIP, port: 80, protocol: 'tcp', endpoints: Object.values(BACKENDS) },
  ],
  options: { era: kubeProxyProfile(), clusterCIDR: CLUSTER_CIDR },
};
// nftables mode (v1.33+) writes no iptables rules: its steps read the kube-proxy table's counters.
const NFTABLES = kubeProxyProfile() === 'nftables';

// Enough new connections to see the shares, few enough to stay fast.
const N = 150;
const fromPc = tcp('pc', VIP, 80, { connections: N });
const PC = CLIENTS.pc;
// What the traffic shows in every mode (iptables or nftables): pc's shares and its own address
// kept, conntrack's tuples, the node's connection masqueraded.
const PC_SPREAD = [
  fromPc.spreads({ p1: 1 / 3, p2: 1 / 3, p3: 1 / 3 }),
  fromPc.connects({ clientSeen: PC, description: `every backend sees pc's own address ${PC}` }),
];
/** Predict, then observe (the answer is PC_SPREAD's second check, which both steps put second). */
const PC_QUESTIONS = [
  {
    ask: "Which source address will the backends see for pc's connections to the ClusterIP?",
    answer: `pc's own address ${PC} (the cluster CIDR is not masqueraded); each backend answers about a third of them.`,
    observedIn: 1,
  },
];
const PC_TUPLES = [
  conntrack('node', { proto: 'tcp', orig: { src: PC, dst: VIP, dport: 80 }, reply: { dst: PC, sport: 80 } }).count(
    N,
    `conntrack: ${N} entries ${PC} → ${VIP}:80 whose reply comes from a pod to ${PC} (not masqueraded)`,
  ),
  conntrack('node', { proto: 'tcp', orig: { dst: VIP }, reply: { dst: CNI0_IP } }).absent(
    'no entry to the ClusterIP is masqueraded',
  ),
];
const NODE_CONNECTS = tcp('node', VIP, 80).connects({
  clientSeen: CNI0_IP,
  description: `the backend sees the node as ${CNI0_IP}`,
});
const NODE_TUPLE = conntrack('node', {
  proto: 'tcp',
  orig: { src: NODE_IP, dst: VIP, dport: 80 },
  reply: { dst: CNI0_IP, sport: 80 },
}).count(1, 'conntrack: both DNAT and SNAT in the reply tuple');

export default defineLab({
  id: '04',
  title: "Kubernetes ClusterIP: kube-proxy's DNAT and random load balancing",
  summary: NFTABLES
    ? "kube-proxy (nftables mode) turns a ClusterIP into an element of its service-ips verdict map: the service chain picks an endpoint chain with numgen random mod 3, and that chain DNATs. The pod's source survives, the node's own connections are masqueraded, and with bridge-nf-call-iptables=0 the replies bypass the un-DNAT and every connection hangs."
    : "kube-proxy (iptables mode) turns a ClusterIP into DNAT rules: each new connection picks a backend with statistic --mode random. The pod's source survives, the node's own connections are masqueraded, and with bridge-nf-call-iptables=0 the replies bypass the un-DNAT and every connection hangs.",
  source: {
    title:
      '[Kubernetes] How to Implement Kubernetes Service - ClusterIP (hwchiu); kubeDemo services/service/nginx-cluster.yml',
    url: 'https://www.hwchiu.com/docs/2018/kubernetes-service-ii',
    spec: 'L4',
  },
  requires: ['br_netfilter'],
  kubeProxy: PROXY,
  topology: podTopology({ setup: kubeProxyRules(PROXY) }),
  steps: [
    ...(NFTABLES ? nftablesSteps() : iptablesSteps()),
    {
      title: 'Break: bridge-nf-call-iptables=0 (and conntrack -F): every connection hangs',
      teaches:
        "The DNATed SYN still reaches a pod (pc sends it to its gateway, so it is routed), but the pod answers pc directly over the bridge: without br_netfilter the SYN-ACK never meets conntrack, keeps the pod's address, and pc refuses it.",
      run: [cmd('node', 'sysctl -w net.bridge.bridge-nf-call-iptables=0'), cmd('node', 'conntrack -F')],
      expect: [
        tcp('pc', VIP, 80, { connections: 3, timeout: 1 }).timesOut(),
        packets('node', 'veth-pc', { proto: 'tcp', dst: PC, sport: 80, flags: 'S.' }).seen(
          'pc receives SYN-ACKs from port 80',
        ),
        packets('node', 'veth-pc', { proto: 'tcp', src: VIP, dst: PC }).none(
          'but none from the ClusterIP: the reply was never un-DNATed',
        ),
      ],
    },
    {
      title: 'Fix: bridge-nf-call-iptables=1 (what kube-proxy sets), conntrack -F',
      run: [cmd('node', 'sysctl -w net.bridge.bridge-nf-call-iptables=1'), cmd('node', 'conntrack -F')],
      expect: [tcp('pc', VIP, 80, { connections: 3 }).connects({ clientSeen: PC })],
    },
  ],
});

/** Steps 1–3 in iptables mode: KUBE-SVC's probabilities and the counters of its rules. */
function iptablesSteps(): Step[] {
  const { svc, sep } = kubeChains(PROXY, 'k8s-nginx-cluster');
  // KUBE-SVC's three rules in order: 1/3 to p1, then 1/2 of the rest to p2, then the rest to p3.
  const choices = endpointChoices(kubeRules(PROXY, 'nat', { chain: svc }));
  const [toP1, toP2, toP3] = choices.map(ruleText) as [string, string, string];
  const [savedP1, savedP2] = choices.map(savedRuleLine) as [string, string];
  const [dnatP3] = kubeRules(PROXY, 'nat', { chain: sep[BACKENDS.p3]! })
    .filter((r) => r.args.includes('DNAT'))
    .map(savedRuleLine) as [string];
  // The clusterIP masquerade rule: in KUBE-SERVICES up to v1.2x, inside KUBE-SVC from then on.
  const [masqForeignRule] = kubeRules(PROXY, 'nat', { id: 'clusterip-mark-masq' });
  const masqForeign = ruleText(masqForeignRule!);
  const probabilityText = (line: string) => /--probability (\S+)/.exec(line)?.[1] ?? '?';
  const [masquerade] = kubeRules(PROXY, 'nat', { id: 'postrouting-masquerade' }).map(ruleText) as [string];
  return [
    {
      title: "kube-proxy's rules: 1/3, then 1/2, then the rest",
      teaches: `Rule i of n carries 1/(n−i+1), so each backend gets 1/n. kube-proxy wrote ${perProfile({ blog: '%0.5f', 'v1.19': '%0.10f', current: '%0.10f', nftables: '(no probabilities: numgen)' })}; the kernel keeps the probability in 2^-31 steps, so iptables-save prints ${probabilityText(savedP1)} and ${probabilityText(savedP2)} (G5).`,
      expect: [
        {
          description: `iptables-save prints the probabilities as ${probabilityText(savedP1)} and ${probabilityText(savedP2)}; the last KUBE-SEP chain DNATs to p3`,
          ...output('node', 'iptables-save -t nat').includes(savedP1, savedP2, dnatP3),
        },
      ],
    },
    {
      title: `pc opens ${N} connections to the ClusterIP: about a third each, pc's address kept`,
      questions: PC_QUESTIONS,
      teaches:
        "Only the first packet of a connection traverses the nat table, so each KUBE-SVC rule counts exactly the connections its backend answered (G9). Pod to ClusterIP stays inside the cluster CIDR: no masquerade, and conntrack's reply tuple names the chosen pod.",
      expect: [
        ...PC_SPREAD,
        rule('node', `nat ${svc}`, toP1).countsAnswers(
          fromPc.traffic,
          'p1',
          'the 1/3 rule counts the connections p1 answered',
        ),
        rule('node', `nat ${svc}`, toP2).countsAnswers(
          fromPc.traffic,
          'p2',
          'the 1/2 rule counts the connections p2 answered',
        ),
        rule('node', `nat ${svc}`, toP3).countsAnswers(
          fromPc.traffic,
          'p3',
          'the last rule counts the connections p3 answered',
        ),
        ...PC_TUPLES,
      ],
    },
    {
      title: "The node itself reaches the ClusterIP, masqueraded to cni0's address",
      teaches:
        "The node's packets take nat OUTPUT → KUBE-SERVICES. Their source 172.17.8.100 is outside 10.244.0.0/16, so KUBE-MARK-MASQ marks them and KUBE-POSTROUTING masquerades them to 10.244.0.1 on the way out of cni0.",
      expect: [
        NODE_CONNECTS,
        rule('node', `nat ${masqForeignRule!.chain}`, masqForeign).delta(
          { packets: 1 },
          'the "! -s 10.244.0.0/16 … -j KUBE-MARK-MASQ" rule marks the node\'s connection',
        ),
        rule('node', 'nat KUBE-POSTROUTING', masquerade).delta(
          { packets: 1 },
          'KUBE-POSTROUTING masquerades the marked connection',
        ),
        NODE_TUPLE,
      ],
    },
  ];
}

/**
 * Steps 1–3 in nftables mode: one `numgen random mod 3 vmap` rule picks the endpoint chain, so the
 * shares are read from the counters of each endpoint chain's dnat rule (nflab adds a `counter` to
 * every rule of the table it loads; kube-proxy itself writes none).
 */
function nftablesSteps(): Step[] {
  const { service, endpoint } = nftChains(PROXY, 'k8s-nginx-cluster');
  const at = (chain: string) => `${NFT_TABLE} ${chain}`;
  const dnat = (pod: keyof typeof BACKENDS) =>
    rule('node', at(endpoint[BACKENDS[pod]]!), `dnat to ${BACKENDS[pod]}:80`);
  const markForeign = `ip saddr != ${CLUSTER_CIDR} jump mark-for-masquerade`;
  return [
    {
      title: "kube-proxy's nftables rules: one numgen rule picks the endpoint chain",
      teaches:
        "In nftables mode the service chain holds no probabilities: `numgen random mod 3 vmap { 0 : goto …, 1 : goto …, 2 : goto … }` draws 0, 1 or 2 for each new connection and jumps to that endpoint's chain, which DNATs. The service-ips map sends the ClusterIP . tcp . 80 to the service chain.",
      expect: [
        {
          description: 'the service chain draws one of three endpoint chains with numgen',
          ...output('node', `nft list chain ${NFT_TABLE} ${service}`).includes(
            'numgen random mod 3 vmap',
            `goto ${endpoint[BACKENDS.p1]}`,
            `goto ${endpoint[BACKENDS.p3]}`,
          ),
        },
        output('node', `nft list chain ${NFT_TABLE} ${endpoint[BACKENDS.p3]}`).includes(`dnat to ${BACKENDS.p3}:80`),
        output('node', `nft list map ${NFT_TABLE} service-ips`).includes(`${VIP} . tcp . 80 : goto ${service}`),
      ],
    },
    {
      title: `pc opens ${N} connections to the ClusterIP: about a third each, pc's address kept`,
      questions: PC_QUESTIONS,
      teaches:
        "Only the first packet of a connection traverses the nat hooks, so the numgen rule counts every new connection once and each endpoint chain's dnat rule counts exactly the connections its backend answered. No masquerade: pc is inside the cluster CIDR.",
      expect: [
        ...PC_SPREAD,
        rule('node', at(service), 'numgen random mod 3').delta(
          { packets: N },
          `the numgen rule draws once per connection: ${N}`,
        ),
        dnat('p1').countsAnswers(fromPc.traffic, 'p1', "p1's endpoint chain DNATs the connections p1 answered"),
        dnat('p2').countsAnswers(fromPc.traffic, 'p2', "p2's endpoint chain DNATs the connections p2 answered"),
        dnat('p3').countsAnswers(fromPc.traffic, 'p3', "p3's endpoint chain DNATs the connections p3 answered"),
        rule('node', at(service), markForeign).delta({ packets: 0 }, 'nothing from pc is marked for masquerade'),
        ...PC_TUPLES,
      ],
    },
    {
      title: "The node itself reaches the ClusterIP, masqueraded to cni0's address",
      teaches:
        "The node's packets take nat-output → services. Their source 172.17.8.100 is outside 10.244.0.0/16, so the service chain jumps to mark-for-masquerade, and the masquerading chain (from nat-postrouting) masquerades them to 10.244.0.1 on the way out of cni0.",
      expect: [
        NODE_CONNECTS,
        rule('node', at(service), markForeign).delta(
          { packets: 1 },
          `the service chain's "${markForeign}" rule marks the node's connection`,
        ),
        rule('node', at('masquerading'), 'masquerade').delta(
          { packets: 1 },
          'the masquerading chain masquerades the marked connection',
        ),
        NODE_TUPLE,
      ],
    },
  ];
}

runIfMain(import.meta.url);
