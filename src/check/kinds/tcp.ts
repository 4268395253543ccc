// tcp(from, to, port).connects({answeredBy, clientSeen}) / .refused() / .timesOut() / .unreachable():
// every connection of the traffic ends the expected way.
import { defineKind } from '../kind.ts';
import { quoteWord as q } from '../../exec/quote.ts';
import { tally } from '../compare.ts';

const EXPECT = { connects: 'connects', refused: 'is refused', timeout: 'times out', unreachable: 'is unreachable' } as const;
const EXPECT_MANY = { connects: 'connect', refused: 'are refused', timeout: 'time out', unreachable: 'are unreachable' } as const;

export const tcpKind = defineKind({
  kind: 'tcp',
  builder: 'tcp(from, to, port).connects() / .refused() / .timesOut() / .unreachable()',
  fields: { traffic: 'object' },
  validate(c, v) {
    v.tcpTraffic(c.traffic);
    if (!Object.hasOwn(EXPECT, c.expect)) v.add(`tcp check: field "expect" must be ${Object.keys(EXPECT).join(', ')} (got ${v.show(c.expect)})`);
    if (c.answeredBy !== undefined) v.knownNode(c.answeredBy, 'answeredBy');
    if (c.clientSeen !== undefined && typeof c.clientSeen !== 'string') v.add(`tcp check: field "clientSeen" must be an address (got ${v.show(c.clientSeen)})`);
  },
  describe(c) {
    const t = c.traffic;
    const many = (t.connections ?? 1) > 1;
    const what = (many ? EXPECT_MANY : EXPECT)[c.expect];
    const n = many ? `${t.connections} TCP connections` : 'a TCP connection';
    return `${n} from ${t.from} to ${t.to}:${t.port} ${what}${c.answeredBy ? `, answered by ${c.answeredBy}` : ''}${c.clientSeen ? `, which sees client ${c.clientSeen}` : ''}`;
  },
  traffic: (c) => [c.traffic],
  // A connection whose SYN or SYN-ACK the kernel dropped, could not route or reset never completes:
  // one that must time out is decided then (src/engine/evidence.ts).
  acceptsNoReplyEvidence: (c) => c.expect === 'timeout',
  needs: () => [],
  judge(c, obs) {
    const sent = obs.traffic(c.traffic);
    const outcomes = sent?.tcp;
    const expected = { outcome: c.expect, connections: c.traffic.connections ?? 1, ...(c.answeredBy ? { answeredBy: c.answeredBy } : {}), ...(c.clientSeen ? { clientSeen: c.clientSeen } : {}) };
    if (!outcomes || outcomes.length === 0) return { met: false, expected, observed: 'no connection was attempted' };
    const observed = {
      outcomes: tally(outcomes.map((o) => o.result)),
      ...(outcomes.some((o) => o.answeredBy) ? { answeredBy: tally(outcomes.map((o) => o.answeredBy ?? '(none)')) } : {}),
      ...(outcomes.some((o) => o.clientSeen) ? { clientSeen: tally(outcomes.map((o) => o.clientSeen ?? '(none)')) } : {}),
      ...(outcomes.find((o) => o.error) ? { error: outcomes.find((o) => o.error)!.error } : {}),
    };
    const met = outcomes.length === (c.traffic.connections ?? 1)
      && outcomes.every((o) => o.result === c.expect
        && (!c.answeredBy || o.answeredBy === c.answeredBy)
        && (!c.clientSeen || o.clientSeen === c.clientSeen));
    return { met, expected, observed, ...(sent?.decidedBy ? { reason: sent.decidedBy } : {}) };
  },
  exportLine: (c, desc, ids) => `check_tcp ${ids.traffic(c.traffic)} ${q(c.expect)} ${c.traffic.connections ?? 1} ${q(c.answeredBy ?? '')} ${q(c.clientSeen ?? '')} ${desc}`,
});
