#!/usr/bin/env -S node --import tsx
// Lab 07 (docs/labs.md#l10): hairpin. A pod reaches itself through its Service's ClusterIP: the DNATed
// packet must leave the bridge by the port it came in on (hairpin mode), and kube-proxy's per-endpoint
// `-s <pod>/32 -j KUBE-MARK-MASQ` rule must masquerade it, or the pod drops a packet from itself.
import {
  BACKENDS, CLUSTER_CIDR, CNI0_IP, cmd, conntrack, defineLab, kubeChains, kubeProxyRules, kubeRuleCommand, kubeRules,
  output, packets, podTopology, rule, ruleText, runIfMain, tcp, type KubeProxySpec,
  kubeProxyProfile,
} from 'nflab';

const VIP = '10.98.51.150';
const P1 = BACKENDS.p1;
// The cleanest form of the spec: p1 is the Service's only endpoint, so p1 always reaches itself.
const PROXY: KubeProxySpec = {
  node: 'node',
  services: [{ name: 'k8s-nginx-cluster', clusterIP: VIP, port: 80, protocol: 'tcp', endpoints: [P1] }],
  options: { era: kubeProxyProfile(), clusterCIDR: CLUSTER_CIDR },
};
const { sep } = kubeChains(PROXY, 'k8s-nginx-cluster');
const SEP = sep[P1]!;
const [hairpinMasq] = kubeRules(PROXY, 'nat', { id: 'sep-hairpin-masq', scope: P1 });

const fromP1 = tcp('p1', VIP, 80, { timeout: 1 });
const onPort = (match: Parameters<typeof packets>[2]) => packets('node', 'veth-p1', { proto: 'tcp', ...match });

export default defineLab({
  id: '07',
  title: 'Kubernetes hairpin: a pod reaches itself through its ClusterIP',
  summary: 'When the ClusterIP DNATs a pod\'s connection back to the pod itself, the bridge must send the frame back out of the port it came in on (hairpin mode), and kube-proxy\'s hairpin masquerade rule must change its source; without either, the connection hangs.',
  source: {
    title: '深入理解k8s网络原理之-Service原理 (hairpin flow); kube-proxy KUBE-SEP "-s <podIP>/32 -j KUBE-MARK-MASQ"; kubelet --hairpin-mode',
    spec: 'L10',
  },
  requires: ['br_netfilter'],
  kubeProxy: PROXY,
  topology: podTopology({ setup: kubeProxyRules(PROXY) }),
  steps: [
    {
      title: 'Hairpin mode is off on p1\'s bridge port: p1 cannot reach itself',
      teaches: 'The SYN goes out of veth-p1 to the ClusterIP and is DNATed (and masqueraded) back to p1, but a bridge never forwards a frame out of the port it arrived on.',
      expect: [
        output('node', 'cat /sys/class/net/veth-p1/brport/hairpin_mode').includes('0'),
        output('node', 'bridge -d link show dev veth-p1').includes('hairpin off'),
        fromP1.timesOut(),
        onPort({ src: P1, dst: VIP, dport: 80, flags: 'S' }).seen('veth-p1 carries p1\'s SYN to the ClusterIP'),
        onPort({ dst: P1, dport: 80, flags: 'S' }).none('the translated SYN never comes back out of veth-p1'),
        conntrack('node', { proto: 'tcp', orig: { src: P1, dst: VIP, dport: 80 } }).absent('conntrack keeps no entry: the SYN was dropped inside the node before its connection was confirmed'),
      ],
    },
    {
      title: 'Fix: bridge link set dev veth-p1 hairpin on (and conntrack -F)',
      teaches: 'The frame now goes back out of veth-p1: p1 receives a SYN from 10.244.0.1 (the hairpin masquerade), answers it, and the node turns the answer back into the ClusterIP\'s.',
      run: [cmd('node', 'bridge link set dev veth-p1 hairpin on'), cmd('node', 'conntrack -F')],
      expect: [
        fromP1.connects({ answeredBy: 'p1', clientSeen: CNI0_IP }),
        onPort({ src: P1, dst: VIP, dport: 80, flags: 'S' }).count(1, 'veth-p1: p1 → ClusterIP SYN'),
        onPort({ src: CNI0_IP, dst: P1, dport: 80, flags: 'S' }).count(1, 'veth-p1: the SYN hairpinned back, DNATed and SNATed'),
        onPort({ src: P1, sport: 80, dst: CNI0_IP, flags: 'S.' }).count(1, 'veth-p1: p1 answers 10.244.0.1'),
        onPort({ src: VIP, sport: 80, dst: P1, flags: 'S.' }).count(1, 'veth-p1: the answer comes back from the ClusterIP'),
        conntrack('node', { proto: 'tcp', orig: { src: P1, dst: VIP, dport: 80 }, reply: { src: P1, dst: CNI0_IP, sport: 80 } }).count(1, 'conntrack: DNAT and SNAT in the reply tuple'),
        rule('node', `nat ${SEP}`, ruleText(hairpinMasq!)).delta({ packets: 1 }, 'the KUBE-SEP hairpin rule marks the connection for masquerade'),
      ],
    },
    {
      title: 'Break: delete the KUBE-SEP hairpin masquerade rule (hairpin still on)',
      teaches: 'The SYN comes back to p1 with p1\'s own address as its source: p1 drops it as a martian (with log_martians=1 the kernel logs "martian source 10.244.0.2 from 10.244.0.2, on dev eth0").',
      run: [kubeRuleCommand('node', 'nat', '-D', hairpinMasq!), cmd('node', 'conntrack -F')],
      expect: [
        fromP1.timesOut(),
        onPort({ src: P1, dst: P1, dport: 80, flags: 'S' }).seen('veth-p1 carries the SYN back to p1 from p1\'s own address'),
        onPort({ src: P1, sport: 80, flags: 'S.' }).none('p1 never answers it'),
        conntrack('node', { proto: 'tcp', orig: { src: P1, dst: VIP, dport: 80 }, reply: { src: P1, dst: P1, sport: 80 } }).count(1, 'conntrack: DNAT only, the reply would go from p1 to p1'),
      ],
    },
  ],
});

runIfMain(import.meta.url);
