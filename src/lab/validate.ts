// Validation of a lab's structure before anything is created: its fields, topology, commands and
// traffic. Every problem names the lab, the step or field at fault, and what is wrong. Checks are
// validated by their kinds (src/check/validate-check.ts); src/resolve/validate-lab.ts puts the
// two together.
import { isIPv4 } from 'node:net';
import { LabError } from '../errors.ts';
import type { Command, Lab, LinkEnd, Question, Step, Traffic } from './types.ts';
import { KNOWN_FEATURES } from './features.ts';
import { brief, printable } from './shape.ts';
import { commandScopeProblems, sysctlKeyProblem } from './scope.ts';
import { parseCidr } from '../net/cidr.ts';

/** Commands a lab may run on a node (docs/design.md#commands: ip, iptables, sysctl, bridge and the observers). */
export const ALLOWED_COMMANDS = new Set([
  'ip',
  'bridge',
  'iptables',
  'iptables-save',
  'iptables-restore',
  'ebtables',
  'sysctl',
  'conntrack',
  'tee',
  'cat',
  'ss',
  'nft',
  'ipvsadm',
  'ipset',
]);
const NODE_NAME = /^[a-z][a-z0-9_-]{0,11}$/;
const IFACE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;
const LAB_ID = /^[A-Za-z0-9_-]{1,32}$/;
/** A unicast MAC written as ip prints it: six pairs of hex digits joined by ':'. */
const MAC = /^[0-9a-f][02468ace](:[0-9a-f]{2}){5}$/i;

export class Problems {
  readonly list: string[] = [];
  // Printable: a name with a newline or a bidi override must not break or disguise the message.
  add(where: string, what: string) {
    this.list.push(printable(`${where}: ${what}`));
  }
}

/** The lab's own fields: id, title, summary, source, required features. */
export function validateLabFields(lab: Lab, name: string, p: Problems): void {
  if (typeof lab.id !== 'string' || !LAB_ID.test(lab.id))
    p.add(name, `field "id" must be 1-32 letters, digits, '-' or '_' (got ${show(lab.id)})`);
  for (const field of ['title', 'summary'] as const) {
    if (typeof lab[field] !== 'string' || lab[field].trim() === '')
      p.add(name, `field "${field}" must be a non-empty string`);
  }
  if (!isObject(lab.source) || typeof lab.source.title !== 'string')
    p.add(name, 'field "source.title" must name the source article');
  for (const feature of lab.requires ?? []) {
    if (!KNOWN_FEATURES.includes(feature))
      p.add(
        name,
        `field "requires" names unknown kernel feature ${show(feature)} (known: ${KNOWN_FEATURES.join(', ')})`,
      );
  }
}

/** How a lab is named in its problems: `lab 02 (labs/02-….ts)`. */
export function labName(lab: Lab): string {
  return `lab ${typeof lab.id === 'string' && lab.id !== '' ? brief(lab.id).slice(1, -1) : '?'}${typeof lab.file === 'string' ? ` (${lab.file})` : ''}`;
}

/** Throws LabError (exit 2) naming every problem, if there is any. */
export function throwProblems(p: Problems): void {
  if (p.list.length > 0) throw new LabError(`invalid lab:\n  ${p.list.join('\n  ')}`);
}

