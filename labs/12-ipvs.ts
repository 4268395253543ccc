#!/usr/bin/env -S node --import tsx
// Lab 12 (docs/labs.md#l7): IPVS, the kernel's own load balancer behind kube-proxy's IPVS mode.
// A virtual service on a director with two real servers (NAT mode), the kube-ipvs0 dummy
// interface that makes a VIP local, and what kube-proxy's IPVS mode leaves to observe.
// It needs ip_vs and dummy interfaces: on a kernel without them it is skipped, never faked;
// it runs in the VM of scripts/vm (nflab run 12 --target ssh://...).
import { cmd, defineLab, output, ping, runIfMain, tcp } from 'nflab';

const VIP = '172.17.8.101';
const FAKE_VIP = '203.0.113.10';
const CLUSTER_IP = '10.97.35.96';
const BACKEND = { 'web-a': '10.244.0.4', 'web-b': '10.244.0.5' } as const;
// Generous waits: the VM that has IPVS here runs under software emulation, on a machine that may
// be busy. They cost time only when a connection or a reply really is lost.
const T = { timeout: 10 };

export default defineLab({
  id: '12',
  title: "IPVS: a virtual service, the kube-ipvs0 trick, and kube-proxy's IPVS mode",
  summary:
    'The director balances TCP connections to two real servers with IPVS in NAT (masquerading) mode: round robin alternates, weights 1:9 split 1:9. A VIP bound to the dummy kube-ipvs0 becomes local, so IPVS sees it in INPUT, and unlike an iptables-mode ClusterIP it answers ping.',
  source: {
    title: 'IPVS 系列 (hwchiu, ipvs-1/ipvs-2); hwchiu/network-study ipvs/; kubernetes pkg/proxy/ipvs/README.md',
    url: 'https://www.hwchiu.com/docs/2020/ipvs-1',
    spec: 'L7',
  },
  requires: ['ip_vs', 'dummy'],
  topology: {
    nodes: {
      // The director (the node): its uplink address is the VIP of L7a; the real servers sit
      // behind its bridge and route back through it, which NAT mode needs.
      director: { role: 'host', sysctls: { 'net.ipv4.ip_forward': 1, 'net.ipv4.vs.conntrack': 1 } },
      'web-a': { role: 'container', routes: [{ to: 'default', via: '10.244.0.1' }], listen: [80] },
      'web-b': { role: 'container', routes: [{ to: 'default', via: '10.244.0.1' }], listen: [80] },
      client: {
        role: 'outside',
        routes: [
          { to: '203.0.113.0/24', via: VIP },
          { to: '10.96.0.0/12', via: VIP },
        ],
      },
    },
    bridges: { br0: { node: 'director', addresses: ['10.244.0.1/24'] } },
    links: [
      {
        a: { node: 'web-a', name: 'eth0', addresses: [`${BACKEND['web-a']}/24`] },
        b: { node: 'director', name: 'veth-a', bridge: 'br0' },
      },
      {
        a: { node: 'web-b', name: 'eth0', addresses: [`${BACKEND['web-b']}/24`] },
        b: { node: 'director', name: 'veth-b', bridge: 'br0' },
      },
      {
        a: { node: 'director', name: 'eth0', addresses: [`${VIP}/24`] },
        b: { node: 'client', name: 'eth0', addresses: ['172.17.8.1/24'] },
      },
    ],
  },
  steps: [
    {
      title: 'A virtual service with two real servers in NAT mode',
      teaches:
        'ipvsadm -A creates the virtual service (no -s: the scheduler is wlc), -a -m adds real servers in masquerading (NAT) mode. IPVS rules are invisible to iptables; ipvsadm shows them.',
      run: [
        cmd('director', `ipvsadm -A -t ${VIP}:80`),
        cmd('director', `ipvsadm -a -t ${VIP}:80 -r ${BACKEND['web-a']}:80 -m`),
        cmd('director', `ipvsadm -a -t ${VIP}:80 -r ${BACKEND['web-b']}:80 -m`),
      ],
      expect: [
        output('director', 'ipvsadm -Ln').includes(
          `TCP  ${VIP}:80 wlc`,
          `-> ${BACKEND['web-a']}:80`,
          `-> ${BACKEND['web-b']}:80`,
          'Masq    1',
        ),
        output('director', 'iptables-save').excludes(VIP),
      ],
    },
    {
      title: 'Round robin: new connections alternate between the real servers',
      teaches:
        "With rr each new connection goes to the next real server: ten connections split exactly five and five. The servers see the client's own address: NAT mode rewrites only the destination.",
      run: [cmd('director', `ipvsadm -E -t ${VIP}:80 -s rr`)],
      expect: [
        tcp('client', VIP, 80, { connections: 10, ...T }).spreads(
          { 'web-a': 0.5, 'web-b': 0.5 },
          { sigmas: 0, description: 'round robin splits 10 connections exactly 5 : 5' },
        ),
        tcp('client', VIP, 80, T).connects({ clientSeen: '172.17.8.1' }),
        output('director', 'ipvsadm -Ln --stats').includes(`TCP  ${VIP}:80`),
      ],
    },
    {
      title: 'Weights 1:9 with weighted round robin',
      teaches:
        "ipvsadm -e changes a real server's weight; wrr then sends nine connections to web-b for every one to web-a.",
      run: [
        cmd('director', `ipvsadm -E -t ${VIP}:80 -s wrr`),
        cmd('director', `ipvsadm -e -t ${VIP}:80 -r ${BACKEND['web-b']}:80 -m -w 9`),
      ],
      expect: [
        tcp('client', VIP, 80, { connections: 50, ...T }).spreads(
          { 'web-a': 0.1, 'web-b': 0.9 },
          { sigmas: 0, description: 'weights 1:9 split 50 connections 5 : 45' },
        ),
        output('director', 'ipvsadm -Ln').includes(`-> ${BACKEND['web-b']}:80`, 'Masq    9'),
      ],
    },
    {
      title: 'The kube-ipvs0 trick: a dummy interface makes any VIP local',
      teaches:
        'IPVS hooks INPUT, so a VIP must be a local address. kube-proxy binds every ClusterIP to the dummy kube-ipvs0, which it leaves DOWN: the local route is created with the address all the same.',
      run: [
        cmd('director', 'ip link add kube-ipvs0 type dummy'),
        cmd('director', `ip addr add ${FAKE_VIP}/32 dev kube-ipvs0`),
        cmd('director', `ipvsadm -A -t ${FAKE_VIP}:80 -s rr`),
        cmd('director', `ipvsadm -a -t ${FAKE_VIP}:80 -r ${BACKEND['web-a']}:80 -m`),
        cmd('director', `ipvsadm -a -t ${FAKE_VIP}:80 -r ${BACKEND['web-b']}:80 -m`),
      ],
      expect: [
        tcp('client', FAKE_VIP, 80, { connections: 4, ...T }).spreads({ 'web-a': 0.5, 'web-b': 0.5 }, { sigmas: 0 }),
        output('director', 'ip link show kube-ipvs0').includes('state DOWN'),
        output('director', 'ip route show table local').includes(`local ${FAKE_VIP} dev kube-ipvs0`),
      ],
    },
    {
      title: 'Remove the VIP from kube-ipvs0: the virtual service is unreachable',
      teaches:
        'Without the local address the packet is not for this host: the director tries to forward it instead of delivering it to INPUT, has no route, and answers "Network is unreachable". IPVS never sees it.',
      run: [cmd('director', `ip addr del ${FAKE_VIP}/32 dev kube-ipvs0`)],
      expect: [tcp('client', FAKE_VIP, 80, T).unreachable()],
    },
    {
      title: "What kube-proxy's IPVS mode leaves to observe: a ClusterIP",
      teaches:
        'Each ClusterIP:port is one virtual service, every ClusterIP is bound /32 on kube-ipvs0, and the ipset KUBE-CLUSTER-IP lists ip,proto:port members for the few iptables rules. The ClusterIP is a local address, so it answers ping: an iptables-mode ClusterIP does not (lab 08).',
      run: [
        cmd('director', `ip addr add ${CLUSTER_IP}/32 dev kube-ipvs0`),
        cmd('director', `ipvsadm -A -t ${CLUSTER_IP}:80 -s rr`),
        cmd('director', `ipvsadm -a -t ${CLUSTER_IP}:80 -r ${BACKEND['web-a']}:80 -m`),
        cmd('director', `ipvsadm -a -t ${CLUSTER_IP}:80 -r ${BACKEND['web-b']}:80 -m`),
        cmd('director', 'ipset create KUBE-CLUSTER-IP hash:ip,port'),
        cmd('director', `ipset add KUBE-CLUSTER-IP ${CLUSTER_IP},tcp:80`),
      ],
      expect: [
        ping('client', CLUSTER_IP, { wait: 5 }).succeeds(
          'the ClusterIP answers ping: it is a local address of the node',
        ),
        tcp('client', CLUSTER_IP, 80, { connections: 2, ...T }).spreads({ 'web-a': 0.5, 'web-b': 0.5 }, { sigmas: 0 }),
        output('director', 'ip addr show dev kube-ipvs0').includes(`inet ${CLUSTER_IP}/32 scope global kube-ipvs0`),
        output('director', 'ipvsadm -Ln').includes(`TCP  ${CLUSTER_IP}:80 rr`),
        output('director', 'ipset list KUBE-CLUSTER-IP').includes('Type: hash:ip,port', `${CLUSTER_IP},tcp:80`),
      ],
    },
  ],
});

runIfMain(import.meta.url);
