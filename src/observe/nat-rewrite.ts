// What a NAT rule did to a traced packet, and its conntrack state, from the evidence there is.
//
// Kernel facts this rests on (docs/kernel-facts.md): xtables-monitor prints the header as the packet
// entered a base chain, so a rewrite made in a chain shows only at a later hook of the same
// namespace (DNAT in PREROUTING shows in FORWARD/INPUT); SNAT/MASQUERADE in POSTROUTING, the last
// hook, never shows in the trace. The nat table is consulted for a connection's first packet only;
// conntrack applies the same mapping to the rest, and its entry's reply tuple carries the
// translated addresses. Each finding says which of these it came from.
import type { TraceHop } from './parse-trace.ts';
import type { ConntrackEntry } from './types.ts';

export interface Rewrite {
  /** Index of the NAT rule's hop in the packet's hops (-1: conntrack's mapping, no nat hop). */
  hop: number;
  field: 'src' | 'dst';
  from: string;
  to: string;
  /** The target that rewrote it (MASQUERADE, SNAT, DNAT, REDIRECT, NETMAP), or 'conntrack'. */
  by: string;
  /** Where the new address was seen: `the header at filter FORWARD`, `conntrack's reply tuple`. */
  evidence: string;
}

export interface PacketFacts {
  rewrites: Rewrite[];
  /** NEW, ESTABLISHED, ESTABLISHED (reply), or undefined when nothing tells. */
  ctState?: string;
  /** Why the state is what it says. */
  ctEvidence?: string;
  /** The conntrack entry of the packet's connection, as conntrack -L printed it after the trace. */
  conntrack?: { state?: string; flags: string[]; line: string };
}

const SOURCE_NAT = new Set(['MASQUERADE', 'SNAT']);
const DEST_NAT = new Set(['DNAT', 'REDIRECT']);

export function natTarget(hop: TraceHop): string | undefined {
  const target = hop.rule ? /\s-[jg]\s+(\S+)/.exec(hop.rule)?.[1] : undefined;
  return target && (SOURCE_NAT.has(target) || DEST_NAT.has(target) || target === 'NETMAP') ? target : undefined;
}

function fieldOf(target: string, chain: string): 'src' | 'dst' {
  if (SOURCE_NAT.has(target)) return 'src';
  if (DEST_NAT.has(target)) return 'dst';
  return chain === 'POSTROUTING' || chain === 'INPUT' ? 'src' : 'dst';
}

const at = (address: string | undefined, port: number | undefined) =>
  `${address ?? '?'}${port !== undefined ? `:${port}` : ''}`;
const sideOf = (h: Pick<TraceHop, 'src' | 'dst' | 'sport' | 'dport'>, field: 'src' | 'dst') =>
  field === 'src' ? at(h.src, h.sport) : at(h.dst, h.dport);
const where = (h: TraceHop) => `${h.family && h.family !== 'ip' ? `${h.family} ` : ''}${h.table} ${h.chain}`;

/** The conntrack entry whose original or reply tuple is this packet's header (as it entered the node). */
export function entryOf(
  entered: TraceHop,
  entries: ConntrackEntry[],
): { entry: ConntrackEntry; direction: 'original' | 'reply' } | undefined {
  const fits = (t: ConntrackEntry['orig']) =>
    t.src === entered.src &&
    t.dst === entered.dst &&
    (entered.sport === undefined || t.sport === undefined || t.sport === entered.sport) &&
    (entered.dport === undefined || t.dport === undefined || t.dport === entered.dport);
  const protoOk = (e: ConntrackEntry) => entered.proto === undefined || e.proto === entered.proto;
  // ICMP entries differ by echo id, which the trace does not print: take the newest (listed last) only
  // when every candidate translates the same way.
  for (const direction of ['original', 'reply'] as const) {
    const found = entries.filter((e) => protoOk(e) && fits(direction === 'original' ? e.orig : e.reply));
    if (found.length === 0) continue;
    const mapping = (e: ConntrackEntry) =>
      `${e.reply.src} ${e.reply.dst} ${e.reply.sport ?? ''} ${e.reply.dport ?? ''}`;
    if (new Set(found.map(mapping)).size === 1 || entered.sport !== undefined)
      return { entry: found[found.length - 1]!, direction };
  }
  return undefined;
}

/** The rewrites and conntrack state of one packet. `hops` are its hops on one node (the tracer's
 * first hop, if included, is how it entered); `entries` that node's conntrack table after the trace;
 * `natSeen`: some packet of this trace met a nat chain on the node (so the nat table is in use). */
/** The same packet as another traced node saw it enter: `{ node, hop }` of its first hop there. */
export type ElsewhereLookup = (packet: TraceHop) => { node: string; hop: TraceHop } | undefined;