export function validateTopology(lab: Lab, name: string, p: Problems): Map<string, Set<string>> {
  const ifaces = new Map<string, Set<string>>();
  const topo = lab.topology;
  if (!isObject(topo) || !isObject(topo.nodes)) {
    p.add(name, 'field "topology.nodes" must be an object of nodes');
    return ifaces;
  }
  for (const [node, spec] of Object.entries(topo.nodes)) {
    const where = `${name}: topology.nodes.${node}`;
    if (!NODE_NAME.test(node))
      p.add(where, 'node names are 1-12 characters: a lowercase letter, then lowercase letters, digits, "-" or "_"');
    if (!isObject(spec) || !['host', 'container', 'outside'].includes(spec.role))
      p.add(where, `field "role" must be host, container or outside (got ${show(spec?.role)})`);
    if (spec?.driver !== undefined && !['netns', 'docker'].includes(spec.driver))
      p.add(where, `field "driver" must be netns or docker (got ${show(spec.driver)})`);
    ifaces.set(node, new Set(['lo', ...Object.keys(spec?.addresses ?? {})]));
    for (const port of spec?.listen ?? [])
      if (!isPort(port)) p.add(where, `field "listen" has an invalid port ${show(port)}`);
    for (const [key, value] of Object.entries(spec?.sysctls ?? {})) {
      if (!/^[a-z0-9_.\-/]+$/i.test(key)) p.add(where, `sysctl name ${show(key)} is malformed`);
      else if (sysctlKeyProblem(key)) p.add(where, sysctlKeyProblem(key)!);
      if (!/^[A-Za-z0-9_.\- ]+$/.test(String(value)))
        p.add(where, `sysctl ${key} has a malformed value ${show(value)}`);
    }
  }
  for (const [bridge, spec] of Object.entries(topo.bridges ?? {})) {
    const where = `${name}: topology.bridges.${bridge}`;
    if (!IFACE_NAME.test(bridge)) p.add(where, ifaceProblem(bridge));
    if (!ifaces.has(spec?.node)) p.add(where, `field "node" names unknown node ${show(spec?.node)}`);
    else addIface(ifaces, spec.node, bridge, where, p);
    if (spec?.mac !== undefined && !MAC.test(String(spec.mac)))
      p.add(where, `field "mac" must be a unicast MAC like 02:00:00:00:00:01 (got ${show(spec.mac)})`);
  }
  if (!Array.isArray(topo.links)) p.add(name, 'field "topology.links" must be an array');
  (topo.links ?? []).forEach((link, i) => {
    for (const side of ['a', 'b'] as const) {
      const end = link?.[side];
      const where = `${name}: topology.links[${i}].${side}`;
      if (!isObject(end)) {
        p.add(where, 'must be { node, name }');
        continue;
      }
      validateEnd(end, where, lab, ifaces, p);
    }
  });
  // Node-level addresses, routes: after every interface is known.
  const assigned: { node: string; iface: string; address: string; prefix: number }[] = [];
  const collect = (node: string, iface: string, cidrs: unknown, where: string) => {
    if (cidrs === undefined) return;
    if (!Array.isArray(cidrs)) {
      p.add(where, 'addresses must be an array of CIDRs');
      return;
    }
    for (const cidr of cidrs) {
      const parsed = typeof cidr === 'string' ? parseCidr(cidr) : undefined;
      if (!parsed) p.add(where, `malformed address ${show(cidr)} (expected a.b.c.d/len)`);
      else assigned.push({ node, iface, ...parsed });
    }
  };
  for (const [node, spec] of Object.entries(topo.nodes)) {
    for (const [iface, cidrs] of Object.entries(spec?.addresses ?? {})) {
      if (!IFACE_NAME.test(iface)) p.add(`${name}: topology.nodes.${node}.addresses`, ifaceProblem(iface));
      collect(node, iface, cidrs, `${name}: topology.nodes.${node}.addresses.${iface}`);
    }
  }
  for (const [bridge, spec] of Object.entries(topo.bridges ?? {}))
    collect(spec?.node, bridge, spec?.addresses, `${name}: topology.bridges.${bridge}.addresses`);
  (topo.links ?? []).forEach((link, i) => {
    for (const side of ['a', 'b'] as const) {
      const end = link?.[side];
      if (isObject(end)) collect(end.node, end.name, end.addresses, `${name}: topology.links[${i}].${side}.addresses`);
    }
  });
  for (let i = 0; i < assigned.length; i++) {
    for (let j = i + 1; j < assigned.length; j++) {
      const a = assigned[i]!,
        b = assigned[j]!;
      if (a.address === b.address && a.prefix === b.prefix && a.prefix < 32) {
        p.add(
          `${name}: topology`,
          `duplicate address ${a.address}/${a.prefix} on ${a.node}:${a.iface} and ${b.node}:${b.iface} (same subnet)`,
        );
      }
    }
  }
  for (const [node, spec] of Object.entries(topo.nodes)) {
    (spec?.routes ?? []).forEach((route, i) => {
      const where = `${name}: topology.nodes.${node}.routes[${i}]`;
      if (route.to !== 'default' && !parseCidr(route.to))
        p.add(where, `field "to" must be "default" or a CIDR (got ${show(route.to)})`);
      if (route.via !== undefined && !isIPv4(route.via))
        p.add(where, `field "via" must be an IPv4 address (got ${show(route.via)})`);
      if (route.dev !== undefined && !ifaces.get(node)?.has(route.dev))
        p.add(where, `field "dev" names unknown interface ${show(route.dev)} of node ${node}`);
      if (route.via === undefined && route.dev === undefined) p.add(where, 'a route needs "via" or "dev"');
    });
    (spec?.neighbors ?? []).forEach((n, i) => {
      const where = `${name}: topology.nodes.${node}.neighbors[${i}]`;
      if (!isIPv4(String(n?.address)))
        p.add(where, `field "address" must be an IPv4 address (got ${show(n?.address)})`);
      if (!MAC.test(String(n?.mac)))
        p.add(where, `field "mac" must be a unicast MAC like 02:00:00:00:00:01 (got ${show(n?.mac)})`);
      if (!ifaces.get(node)?.has(n?.dev))
        p.add(where, `field "dev" names unknown interface ${show(n?.dev)} of node ${node}`);
    });
  }
  (topo.setup ?? []).forEach((command, i) => validateCommand(command, `${name}: topology.setup[${i}]`, lab, p));
  return ifaces;
}

