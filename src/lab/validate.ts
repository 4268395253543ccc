// Validation before anything is created: every problem is reported with the lab, the step or
// field at fault, and what is wrong. A lab that passes here can be built without surprises.
import { isIPv4 } from 'node:net';
import { LabError } from '../errors.ts';
import type { Check, Command, Lab, LinkEnd, Step, Traffic } from './types.ts';
import { KNOWN_FEATURES } from './features.ts';
import { buildKubeProxyRules } from '../k8s/render-iptables.ts';
import { HOP_FORM } from '../check/path.ts';
import { brief, printable, shapeProblems } from './shape.ts';
import { commandScopeProblems, sysctlKeyProblem } from './scope.ts';

/** Commands a lab may run on a node (DESIGN.md: ip, iptables, sysctl, bridge and the observers). */
export const ALLOWED_COMMANDS = new Set([
  'ip', 'bridge', 'iptables', 'iptables-save', 'iptables-restore', 'ebtables', 'sysctl', 'conntrack',
  'tee', 'cat', 'ss', 'nft', 'ipvsadm', 'ipset',
]);
const TABLES = new Set(['filter', 'nat', 'mangle', 'raw', 'security']);
const NODE_NAME = /^[a-z][a-z0-9_-]{0,11}$/;
const IFACE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;
const LAB_ID = /^[A-Za-z0-9_-]{1,32}$/;
/** xt_recent list names are file names under /proc/net/xt_recent (the kernel allows up to 200 characters). */
const RECENT_LIST = /^[A-Za-z0-9_.-]{1,200}$/;
/** A unicast MAC written as ip prints it: six pairs of hex digits joined by ':'. */
const MAC = /^[0-9a-f][02468ace](:[0-9a-f]{2}){5}$/i;

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
  // Printable: a name with a newline or a bidi override must not break or disguise the message.
  add(where: string, what: string) { this.list.push(printable(`${where}: ${what}`)); }
}

/** Throws LabError (exit 2) naming every problem; returns the lab typed when it is valid. */
export function validateLab(input: unknown, origin = 'lab'): Lab {
  const p = new Problems();
  if (!isObject(input)) throw new LabError(`${origin}: a lab must be an object (export default defineLab({...}))`);
  const lab = input as unknown as Lab;
  const name = `lab ${typeof lab.id === 'string' && lab.id !== '' ? brief(lab.id).slice(1, -1) : '?'}${typeof lab.file === 'string' ? ` (${lab.file})` : ''}`;
  // Types, cycles and control characters first: the checks below rely on them.
  const shape = shapeProblems(lab as unknown as Record<string, unknown>);
  if (shape.length > 0) throw new LabError(`invalid lab:\n  ${shape.map((s) => printable(`${name}: ${s}`)).join('\n  ')}`);

  if (typeof lab.id !== 'string' || !LAB_ID.test(lab.id)) p.add(name, `field "id" must be 1-32 letters, digits, '-' or '_' (got ${show(lab.id)})`);
  for (const field of ['title', 'summary'] as const) {
    if (typeof lab[field] !== 'string' || lab[field].trim() === '') p.add(name, `field "${field}" must be a non-empty string`);
  }
  if (!isObject(lab.source) || typeof lab.source.title !== 'string') p.add(name, 'field "source.title" must name the source article');
  for (const feature of lab.requires ?? []) {
    if (!KNOWN_FEATURES.includes(feature)) p.add(name, `field "requires" names unknown kernel feature ${show(feature)} (known: ${KNOWN_FEATURES.join(', ')})`);
  }

  const ifaces = validateTopology(lab, name, p);
  if (lab.kubeProxy !== undefined) validateKubeProxy(lab, name, p);
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
      else if (sysctlKeyProblem(key)) p.add(where, sysctlKeyProblem(key)!);
      if (!/^[A-Za-z0-9_.\- ]+$/.test(String(value))) p.add(where, `sysctl ${key} has a malformed value ${show(value)}`);
    }
  }
  for (const [bridge, spec] of Object.entries(topo.bridges ?? {})) {
    const where = `${name}: topology.bridges.${bridge}`;
    if (!IFACE_NAME.test(bridge)) p.add(where, ifaceProblem(bridge));
    if (!ifaces.has(spec?.node)) p.add(where, `field "node" names unknown node ${show(spec?.node)}`);
    else addIface(ifaces, spec.node, bridge, where, p);
    if (spec?.mac !== undefined && !MAC.test(String(spec.mac))) p.add(where, `field "mac" must be a unicast MAC like 02:00:00:00:00:01 (got ${show(spec.mac)})`);
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
    (spec?.neighbors ?? []).forEach((n, i) => {
      const where = `${name}: topology.nodes.${node}.neighbors[${i}]`;
      if (!isIPv4(String(n?.address))) p.add(where, `field "address" must be an IPv4 address (got ${show(n?.address)})`);
      if (!MAC.test(String(n?.mac))) p.add(where, `field "mac" must be a unicast MAC like 02:00:00:00:00:01 (got ${show(n?.mac)})`);
      if (!ifaces.get(node)?.has(n?.dev)) p.add(where, `field "dev" names unknown interface ${show(n?.dev)} of node ${node}`);
    });
  }
  (topo.setup ?? []).forEach((command, i) => validateCommand(command, `${name}: topology.setup[${i}]`, lab, p));
  return ifaces;
}