export function packetFacts(
  hops: TraceHop[],
  entries: ConntrackEntry[] | undefined,
  natSeen: boolean,
  node = 'the node',
  elsewhere?: ElsewhereLookup,
): PacketFacts {
  const facts: PacketFacts = { rewrites: [] };
  const table = `conntrack -L on ${node}`;
  const entered = hops[0];
  if (!entered) return facts;
  const match = entries ? entryOf(entered, entries) : undefined;
  if (match)
    facts.conntrack = {
      ...(match.entry.state ? { state: match.entry.state } : {}),
      flags: match.entry.flags,
      line: match.entry.line,
    };
  const metNat = hops.some((h) => h.table === 'nat' && (h.family ?? 'ip') === 'ip');

  hops.forEach((hop, i) => {
    const target = natTarget(hop);
    if (!target) return;
    const field = fieldOf(target, hop.chain);
    const from = sideOf(hop, field);
    // A later hop of this packet in this namespace whose header shows the other address.
    // (Within one base chain every hop carries the header it entered with: a change is a later hook.)
    const later = hops.slice(i + 1).find((h) => h.src !== undefined && sideOf(h, field) !== from);
    if (later) {
      facts.rewrites.push({
        hop: i,
        field,
        from,
        to: sideOf(later, field),
        by: target,
        evidence: `the header at ${where(later)}`,
      });
      return;
    }
    // The next node on the way: the packet entered it with the rewritten header.
    const there = elsewhere?.(hop);
    // (The side NAT left alone must agree: IP IDs alone can collide across nodes.)
    const kept = field === 'src' ? there?.hop.dst === hop.dst : there?.hop.src === hop.src;
    if (there && kept && there.hop.src !== undefined && sideOf(there.hop, field) !== from) {
      const seen =
        hop[field === 'src' ? 'sport' : 'dport'] === undefined ? there.hop[field]! : sideOf(there.hop, field);
      facts.rewrites.push({
        hop: i,
        field,
        from,
        to: seen,
        by: target,
        evidence: `the header as it entered ${there.node}`,
      });
      return;
    }
    const entry = match?.direction === 'original' ? match.entry : undefined;
    if (entry) {
      const to = field === 'src' ? at(entry.reply.dst, entry.reply.dport) : at(entry.reply.src, entry.reply.sport);
      const fromPort = field === 'src' ? hop.sport : hop.dport;
      // Compare like with like: the trace prints no port for ICMP.
      const toShown = fromPort === undefined ? (field === 'src' ? entry.reply.dst : entry.reply.src) : to;
      if (toShown !== from)
        facts.rewrites.push({ hop: i, field, from, to: toShown, by: target, evidence: `the reply tuple of ${table}` });
      return;
    }
    facts.rewrites.push({
      hop: i,
      field,
      from,
      to: '?',
      by: target,
      evidence: 'not visible: no later hook of this namespace saw the packet and conntrack had no entry for it',
    });
  });

  // Packets after a connection's first meet no nat chain: conntrack maps them as it mapped the first.
  if (!metNat && match) {
    const e = match.entry;
    if (match.direction === 'original') {
      if (e.reply.dst !== e.orig.src)
        facts.rewrites.push({
          hop: -1,
          field: 'src',
          from: at(entered.src, entered.sport),
          to: at(e.reply.dst, entered.sport === undefined ? undefined : e.reply.dport),
          by: 'conntrack',
          evidence: `the connection's mapping, in the reply tuple of ${table}`,
        });
      if (e.reply.src !== e.orig.dst)
        facts.rewrites.push({
          hop: -1,
          field: 'dst',
          from: at(entered.dst, entered.dport),
          to: at(e.reply.src, entered.dport === undefined ? undefined : e.reply.sport),
          by: 'conntrack',
          evidence: `the connection's mapping, in the reply tuple of ${table}`,
        });
    } else {
      if (e.orig.src !== e.reply.dst)
        facts.rewrites.push({
          hop: -1,
          field: 'dst',
          from: at(entered.dst, entered.dport),
          to: at(e.orig.src, entered.dport === undefined ? undefined : e.orig.sport),
          by: 'conntrack',
          evidence: `a reply: the first packet's SNAT undone, from the original tuple of ${table}`,
        });
      if (e.orig.dst !== e.reply.src)
        facts.rewrites.push({
          hop: -1,
          field: 'src',
          from: at(entered.src, entered.sport),
          to: at(e.orig.dst, entered.sport === undefined ? undefined : e.orig.dport),
          by: 'conntrack',
          evidence: `a reply: the first packet's DNAT undone, from the original tuple of ${table}`,
        });
    }
  }

  if (metNat) {
    facts.ctState = 'NEW';
    facts.ctEvidence = "it met the nat chains, which see only a connection's first packet";
  } else if (match && natSeen) {
    facts.ctState = match.direction === 'reply' ? 'ESTABLISHED (reply)' : 'ESTABLISHED';
    facts.ctEvidence = `it skipped the nat chains and belongs to an entry of ${table} (${match.direction} direction)`;
  } else if (match) {
    facts.ctState = match.direction === 'reply' ? 'tracked (reply direction)' : 'tracked';
    facts.ctEvidence = `its connection is in ${table}, read after the trace`;
  }
  return facts;
}

/** `src 10.55.66.2 → 10.0.2.15 by MASQUERADE`. */
export function rewriteWords(r: Rewrite): string {
  return `${r.field} ${r.from} → ${r.to} by ${r.by === 'conntrack' ? 'conntrack' : r.by}`;
}
