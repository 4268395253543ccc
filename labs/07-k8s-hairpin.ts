#!/usr/bin/env -S node --import tsx
// Lab 07 (docs/labs.md#l10): hairpin. A pod reaches itself through its Service's ClusterIP: the DNATed
// packet must leave the bridge by the port it came in on (hairpin mode), and kube-proxy's per-endpoint
// `-s <pod>/32 -j KUBE-MARK-MASQ` rule must masquerade it, or the pod drops a packet from itself.
import {
  BACKENDS,
  CLUSTER_CIDR,
  CNI0_IP,
  cmd,
  conntrack,
  defineLab,
  kubeChains,
  kubeProxyRules,
  kubeRuleCommand,
  kubeRules,
  output,
  packets,
  podTopology,
  rule,
  ruleText,
  runIfMain,
  tcp,
  type KubeProxySpec,
  kubeProxyProfile,
  nftChains,
  nftCommand,
  NFT_TABLE,
} from 'nflab';

const VIP = '10.98.51.150';
const P1 = BACKENDS.p1;
// The cleanest form of the spec: p1 is the Service's only endpoint, so p1 always reaches itself.
const PROXY: KubeProxySpec = {
  node: 'node',
  services: [{ name: 'k8s-nginx-cluster', clusterIP: VIP, port: 80, protocol: 'tcp', endpoints: [P1] }],
  options: { era: kubeProxyProfile(), clusterCIDR: CLUSTER_CIDR },
};
// The endpoint's hairpin masquerade rule: KUBE-SEP's "-s <pod> -j KUBE-MARK-MASQ" in iptables
// mode, the endpoint chain's "ip saddr <pod> jump mark-for-masquerade" in nftables mode (whose
// rules nflab loads with counters); and how the break step removes it.
const NFTABLES = kubeProxyProfile() === 'nftables';
const HAIRPIN = NFTABLES ? nftablesHairpin() : iptablesHairpin();

function iptablesHairpin() {
  const { sep } = kubeChains(PROXY, 'k8s-nginx-cluster');
  const [masq] = kubeRules(PROXY, 'nat', { id: 'sep-hairpin-masq', scope: P1 });
  return {
    what: 'KUBE-SEP',
    counts: rule('node', `nat ${sep[P1]!}`, ruleText(masq!)),
    remove: [kubeRuleCommand('node', 'nat', '-D', masq!)],
  };
}

function nftablesHairpin() {
  const chain = `${NFT_TABLE} ${nftChains(PROXY, 'k8s-nginx-cluster').endpoint[P1]!}`;
  // nft deletes a rule by handle only: the chain is flushed and its dnat rule added back.
  return {
    what: 'endpoint chain',
    counts: rule('node', chain, `ip saddr ${P1} jump mark-for-masquerade`),
    remove: [
      nftCommand('node', 'flush', 'chain', ...chain.split(' ')),
      nftCommand(
        'node',
        'add',
        'rule',
        ...chain.split(' '),
        'meta',
        'l4proto',
        'tcp',
        'counter',
        'dnat',
        'to',
        `${P1}:80`,
      ),
    ],
  };
}

const fromP1 = tcp('p1', VIP, 80, { timeout: 1 });
const onPort = (match: Parameters<typeof packets>[2]) => packets('node', 'veth-p1', { proto: 'tcp', ...match });