function validateKubeProxy(lab: Lab, name: string, p: Problems) {
  const spec = lab.kubeProxy!;
  const where = `${name}: field "kubeProxy"`;
  if (!isObject(spec) || !Array.isArray(spec.services) || !isObject(spec.options)) { p.add(where, 'must be { node, services: Service[], options: ProxyOptions }'); return; }
  if (!hasNode(lab, spec.node)) p.add(where, `field "node" names unknown node ${show(spec.node)}`);
  try {
    buildKubeProxyRules(spec.services, spec.options);
  } catch (err) {
    p.add(where, String((err as Error)?.message ?? err).split('\n')[0]!);
  }
}

function validateEnd(end: LinkEnd, where: string, lab: Lab, ifaces: Map<string, Set<string>>, p: Problems) {
  if (!ifaces.has(end.node)) { p.add(where, `field "node" names unknown node ${show(end.node)}`); return; }
  if (typeof end.name !== 'string' || !IFACE_NAME.test(end.name)) p.add(where, ifaceProblem(end.name));
  else addIface(ifaces, end.node, end.name, where, p);
  if (end.mac !== undefined && !MAC.test(String(end.mac))) p.add(where, `field "mac" must be a unicast MAC like 02:00:00:00:00:01 (got ${show(end.mac)})`);
  if (end.bridge !== undefined) {
    const bridge = Object.hasOwn(lab.topology.bridges ?? {}, end.bridge) ? lab.topology.bridges![end.bridge] : undefined;
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
  if (!hasNode(lab, command.node)) p.add(where, `command ${show(command.argv.join(' '))} names unknown node ${show(command.node)}`);
  if (!ALLOWED_COMMANDS.has(command.argv[0]!)) p.add(where, `command ${show(command.argv[0])} is not one a lab may run (allowed: ${[...ALLOWED_COMMANDS].join(', ')})`);
  if (command.argv.some((w) => w.includes('\0'))) p.add(where, 'a command word contains a NUL character');
  else if (ALLOWED_COMMANDS.has(command.argv[0]!)) for (const problem of commandScopeProblems(command.argv)) p.add(where, problem);
}

function validateTraffic(t: Traffic, where: string, lab: Lab, p: Problems) {
  if (!isObject(t) || (t.kind !== 'ping' && t.kind !== 'tcp' && t.kind !== 'udp')) { p.add(where, 'traffic is ping(...), tcp(...) or udp(...)'); return; }
  if (!hasNode(lab, t.from)) p.add(where, `${t.kind} from unknown node ${show(t.from)}`);
  // Bounded waits: a run must end (ping -W, the TCP client's timeout).
  const wait = (t as { wait?: unknown }).wait, timeout = (t as { timeout?: unknown }).timeout;
  if (wait !== undefined && !(typeof wait === 'number' && wait > 0 && wait <= 30)) p.add(where, `${t.kind} field "wait" must be a number of seconds in (0, 30] (got ${show(wait)})`);
  if (timeout !== undefined && !(typeof timeout === 'number' && timeout > 0 && timeout <= 60)) p.add(where, `${t.kind} field "timeout" must be a number of seconds in (0, 60] (got ${show(timeout)})`);
  if (!isIPv4(String(t.to))) p.add(where, `${t.kind} destination must be an IPv4 address (got ${show(t.to)})`);
  if (t.kind === 'tcp') {
    if (!isPort(t.port)) p.add(where, `tcp port must be 1-65535 (got ${show(t.port)})`);
    if (t.sourcePort !== undefined && !isPort(t.sourcePort)) p.add(where, `tcp sourcePort must be 1-65535 (got ${show(t.sourcePort)})`);
    if (t.connections !== undefined && !(Number.isInteger(t.connections) && t.connections >= 1 && t.connections <= 10000)) p.add(where, 'tcp connections must be 1-10000');
  }
  if (t.kind === 'ping' && t.count !== undefined && !(Number.isInteger(t.count) && t.count >= 1 && t.count <= 100)) p.add(where, 'ping count must be 1-100');
  if (t.kind === 'udp') {
    if (!isPort(t.port)) p.add(where, `udp port must be 1-65535 (got ${show(t.port)})`);
    if (t.sourcePort !== undefined && !isPort(t.sourcePort)) p.add(where, `udp sourcePort must be 1-65535 (got ${show(t.sourcePort)})`);
    if (t.count !== undefined && !(Number.isInteger(t.count) && t.count >= 1 && t.count <= 100)) p.add(where, 'udp count must be 1-100');
  }
}

/** A path check: its node, the trace filter (addresses, ports, protocol) and the hops, written as describeHop() writes them. */
function validatePath(c: Extract<Check, { kind: 'path' }>, where: string, p: Problems) {
  const f = c.filter;
  if (!isObject(f)) p.add(where, 'path check: field "filter" must be an object { proto?, src?, dst?, sport?, dport? }');
  else {
    if (f.proto !== undefined && !['icmp', 'tcp', 'udp'].includes(f.proto)) p.add(where, `path check: filter.proto must be icmp, tcp or udp (got ${show(f.proto)})`);
    for (const field of ['src', 'dst'] as const) {
      if (f[field] !== undefined && !(isIPv4(String(f[field])) || parseCidr(String(f[field])))) p.add(where, `path check: filter.${field} must be an IPv4 address or CIDR (got ${show(f[field])})`);
    }
    for (const field of ['sport', 'dport'] as const) {
      if (f[field] !== undefined && !isPort(f[field])) p.add(where, `path check: filter.${field} must be 1-65535 (got ${show(f[field])})`);
    }
    if (f.proto === 'icmp' && (f.sport !== undefined || f.dport !== undefined)) p.add(where, 'path check: an icmp filter has no ports');
  }
  const hops = (field: 'through' | 'notThrough') => {
    const list = c[field];
    if (list === undefined) return;
    if (!Array.isArray(list) || list.length === 0) { p.add(where, `path check: field "${field}" must be a non-empty array of hops`); return; }
    for (const hop of list) {
      if (typeof hop !== 'string' || !HOP_FORM.test(hop)) {
        p.add(where, `path check: hop ${show(hop)} in "${field}" is malformed (write "<table> <CHAIN>: <target>", e.g. "nat PREROUTING: DNAT", "filter FORWARD: policy DROP", "bridge filter FORWARD: ACCEPT", or "<table> <CHAIN>" for any hop of the chain)`);
      }
    }
  };
  hops('through');
  hops('notThrough');
  if (c.through === undefined && c.notThrough === undefined && c.rule === undefined) p.add(where, 'path check: give "through", "notThrough" or "rule"');
  if (c.exact && c.through === undefined) p.add(where, 'path check: "exact" needs "through"');
  if (c.packet !== undefined && c.packet !== 'first' && c.packet !== 'each' && !(Number.isInteger(c.packet) && (c.packet as number) >= 1)) {
    p.add(where, `path check: field "packet" must be 'first', 'each' or a packet number from 1 (got ${show(c.packet)})`);
  }
  if (c.rule !== undefined && (typeof c.rule !== 'string' || c.rule.trim() === '')) p.add(where, 'path check: field "rule" must be rule words, e.g. "-j DNAT --to-destination 10.55.66.2:8000"');
}

function validateCheck(c: Check, where: string, lab: Lab, ifaces: Map<string, Set<string>>, p: Problems) {
  if (!isObject(c) || typeof c.kind !== 'string') { p.add(where, 'a check is made with ping(), tcp(), packets(), rule(), rules(), policy(), conntrack(), recent(), path() or output()'); return; }
  const knownNode = (node: string | undefined, field = 'node') => {
    if (typeof node !== 'string' || !hasNode(lab, node)) { p.add(where, `${c.kind} check: field "${field}" names unknown node ${show(node)}`); return false; }
    return true;
  };
  if (c.sandboxOnly !== undefined && (typeof c.sandboxOnly !== 'string' || c.sandboxOnly.trim() === '')) p.add(where, `${c.kind} check: field "sandboxOnly" must be the reason, a non-empty string (got ${show(c.sandboxOnly)})`);
  switch (c.kind) {
    case 'ping': case 'tcp':
      validateTraffic(c.traffic, where, lab, p);
      if (c.kind === 'tcp' && c.answeredBy !== undefined) knownNode(c.answeredBy, 'answeredBy');
      break;
    case 'packets':
      if (knownNode(c.node) && !ifaces.get(c.node)?.has(c.iface)) p.add(where, `packets check: node ${c.node} has no interface ${show(c.iface)} (it has ${[...ifaces.get(c.node)!].join(', ')})`);
      if (!isObject(c.match)) p.add(where, `packets check: field "match" must be an object, e.g. { proto: 'icmp' } or {} for every packet (got ${show(c.match)})`);
      for (const f of ['src', 'dst'] as const) if (c.match?.[f] !== undefined && !isIPv4(c.match[f]!)) p.add(where, `packets check: match.${f} must be an IPv4 address`);
      validateCount(c.count, where, p);
      break;
    case 'counter':
      knownNode(c.node);
      if (!TABLES.has(c.table)) p.add(where, `counter check: unknown table ${show(c.table)}`);
      if (typeof c.chain !== 'string' || c.chain === '') p.add(where, 'counter check: chain is missing');
      if (c.packets === undefined && c.bytes === undefined && c.answersOf === undefined) p.add(where, 'counter check: expect packets or bytes');
      if (c.packets !== undefined) validateCount(c.packets, `${where}: counter check: field "packets"`, p);
      if (c.bytes !== undefined) validateCount(c.bytes, `${where}: counter check: field "bytes"`, p);
      if (c.rules !== undefined) {
        if (c.rule !== undefined) p.add(where, 'counter check: give "rule" or "rules", not both');
        if (!Array.isArray(c.rules) || c.rules.length === 0 || !c.rules.every((r) => typeof r === 'string' && r.trim() !== '')) p.add(where, 'counter check: field "rules" must be a non-empty array of rule words');
      }
      if (c.answersOf !== undefined) {
        if (c.rule === undefined && c.rules === undefined) p.add(where, 'counter check: field "answersOf" needs a rule (a chain policy does not count connections)');
        if (c.packets !== undefined) p.add(where, 'counter check: give "packets" or "answersOf", not both');
        knownNode(c.answersOf?.answeredBy, 'answersOf.answeredBy');
        validateTcpTraffic(c.answersOf?.traffic, `${where}: answersOf.traffic`, lab, p);
      }
      break;
    case 'distribution': {
      validateTcpTraffic(c.traffic, where, lab, p);
      if (!isObject(c.shares) || Object.keys(c.shares).length === 0) { p.add(where, 'distribution check: field "shares" must map backend nodes to shares, e.g. { p1: 1/3, p2: 1/3, p3: 1/3 }'); break; }
      let total = 0;
      for (const [node, share] of Object.entries(c.shares)) {
        knownNode(node, `shares.${node}`);
        if (typeof share !== 'number' || !(share >= 0 && share <= 1)) p.add(where, `distribution check: field "shares.${node}" must be a number within [0, 1] (got ${show(share)})`);
        else total += share;
      }
      if (Math.abs(total - 1) > 1e-6) p.add(where, `distribution check: the shares must sum to 1 (they sum to ${total})`);
      // 0 asks for the exact shares: right for deterministic schedulers such as IPVS rr and wrr.
      if (c.sigmas !== undefined && !(typeof c.sigmas === 'number' && Number.isFinite(c.sigmas) && c.sigmas >= 0)) p.add(where, `distribution check: field "sigmas" must be a number >= 0 (got ${show(c.sigmas)})`);
      break;
    }
    case 'sticky':
      validateTcpTraffic(c.traffic, where, lab, p);
      if ((c.traffic?.connections ?? 1) < 2) p.add(where, 'sticky check: the traffic needs at least 2 connections (traffic.connections)');
      if (c.among !== undefined) {
        if (!Array.isArray(c.among) || c.among.length === 0) p.add(where, 'sticky check: field "among" must be a non-empty array of nodes');
        else c.among.forEach((node, i) => knownNode(node, `among[${i}]`));
      }
      break;
    case 'recent': {
      knownNode(c.node);
      const perBackend = isObject(c.lists);
      const names = typeof c.lists === 'string' ? [c.lists] : perBackend ? Object.values(c.lists) : [];
      if (names.length === 0) p.add(where, 'recent check: field "lists" must be a list name or map backend nodes to list names');
      for (const list of names) if (typeof list !== 'string' || !RECENT_LIST.test(list)) p.add(where, `recent check: list name ${show(list)} is invalid (1-200 letters, digits, '_', '.', '-')`);
      if (perBackend) for (const node of Object.keys(c.lists)) knownNode(node, `lists.${node}`);
      if (!['has', 'lacks', 'empty'].includes(c.expect)) p.add(where, `recent check: field "expect" must be has, lacks or empty (got ${show(c.expect)})`);
      if (c.expect !== 'empty' && !isIPv4(String(c.address))) p.add(where, `recent check: field "address" must be an IPv4 address (got ${show(c.address)})`);
      if (c.chosenBy !== undefined) {
        if (!perBackend || c.expect !== 'has') p.add(where, 'recent check: field "chosenBy" needs per-backend lists and expect "has"');
        validateTcpTraffic(c.chosenBy, `${where}: chosenBy`, lab, p);
      } else if (perBackend && c.expect === 'has') {
        p.add(where, 'recent check: with per-backend lists, "has" needs "chosenBy" (the traffic whose backend names the list)');
      }
      break;
    }
    case 'all-pairs': case 'all-reach': {
      const sources = c.kind === 'all-pairs' ? (isObject(c.nodes) ? Object.keys(c.nodes) : []) : (Array.isArray(c.from) ? c.from : []);
      if (sources.length < (c.kind === 'all-pairs' ? 2 : 1)) p.add(where, c.kind === 'all-pairs' ? `all-pairs check: field "nodes" must map at least 2 nodes to their addresses` : 'all-reach check: field "from" must list at least one node');
      sources.forEach((node) => knownNode(node, c.kind === 'all-pairs' ? `nodes.${node}` : 'from'));
      const targets = c.kind === 'all-pairs' ? Object.values(c.nodes ?? {}) : [c.to];
      for (const address of targets) if (!isIPv4(String(address))) p.add(where, `${c.kind} check: ${show(address)} is not an IPv4 address`);
      if (!['succeeds', 'fails'].includes(c.expect)) p.add(where, `${c.kind} check: field "expect" must be succeeds or fails (got ${show(c.expect)})`);
      if (c.parallel !== undefined && !(Number.isInteger(c.parallel) && c.parallel >= 1 && c.parallel <= 256)) p.add(where, `${c.kind} check: field "parallel" must be 1-256`);
      if (c.wait !== undefined && !(typeof c.wait === 'number' && c.wait > 0 && c.wait <= 30)) p.add(where, `${c.kind} check: field "wait" must be a number of seconds in (0, 30]`);
      break;
    }
    case 'conntrack':
      knownNode(c.node);
      validateCount(c.count, where, p);
      if (c.mark !== undefined && !(Number.isInteger(c.mark) && c.mark >= 0 && c.mark <= 0xffffffff)) p.add(where, `conntrack check: field "mark" must be a 32-bit number (got ${show(c.mark)})`);
      break;
    case 'path':
      knownNode(c.node);
      validatePath(c, where, p);
      break;
    case 'output':
      validateCommand(c.command, where, lab, p);
      break;
    default:
      p.add(where, `unknown check kind ${show((c as { kind: unknown }).kind)}`);
  }
}

function validateTcpTraffic(t: unknown, where: string, lab: Lab, p: Problems) {
  if (!isObject(t) || t.kind !== 'tcp') { p.add(where, 'needs tcp(...) traffic'); return; }
  validateTraffic(t as unknown as Traffic, where, lab, p);
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
  return brief(v);
}
/** A node of the lab: an own key of topology.nodes, so "constructor" or "toString" name nothing. */
function hasNode(lab: Lab, node: unknown): boolean {
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
