// The single-node Kubernetes emulation of docs/labs.md#l4 that the Service labs share: a node with the
// CNI bridge cni0, three backend pods serving :80, two client pods, and an external host.
//
//  ns node: cni0 10.244.0.1/24, eth0 172.17.8.100/24 default via 172.17.8.1, ip_forward=1, bridge-nf-call-iptables=1
//  pods p1 .2, p2 .3, p3 .4 (listen :80), pc .10, pd .11: eth0 in the pod, veth-<pod> on cni0, default via 10.244.0.1
//  ns ext: eth0 172.17.8.1/24, ip_forward=0 (an external client that drops stray forwarded packets)
import type { Command, NodeSpec, Topology } from '../lab/types.ts';

export const NODE_IP = '172.17.8.100';
export const CNI0_IP = '10.244.0.1';
export const EXT_IP = '172.17.8.1';
export const CLUSTER_CIDR = '10.244.0.0/16';
/** Backends answer on :80 with "<pod> client=<ip>:<port>". */
export const BACKENDS = { p1: '10.244.0.2', p2: '10.244.0.3', p3: '10.244.0.4' } as const;
export const CLIENTS = { pc: '10.244.0.10', pd: '10.244.0.11' } as const;
export const POD_PORT = 80;

export interface PodTopologyOptions {
  /** Commands that complete the starting state, e.g. kubeProxyRules(spec) and `iptables -P FORWARD DROP`. */
  setup?: Command[];
}

export function podTopology(options: PodTopologyOptions = {}): Topology {
  const pod = (listen?: number[]): NodeSpec => ({
    role: 'container',
    routes: [{ to: 'default', via: CNI0_IP }],
    ...(listen ? { listen } : {}),
  });
  const pods = { ...BACKENDS, ...CLIENTS };
  return {
    nodes: {
      node: {
        role: 'host',
        sysctls: { 'net.ipv4.ip_forward': 1, 'net.bridge.bridge-nf-call-iptables': 1 },
        routes: [{ to: 'default', via: EXT_IP }],
      },
      ...Object.fromEntries(Object.keys(pods).map((name) => [name, pod(name in BACKENDS ? [POD_PORT] : undefined)])),
      ext: { role: 'outside', sysctls: { 'net.ipv4.ip_forward': 0 } },
    },
    bridges: { cni0: { node: 'node', addresses: [`${CNI0_IP}/24`] } },
    links: [
      ...Object.entries(pods).map(([name, ip]) => ({
        a: { node: name, name: 'eth0', addresses: [`${ip}/24`] },
        b: { node: 'node', name: `veth-${name}`, bridge: 'cni0' },
      })),
      {
        a: { node: 'node', name: 'eth0', addresses: [`${NODE_IP}/24`] },
        b: { node: 'ext', name: 'eth0', addresses: [`${EXT_IP}/24`] },
      },
    ],
    ...(options.setup ? { setup: options.setup } : {}),
  };
}
