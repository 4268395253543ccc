// tcp(from, to, port).connects({answeredBy, clientSeen}) / .refused() / .timesOut() / .unreachable():
// every connection of the traffic ends the expected way.
import { defineKind } from '../kind.ts';
import { quoteWord as q } from '../../exec/quote.ts';
import { tally } from '../compare.ts';
import { whereTheyWent, sentences, traceEnds } from '../evidence.ts';

const EXPECT = {
  connects: 'connects',
  refused: 'is refused',
  timeout: 'times out',
  unreachable: 'is unreachable',
} as const;
const EXPECT_MANY = {
  connects: 'connect',
  refused: 'are refused',
  timeout: 'time out',
  unreachable: 'are unreachable',
} as const;

export const tcpKind = defineKind({
  kind: 'tcp',
  builder: 'tcp(from, to, port).connects() / .refused() / .timesOut() / .unreachable()',
  fields: { traffic: 'object' },
  validate(c, v) {
    v.tcpTraffic(c.traffic);
    if (!Object.hasOwn(EXPECT, c.expect))
      v.add(`tcp check: field "expect" must be ${Object.keys(EXPECT).join(', ')} (got ${v.show(c.expect)})`);
    if (c.answeredBy !== undefined) v.knownNode(c.answeredBy, 'answeredBy');
    if (c.clientSeen !== undefined && typeof c.clientSeen !== 'string')
      v.add(`tcp check: field "clientSeen" must be an address (got ${v.show(c.clientSeen)})`);
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
    const expected = {
      outcome: c.expect,
      connections: c.traffic.connections ?? 1,
      ...(c.answeredBy ? { answeredBy: c.answeredBy } : {}),
      ...(c.clientSeen ? { clientSeen: c.clientSeen } : {}),
    };
    if (!outcomes || outcomes.length === 0) return { met: false, expected, observed: 'no connection was attempted' };
    const observed = {
      outcomes: tally(outcomes.map((o) => o.result)),
      ...(outcomes.some((o) => o.answeredBy)
        ? { answeredBy: tally(outcomes.map((o) => o.answeredBy ?? '(none)')) }
        : {}),
      ...(outcomes.some((o) => o.clientSeen)
        ? { clientSeen: tally(outcomes.map((o) => o.clientSeen ?? '(none)')) }
        : {}),
      ...(outcomes.find((o) => o.error) ? { error: outcomes.find((o) => o.error)!.error } : {}),
    };
    const met =
      outcomes.length === (c.traffic.connections ?? 1) &&
      outcomes.every(
        (o) =>
          o.result === c.expect &&
          (!c.answeredBy || o.answeredBy === c.answeredBy) &&
          (!c.clientSeen || o.clientSeen === c.clientSeen),
      );
    return { met, expected, observed, ...(sent?.decidedBy ? { reason: sent.decidedBy } : {}) };
  },
  about: () => 'behaviour',
  hint(c, _verdict, obs) {
    const t = c.traffic;
    const outcomes = obs.traffic(t)?.tcp ?? [];
    if (outcomes.length === 0) return undefined;
    const results = tally(outcomes.map((o) => o.result));
    const other = Object.entries(results)
      .filter(([r]) => r !== c.expect)
      .map(([r, n]) => `${n} ${r === 'connects' ? 'connected' : r === 'timeout' ? 'timed out' : r}`);
    const wrongServer = c.answeredBy ? outcomes.filter((o) => o.answeredBy && o.answeredBy !== c.answeredBy) : [];
    const wrongClient = c.clientSeen ? outcomes.filter((o) => o.clientSeen && o.clientSeen !== c.clientSeen) : [];
    return sentences([
      other.length > 0 &&
        `of ${outcomes.length} connections from ${t.from} to ${t.to}:${t.port}, ${other.join(', ')}${outcomes.find((o) => o.error) ? ` ("${outcomes.find((o) => o.error)!.error}")` : ''}`,
      wrongServer.length > 0 &&
        `${wrongServer.length} were answered by ${Object.keys(tally(wrongServer.map((o) => o.answeredBy!))).join(', ')}, not ${c.answeredBy}: the destination was translated to another backend`,
      wrongClient.length > 0 &&
        `the server saw the client as ${Object.keys(tally(wrongClient.map((o) => o.clientSeen!))).join(', ')}, not ${c.clientSeen}: ${c.clientSeen === t.from ? 'the source was translated' : 'the source translation differs'}`,
      ...(c.expect === 'connects' && other.length > 0
        ? [...traceEnds(obs, 'tcp', t.to, 'SYN'), ...whereTheyWent(obs)]
        : []),
    ]);
  },
  exportLine: (c, desc, ids) =>
    `check_tcp ${ids.traffic(c.traffic)} ${q(c.expect)} ${c.traffic.connections ?? 1} ${q(c.answeredBy ?? '')} ${q(c.clientSeen ?? '')} ${desc}`,
});
