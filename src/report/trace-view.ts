// A node's trace as a person can read it, however many packets went by: packets that took the same
// path (same hops, rules, verdicts, interfaces, addresses, TCP flags, NAT findings; ports may
// differ) are one path shown once with "×N"; at most `paths` paths and `hops` hops a packet are
// printed and no line is longer than `width`. Each hop shows the header as it entered that hook,
// and each NAT rule what it rewrote and where that was seen (src/observe/nat-rewrite.ts).
import type { TraceHop } from '../observe/parse-trace.ts';
import { TRACER_TABLE_PREFIX } from '../observe/parse-trace.ts';
import type { ConntrackEntry } from '../observe/types.ts';
import { describeHop, hopsByPacket } from '../observe/trace.ts';
import {
  packetFacts,
  rewriteWords,
  type ElsewhereLookup,
  type PacketFacts,
  type Rewrite,
} from '../observe/nat-rewrite.ts';
import { HOOKS, header, hooksOf, interfaces, verdict } from './trace-picture.ts';

export interface TraceLimits {
  /** Distinct paths printed per node. */
  paths: number;
  /** Hops printed per path. */
  hops: number;
  /** Characters per line. */
  width: number;
}

export const DEFAULT_TRACE_LIMITS: TraceLimits = { paths: 12, hops: 24, width: 160 };

/** Lines one node's view can take at most: a blank, its title and a note; per path a title, the
 * hooks, per hop a row, a rule line and a rewrite line, a "more hops" line, two conntrack mapping
 * lines, a ct line and a blank; then the "more paths" line and up to three problems. */
export function maxLinesPerNode(l: TraceLimits): number {
  return 3 + l.paths * (2 + 3 * l.hops + 5) + 1 + 3;
}

export interface TracedPath {
  /** How many packets took it. */
  count: number;
  /** The packets' numbers in the order they were traced (1-based). */
  packets: number[];
  /** The first packet's header as it entered the node, with `*` for ports that differ across packets. */
  entered: string;
  tcpFlags?: string[];
  hooks: string[];
  /** Hops as path checks write them (`nat POSTROUTING: MASQUERADE`). */
  path: string[];
  /** The first packet's hops (the tracer's own left out). */
  hops: TraceHop[];
  rewrites: Rewrite[];
  ctState?: string;
  ctEvidence?: string;
  conntrack?: PacketFacts['conntrack'];
}

const isTracer = (h: TraceHop) => h.table.startsWith(TRACER_TABLE_PREFIX);
const noPorts = (s: string) => s.replace(/:\d+\b/g, ':*');

/** Groups a node's traced packets into paths. `hops` may include the tracer's hops (they say how each
 * packet entered); `conntrack` is the node's table read after the trace, when there is one. */
/** How each packet entered the node: the tracer's IPv4 marking hop (the bridge one, else the first). */
function enteredHop(packet: TraceHop[]): TraceHop | undefined {
  return packet.find((h) => isTracer(h) && h.family === 'ip') ?? packet.find(isTracer) ?? packet[0];
}

/** Finds a packet in the other traced nodes by what NAT keeps: IPv4 ID, length and protocol. */
export function lookupElsewhere(others: { node: string; hops: TraceHop[] }[]): ElsewhereLookup {
  const index = new Map<string, { node: string; hop: TraceHop }>();
  for (const { node, hops } of others) {
    for (const packet of hopsByPacket(hops)) {
      const hop = enteredHop(packet);
      if (hop?.ipId === undefined || hop.len === undefined) continue;
      const key = `${hop.ipId} ${hop.len} ${hop.proto ?? ''}`;
      if (!index.has(key)) index.set(key, { node, hop });
    }
  }
  return (packet) =>
    packet.ipId === undefined || packet.len === undefined
      ? undefined
      : index.get(`${packet.ipId} ${packet.len} ${packet.proto ?? ''}`);
}

export function tracedPaths(
  hops: TraceHop[],
  conntrack?: ConntrackEntry[],
  node?: string,
  elsewhere?: ElsewhereLookup,
): TracedPath[] {
  const packets = hopsByPacket(hops)
    .map((all) => {
      const shown = all.filter((h) => !isTracer(h));
      const entered = enteredHop(all) ?? shown[0];
      return { all, shown, entered };
    })
    .filter((p) => p.entered !== undefined);
  const natSeen = packets.some((p) => p.shown.some((h) => h.table === 'nat'));
  const groups = new Map<
    string,
    TracedPath & { sports: Set<number | undefined>; dports: Set<number | undefined>; rewriteTexts: Set<string>[] }
  >();
  packets.forEach((p, index) => {
    const lead = isTracer(p.entered!) ? 1 : 0;
    const facts = packetFacts(lead ? [p.entered!, ...p.shown] : p.shown, conntrack, natSeen, node, elsewhere);
    const rewrites = facts.rewrites.map((r) => ({ ...r, hop: r.hop < 0 ? -1 : r.hop - lead }));
    const key = JSON.stringify([
      p.entered!.proto,
      p.entered!.src,
      p.entered!.dst,
      p.entered!.tcpFlags,
      p.shown.map((h) => [
        h.family,
        h.table,
        h.chain,
        h.verdict,
        h.policy,
        h.ruleIndex,
        h.rule,
        h.iif,
        h.oif,
        h.physin,
        h.physout,
        h.src,
        h.dst,
      ]),
      rewrites.map((r) => [r.hop, r.field, noPorts(r.from), noPorts(r.to), r.by, r.evidence]),
      facts.ctState,
    ]);
    const known = groups.get(key);
    if (known) {
      known.count++;
      known.packets.push(index + 1);
      known.sports.add(p.entered!.sport);
      known.dports.add(p.entered!.dport);
      rewrites.forEach((r, i) => known.rewriteTexts[i]?.add(`${r.from} ${r.to}`));
      return;
    }
    groups.set(key, {
      count: 1,
      packets: [index + 1],
      entered: header(p.entered!),
      ...(p.entered!.tcpFlags ? { tcpFlags: p.entered!.tcpFlags } : {}),
      hooks: hooksOf(p.shown),
      path: p.shown.map(describeHop),
      hops: p.shown,
      rewrites,
      ...(facts.ctState ? { ctState: facts.ctState, ctEvidence: facts.ctEvidence } : {}),
      ...(facts.conntrack ? { conntrack: facts.conntrack } : {}),
      sports: new Set([p.entered!.sport]),
      dports: new Set([p.entered!.dport]),
      rewriteTexts: rewrites.map((r) => new Set([`${r.from} ${r.to}`])),
    });
  });
  return [...groups.values()].map(({ sports, dports, rewriteTexts, ...path }) => {
    // Ports that differ from packet to packet are shown as `*`.
    let entered = path.entered;
    if (sports.size > 1) entered = entered.replace(/^(\S+ )?([\d.]+):\d+ →/, '$1$2:* →');
    if (dports.size > 1) entered = entered.replace(/→ ([\d.]+):\d+$/, '→ $1:*');
    const rewrites = path.rewrites.map((r, i) =>
      rewriteTexts[i]!.size > 1 ? { ...r, from: noPorts(r.from), to: noPorts(r.to) } : r,
    );
    return { ...path, entered, rewrites };
  });
}

