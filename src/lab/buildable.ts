// Topologies that are well formed but that the kernel would refuse, or build into something other
// than what the lab says: found at validation (exit 2, nothing created), not halfway through the
// build. Runs on a lab that passed the field checks of validate.ts, so it may rely on them.
import type { Lab } from './types.ts';
import { ipToNumber, parseCidr, sameSubnet } from '../net/cidr.ts';

interface Assigned {
  node: string;
  iface: string;
  address: string;
  prefix: number;
  where: string;
}

/** Every interface address of the lab, with where it was written. */
function assignedAddresses(lab: Lab): Assigned[] {
  const out: Assigned[] = [];
  const add = (node: string, iface: string, cidrs: string[] | undefined, where: string) => {
    for (const cidr of cidrs ?? []) {
      const parsed = parseCidr(cidr);
      if (parsed) out.push({ node, iface, ...parsed, where });
    }
  };
  for (const [node, spec] of Object.entries(lab.topology.nodes)) {
    for (const [iface, cidrs] of Object.entries(spec.addresses ?? {}))
      add(node, iface, cidrs, `topology.nodes.${node}.addresses.${iface}`);
  }
  for (const [bridge, spec] of Object.entries(lab.topology.bridges ?? {}))
    add(spec.node, bridge, spec.addresses, `topology.bridges.${bridge}.addresses`);
  lab.topology.links.forEach((link, i) => {
    for (const side of ['a', 'b'] as const)
      add(link[side].node, link[side].name, link[side].addresses, `topology.links[${i}].${side}.addresses`);
  });
  return out;
}

/** Why an address cannot be an interface's own address, if it cannot. */
function addressProblem(a: Assigned): string | undefined {
  const n = ipToNumber(a.address);
  const cidr = `${a.address}/${a.prefix}`;
  if (a.prefix === 0)
    return `${cidr}: a /0 prefix makes the whole address space one link (write the subnet's real prefix; a default route is a route)`;
  if (n >>> 24 === 0) return `${cidr}: 0.0.0.0/8 is "this network", not an address an interface can have`;
  if (n >>> 28 === 0xe) return `${cidr}: 224.0.0.0/4 is multicast; an interface address must be unicast`;
  if (n === 0xffffffff) return `${cidr}: 255.255.255.255 is the limited broadcast address`;
  return undefined;
}

export function buildableProblems(lab: Lab): string[] {
  const problems: string[] = [];
  const assigned = assignedAddresses(lab);
  for (const a of assigned) {
    const problem = addressProblem(a);
    if (problem) problems.push(`${a.where}: ${problem}`);
  }
  // One address on two interfaces: a ping "to the other node" would be answered by the sender itself.
  // validate.ts reports the same address and prefix in two places; here: with different prefixes, or
  // twice on one node. (The same /32 on several nodes is a shared service address: allowed.)
  // Grouped by address: a generated topology has thousands of addresses, nearly all distinct.
  const byAddress = new Map<string, Assigned[]>();
  for (const a of assigned) byAddress.set(a.address, [...(byAddress.get(a.address) ?? []), a]);
  for (const group of byAddress.values()) {
    for (let i = 0; i < group.length; i++)
      for (let j = i + 1; j < group.length; j++) {
        const a = group[i]!,
          b = group[j]!;
        if (a.node === b.node) {
          problems.push(
            a.iface === b.iface && a.prefix === b.prefix
              ? `${b.where}: address ${a.address}/${a.prefix} is given twice on ${a.node}:${a.iface}`
              : `topology: address ${a.address} is on ${a.node}:${a.iface} (/${a.prefix}) and again on ${b.iface} (/${b.prefix}): one node holds an address once`,
          );
          continue;
        }
        // Same prefix: validate.ts reports it when the prefix is below 32.
        if (a.prefix === b.prefix) continue;
        problems.push(
          `topology: address ${a.address} is on ${a.node}:${a.iface} (/${a.prefix}) and on ${b.node}:${b.iface} (/${b.prefix}): traffic to it from either node would be answered by the sender itself`,
        );
      }
  }
  for (const [node, spec] of Object.entries(lab.topology.nodes)) {
    (spec.routes ?? []).forEach((route, i) => {
      const where = `topology.nodes.${node}.routes[${i}]`;
      const to = route.to === 'default' ? undefined : parseCidr(route.to);
      // `ip route add 10.0.0.1/24` is refused: "Invalid prefix for given prefix length".
      if (to && to.prefix < 32 && !sameSubnetStart(to.address, to.prefix)) {
        problems.push(
          `${where}: field "to" ${route.to} has host bits set (the network is ${networkOf(to.address, to.prefix)}/${to.prefix})`,
        );
      }
      if (route.via === undefined || (route.extra ?? []).includes('onlink')) return;
      // The kernel needs the gateway on a subnet of the node (of `dev`, when given): "Nexthop has invalid gateway".
      const own = assigned.filter((a) => a.node === node && (route.dev === undefined || a.iface === route.dev));
      if (!own.some((a) => a.prefix < 32 && sameSubnet(a.address, route.via!, a.prefix))) {
        const subnets = own
          .filter((a) => a.prefix < 32)
          .map((a) => `${networkOf(a.address, a.prefix)}/${a.prefix} (${a.iface})`);
        problems.push(
          `${where}: gateway ${route.via} is on no subnet of node ${node}${route.dev ? ` on ${route.dev}` : ''} ` +
            `(${subnets.length > 0 ? `its subnets: ${subnets.join(', ')}` : 'it has no address with a subnet'}); the kernel refuses such a route (add 'onlink' to extra if that is meant)`,
        );
      }
    });
  }
  return problems;
}

function networkOf(address: string, prefix: number): string {
  const n = prefix === 0 ? 0 : ((ipToNumber(address) >>> (32 - prefix)) << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

function sameSubnetStart(address: string, prefix: number): boolean {
  return networkOf(address, prefix) === address;
}