function validateEnd(end: LinkEnd, where: string, lab: Lab, ifaces: Map<string, Set<string>>, p: Problems) {
  if (!ifaces.has(end.node)) {
    p.add(where, `field "node" names unknown node ${show(end.node)}`);
    return;
  }
  if (typeof end.name !== 'string' || !IFACE_NAME.test(end.name)) p.add(where, ifaceProblem(end.name));
  else addIface(ifaces, end.node, end.name, where, p);
  if (end.mac !== undefined && !MAC.test(String(end.mac)))
    p.add(where, `field "mac" must be a unicast MAC like 02:00:00:00:00:01 (got ${show(end.mac)})`);
  if (end.bridge !== undefined) {
    const bridge = Object.hasOwn(lab.topology.bridges ?? {}, end.bridge)
      ? lab.topology.bridges![end.bridge]
      : undefined;
    if (!bridge) p.add(where, `field "bridge" names unknown bridge ${show(end.bridge)}`);
    else if (bridge.node !== end.node)
      p.add(where, `bridge ${end.bridge} is on node ${bridge.node}, not on ${end.node}`);
  }
}

function addIface(ifaces: Map<string, Set<string>>, node: string, iface: string, where: string, p: Problems) {
  const set = ifaces.get(node)!;
  if (set.has(iface) && iface !== 'lo') p.add(where, `interface ${iface} is defined twice on node ${node}`);
  set.add(iface);
}

/** A step: its title, commands and traffic; its checks through `validateCheck`. */
export function validateStep(
  step: Step,
  where: string,
  lab: Lab,
  p: Problems,
  validateCheck: (check: unknown, where: string) => void,
) {
  if (!isObject(step)) {
    p.add(where, 'a step must be an object');
    return;
  }
  if (typeof step.title !== 'string' || step.title.trim() === '')
    p.add(where, 'field "title" must be a non-empty string');
  (step.questions ?? []).forEach((q, i) => validateQuestion(q, `${where}: questions[${i}]`, step, p));
  (step.run ?? []).forEach((c, i) => validateCommand(c, `${where}: run[${i}]`, lab, p));
  (step.send ?? []).forEach((t, i) => validateTraffic(t, `${where}: send[${i}]`, lab, p));
  if (!Array.isArray(step.expect ?? [])) p.add(where, 'field "expect" must be an array of checks');
  else (step.expect ?? []).forEach((c, i) => validateCheck(c, `${where}: expect[${i}]`));
}

function validateQuestion(q: Question, where: string, step: Step, p: Problems) {
  if (!isObject(q)) {
    p.add(where, 'a question is { ask, answer, observedIn? }');
    return;
  }
  if (typeof q.ask !== 'string' || q.ask.trim() === '') p.add(where, 'field "ask" must be a non-empty string');
  if (typeof q.answer !== 'string' || q.answer.trim() === '') p.add(where, 'field "answer" must be a non-empty string');
  const checks = Array.isArray(step.expect) ? step.expect.length : 0;
  if (q.observedIn !== undefined && !(Number.isInteger(q.observedIn) && q.observedIn >= 0 && q.observedIn < checks)) {
    p.add(
      where,
      `field "observedIn" must be the index of one of the step's ${checks} checks (0..${checks - 1}), got ${show(q.observedIn)}`,
    );
  }
}

export function validateCommand(command: Command, where: string, lab: Lab, p: Problems) {
  if (
    !isObject(command) ||
    !Array.isArray(command.argv) ||
    command.argv.length === 0 ||
    !command.argv.every((w) => typeof w === 'string')
  ) {
    p.add(where, 'a command is { node, argv: string[] } with at least one word');
    return;
  }
  if (!hasNode(lab, command.node))
    p.add(where, `command ${show(command.argv.join(' '))} names unknown node ${show(command.node)}`);
  if (!ALLOWED_COMMANDS.has(command.argv[0]!))
    p.add(
      where,
      `command ${show(command.argv[0])} is not one a lab may run (allowed: ${[...ALLOWED_COMMANDS].join(', ')})`,
    );
  if (command.argv.some((w) => w.includes('\0'))) p.add(where, 'a command word contains a NUL character');
  else if (ALLOWED_COMMANDS.has(command.argv[0]!))
    for (const problem of commandScopeProblems(command.argv)) p.add(where, problem);
}

