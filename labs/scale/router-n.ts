#!/usr/bin/env -S node --import tsx
// Scale lab: N hosts behind a router that masquerades them (src/topology/generate.ts
// hostsBehindRouter). Not part of `nflab run --all`; run it by path with the size in NFLAB_N:
//   NFLAB_N=200 nflab run labs/scale/router-n.ts
import { allReach, conntrack, defineLab, hostsBehindRouter, packets, rule, runIfMain } from 'nflab';
import { scaleSize } from './size.ts';

const { n } = scaleSize();
const g = hostsBehindRouter(n);

export default defineLab({
  id: 'scale-router',
  title: `${n} hosts behind a masquerading router`,
  summary: `A generated topology: ${n} hosts (h1 … h${n}) on bridge br0 of the router (gateway ${g.gateway}), which masquerades them out of eth0 to ${g.outside}. Every host reaches the gateway, then the outside, each as a flow of its own.`,
  source: { title: 'nflab scale benchmark (issue: speed and scale against shell scripts and Mininet)' },
  topology: g.topology,
  steps: [
    {
      title: 'Every host reaches the gateway',
      expect: [allReach(g.members, g.gateway).succeeds()],
    },
    {
      title: 'Every host reaches the outside through MASQUERADE',
      teaches:
        "Each host's ping is one flow: MASQUERADE counts its first packet, conntrack keeps one entry per host, and the outside only ever sees the router's address.",
      expect: [
        allReach(g.members, g.outside).succeeds(),
        rule('router', 'nat POSTROUTING', g.masquerade).delta(
          { packets: n },
          `MASQUERADE counts ${n} flows, one per host`,
        ),
        conntrack('router', { proto: 'icmp', reply: { src: g.outside, dst: '10.0.2.15' } }).count(
          n,
          `conntrack holds ${n} translated flows`,
        ),
        packets('ext', 'eth0', { proto: 'icmp', icmp: 'echo-request', dst: g.outside }).count(
          n,
          `the outside receives ${n} echo requests`,
        ),
        packets('ext', 'eth0', { proto: 'icmp', icmp: 'echo-request', src: g.addresses[g.members[0]!] }).none(
          "none carries a host's own address",
        ),
      ],
    },
  ],
});

runIfMain(import.meta.url);
