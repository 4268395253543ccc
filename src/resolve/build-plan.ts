// The one build plan of a lab: the phases that turn its topology into kernel objects, in the order
// the engine executes them. `nflab show`, handouts and exported scripts render this same plan, so
// what a person reads is what runs (test/build-plan.test.ts compares them with the engine's log).
//
//   1 create nodes      a namespace per node (a Docker container per container node with --nodes docker)
//   2 probe features    the kernel features the lab requires, before anything is configured
//   3 create veths      one pair per link, both ends made straight inside their nodes; the first
//                       end under a temporary name (kernels before ~6.6 check that name in the
//                       caller's namespace, where the machine's own eth0 would collide)
//   4 configure nodes   per node: rename the temporary ends, sysctls, then one `ip -batch`
//   5 wait for links    every veth UP and every bridge port forwarding
//   6 setup commands    the lab's starting state (rules a Docker host already has, …)
//   7 responders        TCP responders on the nodes that listen
import type { Command, Lab } from '../lab/types.ts';
import { planTopology, rootNodeSysctls } from '../topology/plan.ts';
import { FEATURE_PROBES, type FeatureProbe } from '../lab/features.ts';
import { responderArgv } from '../observe/parse-tcp-client.ts';

/** How a node is realised in a run. */
export type Realisation = 'netns' | 'docker' | 'root';

export interface PlannedVeth {
  /** Created under a temporary name, renamed in phase 4. */
  a: { node: string; name: string };
  b: { node: string; name: string };
}

export interface NodeConfig {
  node: string;
  /** `ip` words that give the node's temporary veth ends their lab names (first in its batch). */
  renames: { index: number; name: string }[];
  /** `key=value` sysctls, written before the batch. */
  sysctls: string[];
  /** `ip -batch` lines (as argv words): bridges, masters, addresses, up, routes, neighbours. */
  ip: string[][];
}

export interface LinkToWait {
  node: string;
  iface: string;
  /** A bridge port: it must also reach the forwarding state. */
  bridged: boolean;
}

export interface BuildPlan {
  /** Phase 1, in order; the root node (--root-namespace) is the machine itself and is not created. */
  create: { node: string; realisation: Exclude<Realisation, 'root'> }[];
  /** Phase 2: each required feature, probed from `node` (a namespace of the run). */
  probes: { feature: string; node: string; probe: FeatureProbe }[];
  /** Phase 3: the index of a veth names its temporary end. */
  veths: PlannedVeth[];
  /** Phase 4, one entry per node. */
  configure: NodeConfig[];
  /** Phase 5. */
  waitLinks: LinkToWait[];
  /** Phase 6. */
  setup: Command[];
  /** Phase 7. */
  responders: { node: string; port: number; argv: string[] }[];
}

/** The build plan of a lab whose nodes are realised as `realisationOf` says. */
export function buildPlan(lab: Lab, realisationOf: (node: string) => Realisation): BuildPlan {
  const topo = planTopology(lab.topology);
  const nodes = topo.nodes;
  const probeNode = nodes.find((n) => realisationOf(n) === 'netns') ?? nodes[0]!;
  const renames = new Map<string, { index: number; name: string }[]>();
  topo.veths.forEach((v, index) =>
    renames.set(v.a.node, [...(renames.get(v.a.node) ?? []), { index, name: v.a.name }]),
  );
  return {
    create: nodes.flatMap((node) => {
      const r = realisationOf(node);
      return r === 'root' ? [] : [{ node, realisation: r }];
    }),
    probes: (lab.requires ?? []).map((feature) => ({ feature, node: probeNode, probe: FEATURE_PROBES[feature]! })),
    veths: topo.veths,
    configure: nodes.map((node) => {
      const { sysctls, ip } = topo.perNode.get(node)!;
      return {
        node,
        renames: renames.get(node) ?? [],
        sysctls: realisationOf(node) === 'root' ? rootNodeSysctls(sysctls, lab.topology.nodes[node]) : sysctls,
        ip,
      };
    }),
    waitLinks: lab.topology.links.flatMap((link) =>
      [link.a, link.b].map((end) => ({ node: end.node, iface: end.name, bridged: end.bridge !== undefined })),
    ),
    setup: topo.setup,
    responders: topo.listeners.map(({ node, port }) => ({ node, port, argv: responderArgv(node, port) })),
  };
}

/** The `ip` words that rename a node's temporary veth ends, given how temporary names are written. */
export function renameLines(config: NodeConfig, tempName: (index: number) => string): string[][] {
  return config.renames.map(({ index, name }) => ['link', 'set', tempName(index), 'name', name]);
}

/** The temporary name of a veth's first end as a person reads it (the engine's own is unique to its run). */
export const shownTempName = (index: number) => `nfltmp${index}`;
