// Turns a topology into the commands that build it: one `ip link add` per veth pair (both ends
// created directly inside their namespaces, never in the root one), then one `ip -batch` per
// node. src/resolve/build-plan.ts makes the lab's build plan from it.
import type { Command, NodeSpec, Topology } from '../lab/types.ts';

export interface VethPlan {
  a: { node: string; name: string };
  b: { node: string; name: string };
}

export interface TopologyPlan {
  nodes: string[];
  veths: VethPlan[];
  /** Per node: sysctls, then `ip` commands in dependency order (bridges, masters, addresses, up, routes). */
  perNode: Map<string, { sysctls: string[]; ip: string[][] }>;
  setup: Command[];
  /** TCP responders to start after the build. */
  listeners: { node: string; port: number }[];
}

export function planTopology(topology: Topology): TopologyPlan {
  const nodes = Object.keys(topology.nodes);
  const perNode = new Map(
    nodes.map((n) => [n, { sysctls: [] as string[], ip: [['link', 'set', 'lo', 'up']] as string[][] }]),
  );
  const ipOf = (node: string) => perNode.get(node)!.ip;

  for (const [node, spec] of Object.entries(topology.nodes)) {
    // The labs are IPv4 stories: IPv6 router and neighbour solicitations would only add noise to
    // captures. A node that wants IPv6 sets these sysctls itself.
    const sysctls = { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1, ...spec.sysctls };
    for (const [key, value] of Object.entries(sysctls)) perNode.get(node)!.sysctls.push(`${key}=${value}`);
  }
  for (const [bridge, spec] of Object.entries(topology.bridges ?? {})) {
    ipOf(spec.node).push(['link', 'add', bridge, 'type', 'bridge']);
    if (spec.mac) ipOf(spec.node).push(['link', 'set', bridge, 'address', spec.mac]);
  }
  const veths: VethPlan[] = topology.links.map((l) => ({
    a: { node: l.a.node, name: l.a.name },
    b: { node: l.b.node, name: l.b.name },
  }));
  for (const link of topology.links) {
    for (const end of [link.a, link.b]) {
      if (end.bridge) ipOf(end.node).push(['link', 'set', end.name, 'master', end.bridge]);
    }
  }
  for (const [bridge, spec] of Object.entries(topology.bridges ?? {})) {
    for (const cidr of spec.addresses ?? []) ipOf(spec.node).push(['addr', 'add', cidr, 'dev', bridge]);
    ipOf(spec.node).push(['link', 'set', bridge, 'up']);
  }
  for (const link of topology.links) {
    for (const end of [link.a, link.b]) {
      for (const cidr of end.addresses ?? []) ipOf(end.node).push(['addr', 'add', cidr, 'dev', end.name]);
      if (end.mac) ipOf(end.node).push(['link', 'set', end.name, 'address', end.mac]);
      ipOf(end.node).push(['link', 'set', end.name, 'up']);
    }
  }
  for (const [node, spec] of Object.entries(topology.nodes)) {
    for (const [iface, cidrs] of Object.entries(spec.addresses ?? {})) {
      for (const cidr of cidrs) ipOf(node).push(['addr', 'add', cidr, 'dev', iface]);
    }
    for (const route of spec.routes ?? []) {
      ipOf(node).push([
        'route',
        'add',
        route.to,
        ...(route.via ? ['via', route.via] : []),
        ...(route.dev ? ['dev', route.dev] : []),
        ...(route.extra ?? []),
      ]);
    }
    // Last: taking a link down flushes even permanent entries, so they go in once every link is up.
    for (const n of spec.neighbors ?? [])
      ipOf(node).push(['neigh', 'replace', n.address, 'lladdr', n.mac, 'dev', n.dev, 'nud', 'permanent']);
  }
  const listeners = Object.entries(topology.nodes).flatMap(([node, spec]) =>
    (spec.listen ?? []).map((port) => ({ node, port })),
  );
  return { nodes, veths, perNode, setup: topology.setup ?? [], listeners };
}

/** A node's sysctls when it is a machine's own root namespace (--root-namespace): without the
 * engine's `all.disable_ipv6=1` (unless the lab sets it), which would strip the IPv6 addresses of
 * the machine's interfaces. */
export function rootNodeSysctls(sysctls: string[], spec: NodeSpec | undefined): string[] {
  if (spec?.sysctls?.['net.ipv6.conf.all.disable_ipv6'] !== undefined) return sysctls;
  return sysctls.filter((a) => !a.startsWith('net.ipv6.conf.all.disable_ipv6='));
}
