// kube-proxy's nftables mode (GA in v1.33): one `ip kube-proxy` table with base chains on the
// hooks, verdict maps keyed by address . protocol . port (service-ips, service-nodeports,
// no-endpoint-*, firewall-ips), a service-/external-/endpoint- chain per service port and endpoint
// named "<8 chars of base32(sha256(name))>-<name>", `numgen random mod n vmap` instead of a rule per
// endpoint, and sets with timeouts for ClientIP affinity. Written as the `nft -f` transaction
// kube-proxy sends; checked against TestOverallNFTablesRules (test/fixtures/kube-proxy/nftables).
// Unlike iptables mode, traffic to a ClusterIP on a port it does not serve is rejected
// (cluster-ips-check), and traffic to an unallocated address of the service CIDR is dropped.

import { createHash } from 'node:crypto';
import { base32 } from './hash.ts';
import type { ProxyOptions, ResolvedService } from './service.ts';

export interface NftOptions {
  clusterCIDR?: string;
  /** The service CIDRs kube-proxy knows (cluster-ips-check drops unallocated addresses in them). */
  serviceCIDRs?: string[];
  /** The node addresses that accept NodePort traffic (nodeport-ips). */
  nodeIPs?: string[];
  /** masquerade fully-random (kube-proxy's default in nftables mode). */
  fullyRandom?: boolean;
}

function hashed(prefix: string, name: string): string {
  return `${prefix}-${base32(createHash('sha256').update(name).digest()).slice(0, 8)}-${name}`;
}

/** "ns/name/tcp/port" (the port's name; empty when unnamed). */
function baseName(s: ResolvedService): string {
  return `${s.namespace}/${s.name}/${s.protocol}/${s.portName}`;
}

function servicePortName(s: ResolvedService): string {
  return s.portName === '' ? `${s.namespace}/${s.name}` : `${s.namespace}/${s.name}:${s.portName}`;
}

const T = 'ip kube-proxy';

function baseRules(o: NftOptions): string[] {
  const lines = [
    `add table ${T} { comment "rules for kube-proxy" ; }`,
    '',
    `add set ${T} cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }`,
    `add set ${T} nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }`,
    '',
    `add map ${T} firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }`,
    `add map ${T} no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }`,
    `add map ${T} no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }`,
    `add map ${T} service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }`,
    `add map ${T} service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }`,
    '',
    `add chain ${T} cluster-ips-check`,
    `add chain ${T} filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }`,
    `add chain ${T} filter-output-pre-dnat { type filter hook output priority -110 ; }`,
    `add chain ${T} filter-forward { type filter hook forward priority 0 ; }`,
    `add chain ${T} filter-input { type filter hook input priority 0 ; }`,
    `add chain ${T} filter-output { type filter hook output priority 0 ; }`,
    `add chain ${T} firewall-check`,
    `add chain ${T} mark-for-masquerade`,
    `add chain ${T} masquerading`,
    `add chain ${T} nat-output { type nat hook output priority -100 ; }`,
    `add chain ${T} nat-postrouting { type nat hook postrouting priority 100 ; }`,
    `add chain ${T} nat-prerouting { type nat hook prerouting priority -100 ; }`,
    `add chain ${T} nodeport-endpoints-check`,
    `add chain ${T} reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }`,
    `add chain ${T} services`,
    `add chain ${T} service-endpoints-check`,
    '',
    `add rule ${T} cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"`,
  ];
  if (o.serviceCIDRs?.length)
    lines.push(
      `add rule ${T} cluster-ips-check ip daddr { ${o.serviceCIDRs.join(', ')} } drop comment "Drop traffic to unallocated ClusterIPs"`,
    );
  lines.push(
    `add rule ${T} filter-prerouting-pre-dnat ct state new jump firewall-check`,
    `add rule ${T} filter-forward ct state new jump service-endpoints-check`,
    `add rule ${T} filter-forward ct state new jump cluster-ips-check`,
    `add rule ${T} filter-input ct state new jump nodeport-endpoints-check`,
    `add rule ${T} filter-input ct state new jump service-endpoints-check`,
    `add rule ${T} filter-output ct state new jump service-endpoints-check`,
    `add rule ${T} filter-output-pre-dnat ct state new jump firewall-check`,
    `add rule ${T} filter-output ct state new jump cluster-ips-check`,
    `add rule ${T} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips`,
    `add rule ${T} mark-for-masquerade mark set mark or 0x4000`,
    `add rule ${T} masquerading mark and 0x4000 == 0 return`,
    `add rule ${T} masquerading mark set mark xor 0x4000`,
    `add rule ${T} masquerading masquerade${o.fullyRandom === false ? '' : ' fully-random'}`,
    `add rule ${T} nat-output jump services`,
    `add rule ${T} nat-postrouting jump masquerading`,
    `add rule ${T} nat-prerouting jump services`,
    `add rule ${T} nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports`,
    `add rule ${T} reject-chain reject`,
    `add rule ${T} services ip daddr . meta l4proto . th dport vmap @service-ips`,
    `add rule ${T} services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports`,
    '',
  );
  if (o.nodeIPs?.length) lines.push(`add element ${T} nodeport-ips { ${o.nodeIPs.join(', ')} }`);
  lines.push(`add rule ${T} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services`);
  return lines;
}