export function validateTraffic(t: Traffic, where: string, lab: Lab, p: Problems) {
  if (!isObject(t) || (t.kind !== 'ping' && t.kind !== 'tcp' && t.kind !== 'udp')) {
    p.add(where, 'traffic is ping(...), tcp(...) or udp(...)');
    return;
  }
  if (!hasNode(lab, t.from)) p.add(where, `${t.kind} from unknown node ${show(t.from)}`);
  // Bounded waits: a run must end (ping -W, the TCP client's timeout).
  const wait = (t as { wait?: unknown }).wait,
    timeout = (t as { timeout?: unknown }).timeout;
  if (wait !== undefined && !(typeof wait === 'number' && wait > 0 && wait <= 30))
    p.add(where, `${t.kind} field "wait" must be a number of seconds in (0, 30] (got ${show(wait)})`);
  if (timeout !== undefined && !(typeof timeout === 'number' && timeout > 0 && timeout <= 60))
    p.add(where, `${t.kind} field "timeout" must be a number of seconds in (0, 60] (got ${show(timeout)})`);
  if (!isIPv4(String(t.to))) p.add(where, `${t.kind} destination must be an IPv4 address (got ${show(t.to)})`);
  if (t.kind === 'tcp') {
    if (!isPort(t.port)) p.add(where, `tcp port must be 1-65535 (got ${show(t.port)})`);
    if (t.sourcePort !== undefined && !isPort(t.sourcePort))
      p.add(where, `tcp sourcePort must be 1-65535 (got ${show(t.sourcePort)})`);
    if (
      t.connections !== undefined &&
      !(Number.isInteger(t.connections) && t.connections >= 1 && t.connections <= 10000)
    )
      p.add(where, 'tcp connections must be 1-10000');
  }
  if (t.kind === 'ping' && t.count !== undefined && !(Number.isInteger(t.count) && t.count >= 1 && t.count <= 100))
    p.add(where, 'ping count must be 1-100');
  if (t.kind === 'udp') {
    if (!isPort(t.port)) p.add(where, `udp port must be 1-65535 (got ${show(t.port)})`);
    if (t.sourcePort !== undefined && !isPort(t.sourcePort))
      p.add(where, `udp sourcePort must be 1-65535 (got ${show(t.sourcePort)})`);
    if (t.count !== undefined && !(Number.isInteger(t.count) && t.count >= 1 && t.count <= 100))
      p.add(where, 'udp count must be 1-100');
  }
}

export function validateTcpTraffic(t: unknown, where: string, lab: Lab, p: Problems) {
  if (!isObject(t) || t.kind !== 'tcp') {
    p.add(where, 'needs tcp(...) traffic');
    return;
  }
  validateTraffic(t as unknown as Traffic, where, lab, p);
}

export function validateCount(count: unknown, where: string, p: Problems) {
  const ok = (n: unknown) => n === undefined || (typeof n === 'number' && Number.isFinite(n) && n >= 0);
  if (
    typeof count === 'number'
      ? !ok(count)
      : !(isObject(count) && ok((count as { min?: unknown }).min) && ok((count as { max?: unknown }).max))
  ) {
    p.add(where, `count must be a number or { min, max } (got ${show(count)})`);
  }
}

function ifaceProblem(name: unknown): string {
  return `interface name ${show(name)} is invalid: 1-15 characters of letters, digits, '.', '-' or '_' (the kernel's limit is 15)`;
}
const isPort = (n: unknown) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;
export function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
export function show(v: unknown): string {
  return brief(v);
}
/** A node of the lab: an own key of topology.nodes, so "constructor" or "toString" name nothing. */
export function hasNode(lab: Lab, node: unknown): boolean {
  const nodes = lab.topology?.nodes;
  return typeof node === 'string' && isObject(nodes) && Object.hasOwn(nodes, node);
}

/** Labs loaded together must have distinct ids. */
export function checkDistinctIds(labs: Lab[]): void {
  const seen = new Map<string, string>();
  for (const lab of labs) {
    const other = seen.get(lab.id);
    if (other !== undefined) throw new LabError(`duplicate lab id "${lab.id}": ${other} and ${lab.file ?? '?'}`);
    seen.set(lab.id, lab.file ?? '?');
  }
}
