// Validation before anything is created: every problem is reported with the lab, the step or
// field at fault, and what is wrong. A lab that passes here can be built without surprises.
import { isIPv4 } from 'node:net';
import { LabError } from '../errors.ts';
import type { Check, Command, Lab, LinkEnd, Step, Traffic } from './types.ts';
import { KNOWN_FEATURES } from './features.ts';

/** Commands a lab may run on a node (DESIGN.md: ip, iptables, sysctl, bridge and the observers). */
export const ALLOWED_COMMANDS = new Set([
  'ip', 'bridge', 'iptables', 'iptables-save', 'iptables-restore', 'ebtables', 'sysctl', 'conntrack',
  'tee', 'cat', 'ss', 'nft', 'ipvsadm', 'ipset',
]);
const TABLES = new Set(['filter', 'nat', 'mangle', 'raw', 'security']);
const NODE_NAME = /^[a-z][a-z0-9_-]{0,11}$/;
const IFACE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;
const LAB_ID = /^[A-Za-z0-9_-]{1,32}$/;

export function parseCidr(text: string): { address: string; prefix: number } | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (!m || !isIPv4(m[1]!) || Number(m[2]) > 32) return undefined;
  return { address: m[1]!, prefix: Number(m[2]) };
}

export function ipToNumber(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

export function sameSubnet(a: string, b: string, prefix: number): boolean {
  if (prefix === 0) return true;
  const shift = 32 - prefix;
  return Math.floor(ipToNumber(a) / 2 ** shift) === Math.floor(ipToNumber(b) / 2 ** shift);
}

class Problems {
  readonly list: string[] = [];
  add(where: string, what: string) { this.list.push(`${where}: ${what}`); }
}

/** Throws LabError (exit 2) naming every problem; returns the lab typed when it is valid. */
export function validateLab(input: unknown, origin = 'lab'): Lab {
  const p = new Problems();
  if (!isObject(input)) throw new LabError(`${origin}: a lab must be an object (export default defineLab({...}))`);
  const lab = input as unknown as Lab;
  const name = `lab ${typeof lab.id === 'string' ? lab.id : '?'}${lab.file ? ` (${lab.file})` : ''}`;

  if (typeof lab.id !== 'string' || !LAB_ID.test(lab.id)) p.add(name, `field "id" must be 1-32 letters, digits, '-' or '_' (got ${show(lab.id)})`);
  for (const field of ['title', 'summary'] as const) {
    if (typeof lab[field] !== 'string' || lab[field].trim() === '') p.add(name, `field "${field}" must be a non-empty string`);
  }
  if (!isObject(lab.source) || typeof lab.source.title !== 'string') p.add(name, 'field "source.title" must name the source article');
  for (const feature of lab.requires ?? []) {
    if (!KNOWN_FEATURES.includes(feature)) p.add(name, `field "requires" names unknown kernel feature ${show(feature)} (known: ${KNOWN_FEATURES.join(', ')})`);
  }

  const ifaces = validateTopology(lab, name, p);
  if (!Array.isArray(lab.steps) || lab.steps.length === 0) p.add(name, 'field "steps" must be a non-empty array');
  else lab.steps.forEach((step, i) => validateStep(step, `${name}: step ${i + 1}${typeof step?.title === 'string' ? ` "${step.title}"` : ''}`, lab, ifaces, p));

  if (p.list.length > 0) throw new LabError(`invalid lab:\n  ${p.list.join('\n  ')}`);
  return lab;
}

function validateTopology(lab: Lab, name: string, p: Problems): Map<string, Set<string>> {
  const ifaces = new Map<string, Set<string>>();
  const topo = lab.topology;
  if (!isObject(topo) || !isObject(topo.nodes)) {
    p.add(name, 'field "topology.nodes" must be an object of nodes');
    return ifaces;
  }
  for (const [node, spec] of Object.entries(topo.nodes)) {
    const where = `${name}: topology.nodes.${node}`;
    if (!NODE_NAME.test(node)) p.add(where, 'node names are 1-12 characters: a lowercase letter, then lowercase letters, digits, "-" or "_"');
    if (!isObject(spec) || !['host', 'container', 'outside'].includes(spec.role)) p.add(where, `field "role" must be host, container or outside (got ${show(spec?.role)})`);
    if (spec?.driver !== undefined && !['netns', 'docker'].includes(spec.driver)) p.add(where, `field "driver" must be netns or docker (got ${show(spec.driver)})`);
    ifaces.set(node, new Set(['lo', ...Object.keys(spec?.addresses ?? {})]));
    for (const port of spec?.listen ?? []) if (!isPort(port)) p.add(where, `field "listen" has an invalid port ${show(port)}`);
    for (const [key, value] of Object.entries(spec?.sysctls ?? {})) {
      if (!/^[a-z0-9_.\-/]+$/i.test(key)) p.add(where, `sysctl name ${show(key)} is malformed`);
      if (!/^[A-Za-z0-9_.\- ]+$/.test(String(value))) p.add(where, `sysctl ${key} has a malformed value ${show(value)}`);
    }
  }
  for (const [bridge, spec] of Object.entries(topo.bridges ?? {})) {
    const where = `${name}: topology.bridges.${bridge}`;
    if (!IFACE_NAME.test(bridge)) p.add(where, ifaceProblem(bridge));
    if (!ifaces.has(spec?.node)) p.add(where, `field "node" names unknown node ${show(spec?.node)}`);
    else addIface(ifaces, spec.node, bridge, where, p);
  }
  if (!Array.isArray(topo.links)) p.add(name, 'field "topology.links" must be an array');
  (topo.links ?? []).forEach((link, i) => {
    for (const side of ['a', 'b'] as const) {
      const end = link?.[side];
      const where = `${name}: topology.links[${i}].${side}`;
      if (!isObject(end)) { p.add(where, 'must be { node, name }'); continue; }
      validateEnd(end, where, lab, ifaces, p);
    }
  });
  // Node-level addresses, routes: after every interface is known.
  const assigned: { node: string; iface: string; address: string; prefix: number }[] = [];
  const collect = (node: string, iface: string, cidrs: unknown, where: string) => {
    if (cidrs === undefined) return;
    if (!Array.isArray(cidrs)) { p.add(where, 'addresses must be an array of CIDRs'); return; }
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
  for (const [bridge, spec] of Object.entries(topo.bridges ?? {})) collect(spec?.node, bridge, spec?.addresses, `${name}: topology.bridges.${bridge}.addresses`);
  (topo.links ?? []).forEach((link, i) => {
    for (const side of ['a', 'b'] as const) {
      const end = link?.[side];
      if (isObject(end)) collect(end.node, end.name, end.addresses, `${name}: topology.links[${i}].${side}.addresses`);
    }
  });
  for (let i = 0; i < assigned.length; i++) {
    for (let j = i + 1; j < assigned.length; j++) {
      const a = assigned[i]!, b = assigned[j]!;
      if (a.address === b.address && a.prefix === b.prefix && a.prefix < 32) {
        p.add(`${name}: topology`, `duplicate address ${a.address}/${a.prefix} on ${a.node}:${a.iface} and ${b.node}:${b.iface} (same subnet)`);
      }
    }
  }
  for (const [node, spec] of Object.entries(topo.nodes)) {
    (spec?.routes ?? []).forEach((route, i) => {
      const where = `${name}: topology.nodes.${node}.routes[${i}]`;
      if (route.to !== 'default' && !parseCidr(route.to)) p.add(where, `field "to" must be "default" or a CIDR (got ${show(route.to)})`);
      if (route.via !== undefined && !isIPv4(route.via)) p.add(where, `field "via" must be an IPv4 address (got ${show(route.via)})`);
      if (route.dev !== undefined && !ifaces.get(node)?.has(route.dev)) p.add(where, `field "dev" names unknown interface ${show(route.dev)} of node ${node}`);
      if (route.via === undefined && route.dev === undefined) p.add(where, 'a route needs "via" or "dev"');
    });
  }
  (topo.setup ?? []).forEach((command, i) => validateCommand(command, `${name}: topology.setup[${i}]`, lab, p));
  return ifaces;
}

function validateEnd(end: LinkEnd, where: string, lab: Lab, ifaces: Map<string, Set<string>>, p: Problems) {
  if (!ifaces.has(end.node)) { p.add(where, `field "node" names unknown node ${show(end.node)}`); return; }
  if (typeof end.name !== 'string' || !IFACE_NAME.test(end.name)) p.add(where, ifaceProblem(end.name));
  else addIface(ifaces, end.node, end.name, where, p);
  if (end.bridge !== undefined) {
    const bridge = lab.topology.bridges?.[end.bridge];
    if (!bridge) p.add(where, `field "bridge" names unknown bridge ${show(end.bridge)}`);
    else if (bridge.node !== end.node) p.add(where, `bridge ${end.bridge} is on node ${bridge.node}, not on ${end.node}`);
  }
}

function addIface(ifaces: Map<string, Set<string>>, node: string, iface: string, where: string, p: Problems) {
  const set = ifaces.get(node)!;
  if (set.has(iface) && iface !== 'lo') p.add(where, `interface ${iface} is defined twice on node ${node}`);
  set.add(iface);
}

function validateStep(step: Step, where: string, lab: Lab, ifaces: Map<string, Set<string>>, p: Problems) {
  if (!isObject(step)) { p.add(where, 'a step must be an object'); return; }
  if (typeof step.title !== 'string' || step.title.trim() === '') p.add(where, 'field "title" must be a non-empty string');
  (step.run ?? []).forEach((c, i) => validateCommand(c, `${where}: run[${i}]`, lab, p));
  (step.send ?? []).forEach((t, i) => validateTraffic(t, `${where}: send[${i}]`, lab, p));
  if (!Array.isArray(step.expect ?? [])) p.add(where, 'field "expect" must be an array of checks');
  (step.expect ?? []).forEach((c, i) => validateCheck(c, `${where}: expect[${i}]`, lab, ifaces, p));
}

export function validateCommand(command: Command, where: string, lab: Lab, p: Problems) {
  if (!isObject(command) || !Array.isArray(command.argv) || command.argv.length === 0 || !command.argv.every((w) => typeof w === 'string')) {
    p.add(where, 'a command is { node, argv: string[] } with at least one word');
    return;
  }
  if (!(command.node in (lab.topology?.nodes ?? {}))) p.add(where, `command ${show(command.argv.join(' '))} names unknown node ${show(command.node)}`);
  if (!ALLOWED_COMMANDS.has(command.argv[0]!)) p.add(where, `command ${show(command.argv[0])} is not one a lab may run (allowed: ${[...ALLOWED_COMMANDS].join(', ')})`);
  if (command.argv.some((w) => w.includes('\0'))) p.add(where, 'a command word contains a NUL character');
}

function validateTraffic(t: Traffic, where: string, lab: Lab, p: Problems) {
  if (!isObject(t) || (t.kind !== 'ping' && t.kind !== 'tcp')) { p.add(where, 'traffic is ping(...) or tcp(...)'); return; }
  if (!(t.from in lab.topology.nodes)) p.add(where, `${t.kind} from unknown node ${show(t.from)}`);
  if (!isIPv4(String(t.to))) p.add(where, `${t.kind} destination must be an IPv4 address (got ${show(t.to)})`);
  if (t.kind === 'tcp') {
    if (!isPort(t.port)) p.add(where, `tcp port must be 1-65535 (got ${show(t.port)})`);
    if (t.sourcePort !== undefined && !isPort(t.sourcePort)) p.add(where, `tcp sourcePort must be 1-65535 (got ${show(t.sourcePort)})`);
    if (t.connections !== undefined && !(Number.isInteger(t.connections) && t.connections >= 1 && t.connections <= 10000)) p.add(where, 'tcp connections must be 1-10000');
  }
  if (t.kind === 'ping' && t.count !== undefined && !(Number.isInteger(t.count) && t.count >= 1 && t.count <= 100)) p.add(where, 'ping count must be 1-100');
}

function validateCheck(c: Check, where: string, lab: Lab, ifaces: Map<string, Set<string>>, p: Problems) {
  if (!isObject(c) || typeof c.kind !== 'string') { p.add(where, 'a check is made with ping(), tcp(), packets(), rule(), policy(), conntrack() or output()'); return; }
  const knownNode = (node: string, field = 'node') => {
    if (!(node in lab.topology.nodes)) { p.add(where, `${c.kind} check: field "${field}" names unknown node ${show(node)}`); return false; }
    return true;
  };
  switch (c.kind) {
    case 'ping': case 'tcp':
      validateTraffic(c.traffic, where, lab, p);
      if (c.kind === 'tcp' && c.answeredBy !== undefined) knownNode(c.answeredBy, 'answeredBy');
      break;
    case 'packets':
      if (knownNode(c.node) && !ifaces.get(c.node)?.has(c.iface)) p.add(where, `packets check: node ${c.node} has no interface ${show(c.iface)} (it has ${[...ifaces.get(c.node)!].join(', ')})`);
      for (const f of ['src', 'dst'] as const) if (c.match?.[f] !== undefined && !isIPv4(c.match[f]!)) p.add(where, `packets check: match.${f} must be an IPv4 address`);
      validateCount(c.count, where, p);
      break;
    case 'counter':
      knownNode(c.node);
      if (!TABLES.has(c.table)) p.add(where, `counter check: unknown table ${show(c.table)}`);
      if (typeof c.chain !== 'string' || c.chain === '') p.add(where, 'counter check: chain is missing');
      if (c.packets === undefined && c.bytes === undefined) p.add(where, 'counter check: expect packets or bytes');
      break;
    case 'conntrack':
      knownNode(c.node);
      validateCount(c.count, where, p);
      break;
    case 'output':
      validateCommand(c.command, where, lab, p);
      break;
    default:
      p.add(where, `unknown check kind ${show((c as { kind: unknown }).kind)}`);
  }
}

function validateCount(count: unknown, where: string, p: Problems) {
  const ok = (n: unknown) => n === undefined || (typeof n === 'number' && Number.isFinite(n) && n >= 0);
  if (typeof count === 'number' ? !ok(count) : !(isObject(count) && ok((count as { min?: unknown }).min) && ok((count as { max?: unknown }).max))) {
    p.add(where, `count must be a number or { min, max } (got ${show(count)})`);
  }
}

function ifaceProblem(name: unknown): string {
  return `interface name ${show(name)} is invalid: 1-15 characters of letters, digits, '.', '-' or '_' (the kernel's limit is 15)`;
}
const isPort = (n: unknown) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;
function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
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
