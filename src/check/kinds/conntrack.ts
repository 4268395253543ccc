// conntrack(node, { proto, orig, reply, mark }).present() / .count(n): entries of the node's
// connection tracking table after the traffic, matched by their tuples (and CONNMARK).
import { defineKind } from '../kind.ts';
import { quoteWord as q } from '../../exec/quote.ts';
import type { CountExpectation } from '../../lab/types.ts';
import { countOk, shellRange, tupleMatches } from '../compare.ts';
import { countWords, tupleWords } from '../words.ts';

export const conntrackKind = defineKind({
  kind: 'conntrack',
  builder: 'conntrack(node, { proto, orig, reply }).present() / .count(n)',
  fields: { orig: 'object', reply: 'object' },
  validate(c, v) {
    v.knownNode(c.node);
    v.count(c.count);
    if (c.mark !== undefined && !(Number.isInteger(c.mark) && c.mark >= 0 && c.mark <= 0xffffffff)) v.add(`conntrack check: field "mark" must be a 32-bit number (got ${v.show(c.mark)})`);
    for (const side of ['orig', 'reply'] as const) {
      for (const port of ['sport', 'dport'] as const) {
        const p = c[side]?.[port];
        if (p !== undefined && typeof p !== 'number') v.count(p, `conntrack check: field "${side}.${port}"`);
      }
    }
  },
  describe: (c) => `conntrack on ${c.node} holds ${countWords(c.count, 'entry', 'entries')}${c.proto ? ` ${c.proto}` : ''}${tupleWords('original', c.orig)}${tupleWords('reply', c.reply)}${c.mark !== undefined ? `, mark ${c.mark} (0x${c.mark.toString(16)})` : ''}`,
  needs: (c) => [{ type: 'conntrack', node: c.node }],
  judge(c, obs) {
    const entries = obs.conntrack(c.node);
    const expected = { ...(c.proto ? { proto: c.proto } : {}), ...(c.orig ? { orig: c.orig } : {}), ...(c.reply ? { reply: c.reply } : {}), ...(c.mark !== undefined ? { mark: c.mark } : {}), count: c.count };
    if (!entries) return { met: false, expected, observed: 'conntrack was not read' };
    const matching = entries.filter((e) => (!c.proto || e.proto === c.proto) && tupleMatches(e.orig, c.orig) && tupleMatches(e.reply, c.reply)
      && (c.mark === undefined || e.mark === c.mark));
    return { met: countOk(matching.length, c.count), expected, observed: { count: matching.length, entries: (matching.length > 0 ? matching : entries).slice(0, 5).map((e) => e.line), ...(matching.length === 0 && entries.length > 0 ? { note: 'no entry matched; showing others' } : {}) } };
  },
  exportLine(c, desc) {
    const o = c.orig ?? {};
    const r = c.reply ?? {};
    const port = (p: CountExpectation | undefined) => (p === undefined ? `'' ''` : shellRange(p));
    return `check_conntrack ${q(c.node)} ${shellRange(c.count)} ${desc} ${q(c.proto ?? '')} ${q(o.src ?? '')} ${q(o.dst ?? '')} ${port(o.sport)} ${port(o.dport)} ${q(r.src ?? '')} ${q(r.dst ?? '')} ${port(r.sport)} ${port(r.dport)} ${q(c.mark === undefined ? '' : String(c.mark))}`;
  },
  look: (c, show) => [show(c.node, ['conntrack', '-L'])],
});