const clip = (line: string, width: number) => (line.length <= width ? line : `${line.slice(0, width - 1)}…`);

/** The lines of one node's paths, bounded by `limits`. */
export function renderPaths(paths: TracedPath[], limits: TraceLimits = DEFAULT_TRACE_LIMITS, indent = '  '): string[] {
  const out: string[] = [];
  paths.slice(0, limits.paths).forEach((p, n) => {
    const times = p.count > 1 ? ` ×${p.count}` : '';
    const flags = p.tcpFlags ? `  [${p.tcpFlags.join(',')}]` : '';
    const ct = p.ctState ? `  ct ${p.ctState}` : '';
    out.push(
      `${indent}path ${n + 1}${times}  ${p.entered}${flags}${ct}${p.count > 1 ? `  (packets ${packetList(p.packets)})` : `  (packet ${p.packets[0]})`}`,
    );
    out.push(
      `${indent}  ${p.hooks.join(' → ') || '(met no iptables chain: this node has no rule on its path, or it was bridged without br_netfilter)'}`,
    );
    const rows = p.hops.slice(0, limits.hops).map((hop) => ({
      chain: HOOKS.has(hop.chain) ? hop.chain : `↳ ${hop.chain}`,
      table: `${hop.family && hop.family !== 'ip' ? `${hop.family} ` : ''}${hop.table}`,
      verdict: verdict(hop),
      where: interfaces(hop),
      packet: header(hop),
      hop,
    }));
    const width = (pick: (r: (typeof rows)[number]) => string) => Math.max(...rows.map((r) => pick(r).length), 0);
    const w = {
      chain: width((r) => r.chain),
      table: width((r) => r.table),
      verdict: width((r) => r.verdict),
      where: width((r) => r.where),
    };
    const pad = `${indent}  ${''.padEnd(w.chain)}  ${''.padEnd(w.table)}  `;
    let previous = '';
    rows.forEach((r, i) => {
      // The header only where it changed: where NAT done earlier (or a bridge → routing hand-over) shows.
      const shown = r.packet !== previous ? r.packet : '';
      previous = r.packet;
      out.push(
        `${indent}  ${r.chain.padEnd(w.chain)}  ${r.table.padEnd(w.table)}  ${r.verdict.padEnd(w.verdict)}  ${r.where.padEnd(w.where)}  ${shown}`.trimEnd(),
      );
      if (r.hop.rule) out.push(`${pad}rule ${r.hop.ruleIndex ?? '?'}: ${r.hop.rule}`);
      for (const rw of p.rewrites.filter((x) => x.hop === i))
        out.push(`${pad}⇒ ${rewriteWords(rw)}  (${rw.to === '?' ? rw.evidence : `seen in ${rw.evidence}`})`);
    });
    if (p.hops.length > limits.hops) out.push(`${pad}… ${p.hops.length - limits.hops} more hops (--json has them all)`);
    for (const rw of p.rewrites.filter((x) => x.hop < 0))
      out.push(`${indent}  ⇒ ${rewriteWords(rw)}  (no nat chain: ${rw.evidence})`);
    if (p.ctState && p.ctEvidence) out.push(`${indent}  ct ${p.ctState}: ${p.ctEvidence}`);
    out.push('');
  });
  if (paths.length > limits.paths) {
    const rest = paths.slice(limits.paths);
    out.push(
      `${indent}… ${rest.length} more paths (${rest.reduce((n, p) => n + p.count, 0)} packets): --json lists every path`,
    );
  }
  return out.map((l) => clip(l, limits.width));
}

/** `1-3, 7, 9-12`, at most a few ranges. */
function packetList(ids: number[]): string {
  const ranges: string[] = [];
  for (let i = 0; i < ids.length;) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j]! + 1) j++;
    ranges.push(i === j ? `${ids[i]}` : `${ids[i]}-${ids[j]}`);
    i = j + 1;
  }
  return ranges.length > 4 ? `${ranges.slice(0, 4).join(', ')}, …` : ranges.join(', ');
}