export default defineLab({
  id: '07',
  title: 'Kubernetes hairpin: a pod reaches itself through its ClusterIP',
  summary:
    "When the ClusterIP DNATs a pod's connection back to the pod itself, the bridge must send the frame back out of the port it came in on (hairpin mode), and kube-proxy's hairpin masquerade rule must change its source; without either, the connection hangs.",
  source: {
    title:
      '深入理解k8s网络原理之-Service原理 (hairpin flow); kube-proxy KUBE-SEP "-s <podIP>/32 -j KUBE-MARK-MASQ"; kubelet --hairpin-mode',
    spec: 'L10',
  },
  requires: ['br_netfilter'],
  kubeProxy: PROXY,
  topology: podTopology({ setup: kubeProxyRules(PROXY) }),
  steps: [
    {
      title: "Hairpin mode is off on p1's bridge port: p1 cannot reach itself",
      teaches:
        'The SYN goes out of veth-p1 to the ClusterIP and is DNATed (and masqueraded) back to p1, but a bridge never forwards a frame out of the port it arrived on.',
      expect: [
        output('node', 'cat /sys/class/net/veth-p1/brport/hairpin_mode').includes('0'),
        output('node', 'bridge -d link show dev veth-p1').includes('hairpin off'),
        fromP1.timesOut(),
        onPort({ src: P1, dst: VIP, dport: 80, flags: 'S' }).seen("veth-p1 carries p1's SYN to the ClusterIP"),
        onPort({ dst: P1, dport: 80, flags: 'S' }).none('the translated SYN never comes back out of veth-p1'),
        conntrack('node', { proto: 'tcp', orig: { src: P1, dst: VIP, dport: 80 } }).absent(
          'conntrack keeps no entry: the SYN was dropped inside the node before its connection was confirmed',
        ),
      ],
    },
    {
      title: 'Fix: bridge link set dev veth-p1 hairpin on (and conntrack -F)',
      teaches:
        "The frame now goes back out of veth-p1: p1 receives a SYN from 10.244.0.1 (the hairpin masquerade), answers it, and the node turns the answer back into the ClusterIP's.",
      run: [cmd('node', 'bridge link set dev veth-p1 hairpin on'), cmd('node', 'conntrack -F')],
      expect: [
        fromP1.connects({ answeredBy: 'p1', clientSeen: CNI0_IP }),
        onPort({ src: P1, dst: VIP, dport: 80, flags: 'S' }).count(1, 'veth-p1: p1 → ClusterIP SYN'),
        onPort({ src: CNI0_IP, dst: P1, dport: 80, flags: 'S' }).count(
          1,
          'veth-p1: the SYN hairpinned back, DNATed and SNATed',
        ),
        onPort({ src: P1, sport: 80, dst: CNI0_IP, flags: 'S.' }).count(1, 'veth-p1: p1 answers 10.244.0.1'),
        onPort({ src: VIP, sport: 80, dst: P1, flags: 'S.' }).count(
          1,
          'veth-p1: the answer comes back from the ClusterIP',
        ),
        conntrack('node', {
          proto: 'tcp',
          orig: { src: P1, dst: VIP, dport: 80 },
          reply: { src: P1, dst: CNI0_IP, sport: 80 },
        }).count(1, 'conntrack: DNAT and SNAT in the reply tuple'),
        HAIRPIN.counts.delta({ packets: 1 }, `the ${HAIRPIN.what} hairpin rule marks the connection for masquerade`),
      ],
    },
    {
      title: `Break: delete the ${HAIRPIN.what} hairpin masquerade rule (hairpin still on)`,
      teaches:
        'The SYN comes back to p1 with p1\'s own address as its source: p1 drops it as a martian (with log_martians=1 the kernel logs "martian source 10.244.0.2 from 10.244.0.2, on dev eth0").',
      run: [...HAIRPIN.remove, cmd('node', 'conntrack -F')],
      expect: [
        fromP1.timesOut(),
        onPort({ src: P1, dst: P1, dport: 80, flags: 'S' }).seen(
          "veth-p1 carries the SYN back to p1 from p1's own address",
        ),
        onPort({ src: P1, sport: 80, flags: 'S.' }).none('p1 never answers it'),
        conntrack('node', {
          proto: 'tcp',
          orig: { src: P1, dst: VIP, dport: 80 },
          reply: { src: P1, dst: P1, sport: 80 },
        }).count(1, 'conntrack: DNAT only, the reply would go from p1 to p1'),
      ],
    },
  ],
});

runIfMain(import.meta.url);
