// Comparisons several check kinds share: counts against expectations, packets and conntrack tuples
// against what a lab asks for, rule counters across a step, tallies.
import type { CountExpectation, PacketMatch, TupleMatch } from '../lab/types.ts';
import type { ConntrackTuple, PacketRecord, SavedRuleset, TcpOutcome } from '../observe/types.ts';
import { ruleSpecMatches } from '../observe/parse-iptables-save.ts';
import { nftRuleMatches } from '../observe/parse-nft-list.ts';

/** An nftables table is named with its family (`ip kube-proxy`); iptables tables are one word. */
export function isNftTable(table: string): boolean {
  return /^(ip|ip6|inet|arp|bridge|netdev) \S+$/.test(table);
}

export function countOk(n: number, expected: CountExpectation): boolean {
  if (typeof expected === 'number') return n === expected;
  return (expected.min === undefined || n >= expected.min) && (expected.max === undefined || n <= expected.max);
}

export function tally(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

export function packetMatches(p: PacketRecord, m: PacketMatch): boolean {
  return (
    (!m.proto || p.proto === m.proto) &&
    (!m.src || p.src === m.src) &&
    (!m.dst || p.dst === m.dst) &&
    (m.sport === undefined || p.sport === m.sport) &&
    (m.dport === undefined || p.dport === m.dport) &&
    (!m.icmp || p.icmp === m.icmp) &&
    (!m.flags || p.flags === m.flags)
  );
}

function portOk(value: number | undefined, expected: number | { min?: number; max?: number } | undefined): boolean {
  if (expected === undefined) return true;
  if (value === undefined) return false;
  return countOk(value, expected);
}

export function tupleMatches(t: ConntrackTuple, m: TupleMatch | undefined): boolean {
  if (!m) return true;
  return (
    (!m.src || t.src === m.src) && (!m.dst || t.dst === m.dst) && portOk(t.sport, m.sport) && portOk(t.dport, m.dport)
  );
}

export type CounterDelta = { packets: number; bytes: number; what: string } | { problem: string };

/** Packet and byte delta of one rule (found by the lab's words) or of a chain policy across the step. */
export function counterDelta(
  table: string,
  chain: string,
  words: string | undefined,
  before: SavedRuleset,
  after: SavedRuleset,
): CounterDelta {
  if (words === undefined) {
    const a = after.chains.find((c) => c.table === table && c.chain === chain);
    if (!a) return { problem: `no chain ${table} ${chain}` };
    const b = before.chains.find((c) => c.table === table && c.chain === chain);
    return { packets: a.packets - (b?.packets ?? 0), bytes: a.bytes - (b?.bytes ?? 0), what: `${chain} ${a.policy}` };
  }
  const matches = isNftTable(table) ? nftRuleMatches : ruleSpecMatches;
  const candidates = after.rules.filter((r) => r.table === table && r.chain === chain && matches(r.spec, words));
  if (candidates.length === 0) {
    const present = after.rules.filter((r) => r.table === table && r.chain === chain).map((r) => r.spec);
    return {
      problem: `no rule in ${table} ${chain} matches "${words}"${present.length ? `; the chain holds: ${present.join(' | ')}` : isNftTable(table) ? '; the chain holds no rule with a counter' : '; the chain is empty'}`,
    };
  }
  // A rule written in full (as the renderer writes it) is that rule, even if it is also a subset of a longer one.
  if (candidates.length > 1) {
    const exact = candidates.filter((r) => matches(words, r.spec));
    if (exact.length === 1) candidates.splice(0, candidates.length, exact[0]!);
  }
  if (candidates.length > 1)
    return {
      problem: `"${words}" matches ${candidates.length} rules in ${table} ${chain}: ${candidates.map((r) => r.spec).join(' | ')}`,
    };
  const rule = candidates[0]!;
  const earlier = before.rules.find((r) => r.table === table && r.chain === chain && r.spec === rule.spec);
  return {
    packets: rule.packets - (earlier?.packets ?? 0),
    bytes: rule.bytes - (earlier?.bytes ?? 0),
    what: `-A ${chain} ${rule.spec}`,
  };
}

/** The first error a connection reported, as a field to spread into an observation. */
export function firstError(outcomes: TcpOutcome[]): { error?: string } {
  const e = outcomes.find((o) => o.error)?.error;
  return e ? { error: e } : {};
}

export function stripTimestamp(line: string): string {
  return line.replace(/^\d{2}:\d{2}:\d{2}\.\d+\s+/, '');
}

/** A count expectation as two shell words MIN MAX ('' for no bound), as library.sh reads them. */
export function shellRange(c: CountExpectation): string {
  if (typeof c === 'number') return `${c} ${c}`;
  return `${c.min !== undefined ? c.min : "''"} ${c.max !== undefined ? c.max : "''"}`;
}
