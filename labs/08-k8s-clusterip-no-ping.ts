#!/usr/bin/env -S node --import tsx
// Lab 08 (docs/labs.md#l11): "a ClusterIP cannot be pinged" in kube-proxy's iptables mode. The
// ClusterIP is on no interface; only packets matching its exact address, protocol and port are
// DNATed. Anything else (ICMP, another port) is routed like any foreign address: out of the node.
import {
  BACKENDS,
  CLIENTS,
  CLUSTER_CIDR,
  defineLab,
  kubeProxyRules,
  packets,
  ping,
  podTopology,
  runIfMain,
  tcp,
  type KubeProxySpec,
  kubeProxyProfile,
} from 'nflab';

const VIP = '10.98.51.150';
const PROXY: KubeProxySpec = {
  node: 'node',
  services: [
    { name: 'k8s-nginx-cluster', clusterIP: VIP, port: 80, protocol: 'tcp', endpoints: Object.values(BACKENDS) },
  ],
  options: { era: kubeProxyProfile(), clusterCIDR: CLUSTER_CIDR },
};
const PC = CLIENTS.pc;
// In nftables mode (kube-proxy v1.33+) the lesson inverts: the ping is rejected.
const NFTABLES = kubeProxyProfile() === 'nftables';

export default defineLab({
  id: '08',
  title: NFTABLES
    ? 'Kubernetes ClusterIP does not answer ping (nftables mode: rejected)'
    : 'Kubernetes ClusterIP does not answer ping (iptables mode)',
  summary: NFTABLES
    ? 'In nftables mode (kube-proxy v1.33+) every ClusterIP is in the cluster-ips set: a ping, or a connection to a port the Service does not serve, is rejected on the node with an ICMP port unreachable instead of leaking out of it; the served port is DNATed through the service-ips verdict map.'
    : "kube-proxy's rules match a ClusterIP only with its protocol and port. A ping, or a connection to another port, matches no rule; the node owns no such address and routes the packet out of its default route, un-NATed.",
  source: {
    title:
      '深入理解k8s网络原理之-Service原理 ("在iptables模式下，clusterIP都是ping不通的"); [Kubernetes] How to Implement Kubernetes Service - ClusterIP (hwchiu)',
    url: 'https://www.hwchiu.com/docs/2018/kubernetes-service-ii',
    spec: 'L11',
  },
  requires: ['br_netfilter'],
  kubeProxy: PROXY,
  topology: podTopology({ setup: kubeProxyRules(PROXY) }),
  steps: NFTABLES
    ? [
        {
          title: 'nftables mode: pc pings the ClusterIP and is rejected; nothing leaks out of the node',
          teaches:
            "kube-proxy's nftables mode lists every ClusterIP in the cluster-ips set; a new connection to one that no service-ips element matched jumps to cluster-ips-check and is rejected, so the lesson of iptables mode inverts: the ping gets an ICMP port unreachable at once.",
          expect: [
            ping('pc', VIP, { count: 2, wait: 1 }).fails(
              'Port Unreachable',
              'ping from pc to the ClusterIP fails with "Destination Port Unreachable" (the reject)',
            ),
            packets('node', 'eth0', { proto: 'icmp', dst: VIP }).none("no echo request leaves through the node's eth0"),
          ],
        },
        {
          title: 'nftables mode: a port the Service does not serve is refused',
          expect: [
            tcp('pc', VIP, 81, { timeout: 1 }).refused(
              "a TCP connection from pc to the ClusterIP's port 81 is refused at once (ICMP port unreachable)",
            ),
            packets('node', 'eth0', { dst: VIP }).none('nothing to the ClusterIP leaves through eth0'),
          ],
        },
        {
          title: 'Port 80 works: an exact address, protocol and port match in service-ips',
          expect: [
            tcp('pc', VIP, 80).connects({ clientSeen: PC }),
            packets('node', 'eth0', { dst: VIP }).none('nothing to the ClusterIP leaves through eth0'),
          ],
        },
      ]
    : [
        {
          title: 'pc pings the ClusterIP: no answer, and the request leaks out of the node',
          teaches:
            'No rule matches ICMP to the ClusterIP and no interface has it, so the node forwards the echo request to its default gateway, which drops it.',
          expect: [
            ping('pc', VIP, { count: 2, wait: 1 }).fails(),
            packets('node', 'eth0', { proto: 'icmp', icmp: 'echo-request', src: PC, dst: VIP }).count(
              2,
              "both echo requests leave through the node's eth0, un-NATed",
            ),
          ],
        },
        {
          title: 'A port the Service does not serve: the same leak',
          expect: [
            tcp('pc', VIP, 81, { timeout: 1 }).timesOut(),
            packets('node', 'eth0', { proto: 'tcp', src: PC, dst: VIP, dport: 81, flags: 'S' }).seen(
              'the SYN to port 81 leaves through eth0, un-NATed',
            ),
          ],
        },
        {
          title: 'Port 80 works: an exact address, protocol and port match',
          expect: [
            tcp('pc', VIP, 80).connects({ clientSeen: PC }),
            packets('node', 'eth0', { dst: VIP }).none('nothing to the ClusterIP leaves through eth0'),
          ],
        },
      ],
});

runIfMain(import.meta.url);
