// conntrack(node, { proto, orig, reply, mark }).present() / .count(n): entries of the node's
// connection tracking table after the traffic, matched by their tuples (and CONNMARK).
import { defineKind } from '../kind.ts';
import { quoteWord as q } from '../../exec/quote.ts';
import type { CountExpectation } from '../../lab/types.ts';
import { countOk, shellRange, tupleMatches } from '../compare.ts';
import { countWords, tupleWords } from '../words.ts';
import { connectionKey, type ConntrackObservation } from '../observations.ts';
import type { Check, TupleMatch } from '../../lab/types.ts';
import type { ConntrackEntry } from '../../observe/types.ts';

type ConntrackCheck = Extract<Check, { kind: 'conntrack' }>;

/** The entries that are not in the baseline (by their id; by their line without the timeout when ids
 * are missing), and the ones of the step's own connections even so: the kernel's id hashes the
 * entry's address and tuples, and a client free to reuse a source port at once (the responder closed
 * first) ends conntrack's TIME_WAIT entry of that tuple with its SYN, and the new entry can take the
 * freed memory and so the same id (seen: lab 04 counted 148 of its 150 connections right after up). */
export function ownEntries(read: ConntrackObservation): ConntrackEntry[] {
  if (!read.before) return read.after;
  const key = (e: ConntrackEntry) =>
    e.entryId !== undefined ? `id ${e.entryId}` : e.line.replace(/^(\S+\s+\d+\s+)\d+/, '$1');
  const seen = new Set(read.before.map(key));
  const own = new Set(read.ownClients ?? []);
  return read.after.filter((e) => !seen.has(key(e)) || own.has(connectionOf(e)));
}

const connectionOf = (e: ConntrackEntry) => connectionKey(e.orig.dst, e.reply.dst, e.reply.dport);

/** How many of the step's connections the entries stand for: a client that reused a source port of
 * an earlier connection of the same step (the responder closed first, so the client kept no
 * TIME_WAIT) replaced that connection's entry, one entry for two connections (CI: lab 04 counted
 * 146-148 entries for its 150 connections). Each entry counts as the connections made with its tuple. */
function connectionsOf(entries: ConntrackEntry[], read: ConntrackObservation): number {
  const made = new Map<string, number>();
  for (const client of read.ownClients ?? []) made.set(client, (made.get(client) ?? 0) + 1);
  return entries.reduce((n, e) => n + (made.get(connectionOf(e)) ?? 1), 0);
}

function matches(c: ConntrackCheck, e: ConntrackEntry): boolean {
  return (
    (!c.proto || e.proto === c.proto) &&
    tupleMatches(e.orig, c.orig) &&
    tupleMatches(e.reply, c.reply) &&
    (c.mark === undefined || e.mark === c.mark)
  );
}

const replyWords = (e: ConntrackEntry) =>
  `src=${e.reply.src} dst=${e.reply.dst}${e.reply.sport !== undefined ? ` sport=${e.reply.sport}` : ''}`;
const tupleText = (m: TupleMatch) =>
  Object.entries(m)
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`)
    .join(' ');

export const conntrackKind = defineKind({
  kind: 'conntrack',
  builder: 'conntrack(node, { proto, orig, reply }).present() / .count(n)',
  fields: { orig: 'object', reply: 'object' },
  validate(c, v) {
    v.knownNode(c.node);
    v.count(c.count);
    if (c.mark !== undefined && !(Number.isInteger(c.mark) && c.mark >= 0 && c.mark <= 0xffffffff))
      v.add(`conntrack check: field "mark" must be a 32-bit number (got ${v.show(c.mark)})`);
    for (const side of ['orig', 'reply'] as const) {
      for (const port of ['sport', 'dport'] as const) {
        const p = c[side]?.[port];
        if (p !== undefined && typeof p !== 'number') v.count(p, `conntrack check: field "${side}.${port}"`);
      }
    }
  },
  describe: (c) =>
    `conntrack on ${c.node} holds ${countWords(c.count, 'entry', 'entries')}${c.proto ? ` ${c.proto}` : ''}${tupleWords('original', c.orig)}${tupleWords('reply', c.reply)}${c.mark !== undefined ? `, mark ${c.mark} (0x${c.mark.toString(16)})` : ''}`,
  needs: (c) => [{ type: 'conntrack', node: c.node }],
  about: () => 'behaviour',
  judge(c, obs) {
    const read = obs.conntrack(c.node);
    const expected = {
      ...(c.proto ? { proto: c.proto } : {}),
      ...(c.orig ? { orig: c.orig } : {}),
      ...(c.reply ? { reply: c.reply } : {}),
      ...(c.mark !== undefined ? { mark: c.mark } : {}),
      count: c.count,
    };
    if (!read) return { met: false, expected, observed: 'conntrack was not read' };
    // Only the entries the step's own flows made: a student's connections and earlier checks' stay out.
    const entries = ownEntries(read);
    const matching = entries.filter((e) => matches(c, e));
    const earlier = read.after.length - entries.length;
    const count = connectionsOf(matching, read);
    return {
      met: countOk(count, c.count),
      expected,
      observed: {
        count,
        ...(count !== matching.length ? { reused: count - matching.length } : {}),
        entries: (matching.length > 0 ? matching : entries).slice(0, 5).map((e) => e.line),
        ...(matching.length === 0 && entries.length > 0 ? { note: 'no entry matched; showing others' } : {}),
        ...(earlier > 0 ? { earlier } : {}),
      },
    };
  },
  hint(c, _verdict, obs) {
    const read = obs.conntrack(c.node);
    if (!read) return undefined;
    const entries = ownEntries(read);
    const matching = entries.filter((e) => matches(c, e)).length;
    if (entries.length === 0)
      return `conntrack on ${c.node} holds no entry made during the check (${read.after.length} older ones left out): the traffic never reached ${c.node}, or nothing there needs conntrack (a NAT rule or a -m conntrack match makes the namespace track connections)`;
    // The nearest entry: same protocol and original tuple, for what differs in the reply (NAT).
    const same = entries.filter((e) => (!c.proto || e.proto === c.proto) && tupleMatches(e.orig, c.orig));
    if (matching === 0 && same.length > 0 && c.reply)
      return `conntrack on ${c.node} has ${same.length} new ${same.length === 1 ? 'entry' : 'entries'} of this original tuple, but the reply tuple is ${replyWords(same[0]!)}, not ${tupleText(c.reply)}: the translation differs`;
    return `conntrack on ${c.node}: ${matching} of the ${entries.length} entries made during the check match (${entries
      .slice(0, 2)
      .map((e) => e.line)
      .join(' | ')})`;
  },
  exportLine(c, desc) {
    const o = c.orig ?? {};
    const r = c.reply ?? {};
    const port = (p: CountExpectation | undefined) => (p === undefined ? `'' ''` : shellRange(p));
    return `check_conntrack ${q(c.node)} ${shellRange(c.count)} ${desc} ${q(c.proto ?? '')} ${q(o.src ?? '')} ${q(o.dst ?? '')} ${port(o.sport)} ${port(o.dport)} ${q(r.src ?? '')} ${q(r.dst ?? '')} ${port(r.sport)} ${port(r.dport)} ${q(c.mark === undefined ? '' : String(c.mark))}`;
  },
  look: (c, show) => [show(c.node, ['conntrack', '-L'])],
});