function sortedEndpoints(s: ResolvedService): ResolvedService['endpoints'] {
  return [...s.endpoints].sort((a, b) => (a.hostPort < b.hostPort ? -1 : a.hostPort > b.hostPort ? 1 : 0));
}

/** The chains and sets kube-proxy names for one service port, and for each endpoint ("ip:port"). */
export function nftNames(s: ResolvedService) {
  const base = baseName(s);
  const epBase = (ep: { ip: string; port: number }) => `${base}__${ep.ip}/${ep.port}`;
  return {
    service: hashed('service', base),
    local: hashed('local', base),
    external: hashed('external', base),
    firewall: hashed('firewall', base),
    endpoint: (ep: { ip: string; port: number }) => hashed('endpoint', epBase(ep)),
    affinity: (ep: { ip: string; port: number }) => hashed('affinity', epBase(ep)),
  };
}

function serviceRules(s: ResolvedService, o: NftOptions): string[] {
  const out: string[] = [`# ${s.namespace}/${s.name}`];
  const names = nftNames(s);
  const name = servicePortName(s);
  const proto = s.protocol;
  const svcChain = names.service;
  const localChain = names.local;
  const extChain = names.external;
  const fwChain = names.firewall;
  const all = sortedEndpoints(s);
  const local = all.filter((e) => e.local);
  const externalEps = s.externalLocal ? local : all;
  const hasEndpoints = all.length > 0;
  const hasExternal = externalEps.length > 0;
  const usesLocal = s.externalLocal && local.length > 0;
  const externallyReachable = s.nodePort !== undefined || s.externalIPs.length > 0 || s.loadBalancerIPs.length > 0;
  const usesExt = hasEndpoints && externallyReachable;
  const externalPolicy = s.externalLocal ? localChain : svcChain;
  const externalTraffic = usesExt ? extChain : externalPolicy;
  const usesFW = hasEndpoints && s.loadBalancerIPs.length > 0 && s.sourceRanges.length > 0;
  const epChain = names.endpoint;
  const affinitySet = names.affinity;

  const toEndpoints = (chain: string, eps: ResolvedService['endpoints']) => {
    out.push(`add chain ${T} ${chain}`);
    if (chain === svcChain && o.clusterCIDR !== undefined)
      out.push(`add rule ${T} ${chain} ip daddr ${s.clusterIP} ip saddr != ${o.clusterCIDR} jump mark-for-masquerade`);
    if (s.affinitySeconds !== undefined)
      for (const ep of eps) out.push(`add rule ${T} ${chain} ip saddr @${affinitySet(ep)} goto ${epChain(ep)}`);
    out.push(
      `add rule ${T} ${chain} numgen random mod ${eps.length} vmap { ${eps.map((ep, i) => `${i} : goto ${epChain(ep)}`).join(' , ')} }`,
    );
  };

  if (s.affinitySeconds !== undefined) {
    for (const ep of all)
      out.push(
        `add set ${T} ${affinitySet(ep)} { type ipv4_addr ; flags dynamic,timeout ; timeout ${s.affinitySeconds}s ; }`,
      );
  }
  if (hasEndpoints) toEndpoints(svcChain, all);
  if (usesLocal) toEndpoints(localChain, local);
  if (usesExt) {
    out.push(`add chain ${T} ${extChain}`);
    if (!s.externalLocal) {
      out.push(`add rule ${T} ${extChain} jump mark-for-masquerade`);
    } else {
      if (o.clusterCIDR !== undefined)
        out.push(
          `add rule ${T} ${extChain} ip saddr ${o.clusterCIDR} goto ${svcChain} comment "short-circuit pod traffic"`,
        );
      out.push(
        `add rule ${T} ${extChain} fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"`,
      );
      out.push(`add rule ${T} ${extChain} fib saddr type local goto ${svcChain} comment "short-circuit local traffic"`);
    }
    if (hasExternal) out.push(`add rule ${T} ${extChain} goto ${externalPolicy}`);
  }
  for (const ep of all) {
    const chain = epChain(ep);
    out.push(`add chain ${T} ${chain}`);
    out.push(`add rule ${T} ${chain} ip saddr ${ep.ip} jump mark-for-masquerade`);
    if (s.affinitySeconds !== undefined) out.push(`add rule ${T} ${chain} update @${affinitySet(ep)} { ip saddr }`);
    out.push(`add rule ${T} ${chain} meta l4proto ${proto} dnat to ${ep.ip}:${ep.port}`);
  }
  if (usesFW) {
    out.push(`add chain ${T} ${fwChain}`);
    out.push(`add rule ${T} ${fwChain} ip saddr != { ${s.sourceRanges.join(', ')} } drop`);
  }

  const key = (ip: string) => `${ip} . ${proto} . ${s.port}`;
  const noEndpoints = hasEndpoints ? 'drop' : 'goto reject-chain';
  out.push(`add element ${T} cluster-ips { ${s.clusterIP} }`);
  if (hasEndpoints) out.push(`add element ${T} service-ips { ${key(s.clusterIP)} : goto ${svcChain} }`);
  else out.push(`add element ${T} no-endpoint-services { ${key(s.clusterIP)} comment "${name}" : goto reject-chain }`);
  for (const ip of [...s.externalIPs, ...s.loadBalancerIPs]) {
    if (hasEndpoints) out.push(`add element ${T} service-ips { ${key(ip)} : goto ${externalTraffic} }`);
    if (!hasExternal)
      out.push(`add element ${T} no-endpoint-services { ${key(ip)} comment "${name}" : ${noEndpoints} }`);
  }
  if (s.nodePort !== undefined) {
    if (hasEndpoints)
      out.push(`add element ${T} service-nodeports { ${proto} . ${s.nodePort} : goto ${externalTraffic} }`);
    if (!hasExternal)
      out.push(
        `add element ${T} no-endpoint-nodeports { ${proto} . ${s.nodePort} comment "${name}" : ${noEndpoints} }`,
      );
  }
  if (usesFW)
    for (const ip of s.loadBalancerIPs) out.push(`add element ${T} firewall-ips { ${key(ip)} : goto ${fwChain} }`);
  out.push('');
  return out;
}

