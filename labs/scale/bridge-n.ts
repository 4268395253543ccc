#!/usr/bin/env -S node --import tsx
// Scale lab: N containers on one bridge (src/topology/generate.ts bridgeOfContainers). Not part of
// `nflab run --all`; run it by path with the size in NFLAB_N:
//   NFLAB_N=200 nflab run labs/scale/bridge-n.ts
import { allPairs, allReach, bridgeOfContainers, defineLab, output, runIfMain } from 'nflab';
import { scaleSize } from './size.ts';

const { n, pairs } = scaleSize();
// All pairs need every container to pin every other one (see StaticNeighbors).
const g = bridgeOfContainers(n, { staticNeighbors: pairs ? 'all' : 'gateway' });

export default defineLab({
  id: 'scale-bridge',
  title: `${n} containers on one bridge`,
  summary: `A generated topology: ${n} containers (c1 … c${n}) on bridge br0 of the host, which holds the gateway ${g.gateway}. Every container reaches the gateway${pairs ? ', and every pair of containers reaches each other' : ''}.`,
  source: { title: 'nflab scale benchmark (issue: speed and scale against shell scripts and Mininet)' },
  topology: g.topology,
  steps: [
    {
      title: 'Every container reaches the gateway',
      teaches: 'One bridge forwards between all its ports; the gateway answers each container on its own port.',
      expect: [
        allReach(g.members, g.gateway).succeeds(),
        output('host', 'bridge link show master br0').includes(`v${n}@`, 'master br0 state forwarding'),
        output('host', 'bridge link show master br0').excludes(
          'state disabled',
          'state blocking',
          'state listening',
          'state learning',
        ),
      ],
    },
    ...(pairs
      ? [
          {
            title: 'Every pair of containers reaches each other',
            expect: [allPairs(g.addresses).succeed()],
          },
        ]
      : []),
  ],
});

runIfMain(import.meta.url);
