// tcp(...).sticks({ among }): every connection answered by one and the same backend (SessionAffinity).
import { defineKind } from '../kind.ts';
import { quoteWord as q } from '../../exec/quote.ts';
import { firstError, tally } from '../compare.ts';
import { isLost, lostReason, maxLost } from '../lost.ts';

export const stickyKind = defineKind({
  kind: 'sticky',
  builder: 'tcp(from, to, port, { connections }).sticks()',
  fields: { traffic: 'object', among: 'array-of-strings' },
  validate(c, v) {
    v.tcpTraffic(c.traffic);
    if ((c.traffic?.connections ?? 1) < 2)
      v.add('sticky check: the traffic needs at least 2 connections (traffic.connections)');
    if (c.among !== undefined) {
      if (!Array.isArray(c.among) || c.among.length === 0)
        v.add('sticky check: field "among" must be a non-empty array of nodes');
      else c.among.forEach((node, i) => v.knownNode(node, `among[${i}]`));
    }
  },
  describe(c) {
    const t = c.traffic;
    return `all ${t.connections ?? 1} TCP connections from ${t.from} to ${t.to}:${t.port} are answered by the same backend${c.among ? ` (one of ${c.among.join(', ')})` : ''}`;
  },
  traffic: (c) => [c.traffic],
  needs: () => [],
  judge(c, obs) {
    const n = c.traffic.connections ?? 1;
    const expected = {
      connections: n,
      answeredBy: 'one and the same backend for every connection',
      ...(c.among ? { among: c.among } : {}),
    };
    const outcomes = obs.traffic(c.traffic)?.tcp;
    if (!outcomes || outcomes.length === 0) return { met: false, expected, observed: 'no connection was attempted' };
    // A connection without an answer is transport loss: which backend it reached is unknown (lost.ts).
    const lost = outcomes.filter(isLost).length;
    const answered = outcomes.filter((o) => o.result === 'connects' && !isLost(o)).map((o) => o.answeredBy!);
    const backends = tally(answered);
    const only = Object.keys(backends);
    const allConnected = outcomes.length === n && answered.length + lost === n;
    const met = allConnected && lost <= maxLost(n) && only.length === 1 && (!c.among || c.among.includes(only[0]!));
    return {
      met,
      expected,
      observed: {
        answeredBy: backends,
        ...(lost > 0 ? { lost } : {}),
        ...(allConnected ? {} : { outcomes: tally(outcomes.map((o) => o.result)), ...firstError(outcomes) }),
      },
      ...(lost > 0 ? { reason: lostReason(lost, n) } : {}),
    };
  },
  about: () => 'behaviour',
  hint(c, verdict) {
    const o = verdict.observed as { answeredBy?: Record<string, number>; outcomes?: Record<string, number> };
    if (!o || typeof o !== 'object' || !o.answeredBy) return undefined;
    const by = Object.entries(o.answeredBy)
      .map(([node, k]) => `${node} ${k}`)
      .join(', ');
    return `the ${c.traffic.connections ?? 1} connections from ${c.traffic.from} were answered by ${by || 'no backend'}${Object.keys(o.answeredBy).length > 1 ? ': each new connection was balanced again, so nothing remembers the client (no affinity rule matched)' : ''}`;
  },
  exportLine: (c, desc, ids) =>
    `check_sticky ${ids.traffic(c.traffic)} ${c.traffic.connections ?? 1} ${desc}${(c.among ?? []).map((n) => ` ${q(n)}`).join('')}`,
});