/** The `nft -f` transaction kube-proxy writes for these services (table created, not flushed). */
export function renderNftables(resolved: ResolvedService[], opts: ProxyOptions & NftOptions): string {
  return [...baseRules(opts), '', ...resolved.flatMap((s) => serviceRules(s, opts))].join('\n') + '\n';
}

/** The words that begin a rule's statements (after its matches): a `counter` goes before them. */
const STATEMENT = /^(jump|goto|dnat|snat|masquerade|reject|drop|accept|return|update|add|numgen)$/;

/**
 * The transaction with a `counter` statement in every rule that has a verdict or NAT statement,
 * placed after the rule's matches, so it counts the packets the rule acted on. kube-proxy writes no
 * counters; the labs add them to read what each rule did (`nft list table ip kube-proxy` shows
 * `counter packets N bytes M`). Rules that only look a packet up in a verdict map (`vmap @…`) get
 * none: there every packet evaluated would count, matched or not.
 */
export function withCounters(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      const m = /^(add rule \S+ \S+ \S+ )(.*)$/.exec(line);
      if (!m) return line;
      const words = m[2]!.split(' ');
      const at = words.findIndex((w, i) => STATEMENT.test(w) || (w === 'mark' && words[i + 1] === 'set'));
      if (at < 0) return line;
      return m[1] + [...words.slice(0, at), 'counter', ...words.slice(at)].join(' ');
    })
    .join('\n');
}

/** For comparison with kube-proxy's test: its transaction lines, blank lines and `#` comments left out, sorted. */
export function nftLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .sort();
}

const KIND_ORDER = ['add table', 'add set', 'add map', 'add chain', 'add rule', 'add element'];

/**
 * The transaction in an order `nft -f` accepts: kube-proxy's test lists rules that jump to chains
 * declared further down (its fake does not care); the kernel needs each chain and set first.
 * Tables, then sets and maps, chains, rules and elements, each kind in the order written.
 */
export function nftLoadable(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const rank = (l: string) => KIND_ORDER.findIndex((k) => l.startsWith(`${k} `));
  return (
    lines
      .map((l, i) => ({ l, i, r: rank(l) }))
      .sort((a, b) => a.r - b.r || a.i - b.i)
      .map((x) => x.l)
      .join('\n') + '\n'
  );
}
