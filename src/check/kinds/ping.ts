// ping(from, to).succeeds() / .fails(error?): one ping run, judged by replies (and ping's error text).
import { defineKind } from '../kind.ts';
import { quoteWord as q } from '../../exec/quote.ts';
import { whereTheyWent, sentences, traceEnds } from '../evidence.ts';

/** What ping's error says about the way: no route (the kernel refused to send), no neighbour (ARP got no answer). */
export function pingErrorWords(from: string, to: string, error: string): string {
  if (/Network is unreachable/i.test(error))
    return `ping on ${from} says "${error}": ${from} has no route to ${to} (ip route on ${from})`;
  if (/Destination Host Unreachable/i.test(error))
    return `ping on ${from} says "${error}": the last router got no ARP answer for ${to} (a missing neighbour: ip neigh)`;
  return `ping on ${from} says "${error}"`;
}

const EXPECT = ['succeeds', 'fails'];

export const pingKind = defineKind({
  kind: 'ping',
  builder: 'ping(from, to).succeeds() / .fails()',
  fields: { traffic: 'object' },
  validate(c, v) {
    v.traffic(c.traffic);
    if (!EXPECT.includes(c.expect))
      v.add(`ping check: field "expect" must be succeeds or fails (got ${v.show(c.expect)})`);
    if (c.error !== undefined && typeof c.error !== 'string')
      v.add(`ping check: field "error" must be text (got ${v.show(c.error)})`);
  },
  describe(c) {
    const t = c.traffic;
    return `ping from ${t.from} to ${t.to} ${c.expect === 'succeeds' ? 'succeeds' : `fails${c.error ? ` with "${c.error}"` : ''}`}`;
  },
  traffic: (c) => [c.traffic],
  // A request dropped by iptables is never answered: a ping that must fail with no particular error is decided.
  acceptsNoReplyEvidence: (c) => c.expect === 'fails' && !c.error,
  needs: () => [],
  judge(c, obs) {
    const sent = obs.traffic(c.traffic);
    const result = sent?.ping;
    const expected = { outcome: c.expect, ...(c.error ? { error: c.error } : {}) };
    if (!result) return { met: false, expected, observed: 'the ping did not run' };
    const succeeded = result.transmitted > 0 && result.received === result.transmitted;
    const observed = {
      outcome: succeeded ? 'succeeds' : 'fails',
      transmitted: result.transmitted,
      received: result.received,
      ...(result.error ? { error: result.error } : {}),
    };
    const outcomeOk = c.expect === 'succeeds' ? succeeded : result.received === 0;
    const errorOk = !c.error || (result.error ?? result.output).includes(c.error);
    // The ping was stopped once the kernel's evidence showed no reply could come (src/engine/evidence.ts).
    return { met: outcomeOk && errorOk, expected, observed, ...(sent.decidedBy ? { reason: sent.decidedBy } : {}) };
  },
  about: () => 'behaviour',
  hint(c, _verdict, obs) {
    const t = c.traffic;
    const r = obs.traffic(t)?.ping;
    if (!r) return undefined;
    if (c.expect === 'fails') {
      if (r.received === 0)
        return c.error ? `the ping failed, but with "${r.error ?? r.output.trim().split('\n').pop()}"` : undefined;
      return sentences([
        `${r.received} of ${r.transmitted} echo requests from ${t.from} to ${t.to} were answered: nothing on the way drops them`,
        ...traceEnds(obs, 'icmp', t.to, 'echo request'),
      ]);
    }
    return sentences([
      r.error
        ? pingErrorWords(t.from, t.to, r.error)
        : `${r.received} of ${r.transmitted} echo requests from ${t.from} to ${t.to} were answered`,
      ...traceEnds(obs, 'icmp', t.to, 'echo request'),
      ...whereTheyWent(obs),
    ]);
  },
  exportLine: (c, desc, ids) => `check_ping ${ids.traffic(c.traffic)} ${q(c.expect)} ${q(c.error ?? '')} ${desc}`,
});
