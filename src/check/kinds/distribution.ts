// tcp(...).spreads(shares): how new connections spread over backends (kube-proxy's statistic
// --mode random, IPVS schedulers), each count within N·p ± sigmas·sqrt(N·p(1−p)).
import { defineKind } from '../kind.ts';
import { quoteWord as q } from '../../exec/quote.ts';
import { firstError, tally } from '../compare.ts';
import { isLost, lostReason, maxLost, placeable } from '../lost.ts';
import { DEFAULT_SIGMAS, shareRange, toleranceFormula } from '../distribution.ts';

export const distributionKind = defineKind({
  kind: 'distribution',
  builder: 'tcp(from, to, port, { connections }).spreads(shares)',
  fields: { traffic: 'object', shares: 'object' },
  validate(c, v) {
    v.tcpTraffic(c.traffic);
    if (typeof c.shares !== 'object' || c.shares === null || Object.keys(c.shares).length === 0) {
      v.add('distribution check: field "shares" must map backend nodes to shares, e.g. { p1: 1/3, p2: 1/3, p3: 1/3 }');
      return;
    }
    let total = 0;
    for (const [node, share] of Object.entries(c.shares)) {
      v.knownNode(node, `shares.${node}`);
      if (typeof share !== 'number' || !(share >= 0 && share <= 1))
        v.add(`distribution check: field "shares.${node}" must be a number within [0, 1] (got ${v.show(share)})`);
      else total += share;
    }
    if (Math.abs(total - 1) > 1e-6) v.add(`distribution check: the shares must sum to 1 (they sum to ${total})`);
    // 0 asks for the exact shares: right for deterministic schedulers such as IPVS rr and wrr.
    if (c.sigmas !== undefined && !(typeof c.sigmas === 'number' && Number.isFinite(c.sigmas) && c.sigmas >= 0))
      v.add(`distribution check: field "sigmas" must be a number >= 0 (got ${v.show(c.sigmas)})`);
  },
  describe(c) {
    const t = c.traffic;
    const shares = Object.entries(c.shares)
      .map(([node, p]) => `${node} ${Math.round(p * 1000) / 10}%`)
      .join(', ');
    return `${t.connections ?? 1} TCP connections from ${t.from} to ${t.to}:${t.port} spread over ${shares} (${toleranceFormula(c.sigmas ?? DEFAULT_SIGMAS)})`;
  },
  traffic: (c) => [c.traffic],
  needs: () => [],
  judge(c, obs) {
    const n = c.traffic.connections ?? 1;
    const sigmas = c.sigmas ?? DEFAULT_SIGMAS;
    const ranges = Object.fromEntries(Object.entries(c.shares).map(([node, p]) => [node, shareRange(n, p, sigmas)]));
    const expected = {
      connections: n,
      shares: roundShares(c.shares),
      tolerance: toleranceFormula(sigmas),
      counts: ranges,
    };
    const outcomes = obs.traffic(c.traffic)?.tcp;
    if (!outcomes || outcomes.length === 0) return { met: false, expected, observed: 'no connection was attempted' };
    // A connection without an answer is transport loss, not a scheduling result (lost.ts).
    const lost = outcomes.filter(isLost).length;
    const answered = outcomes.filter((o) => o.result === 'connects' && !isLost(o)).map((o) => o.answeredBy!);
    const counts = { ...Object.fromEntries(Object.keys(c.shares).map((node) => [node, 0])), ...tally(answered) };
    const allConnected = outcomes.length === n && answered.length + lost === n;
    const met = allConnected && lost <= maxLost(n) && placeable(counts, ranges, lost);
    return {
      met,
      expected,
      observed: {
        counts,
        ...(lost > 0 ? { lost } : {}),
        ...(allConnected ? {} : { outcomes: tally(outcomes.map((o) => o.result)), ...firstError(outcomes) }),
      },
      ...(lost > 0 ? { reason: lostReason(lost, n) } : {}),
    };
  },
  about: () => 'behaviour',
  hint(c, verdict) {
    const o = verdict.observed as { counts?: Record<string, number>; outcomes?: Record<string, number> };
    if (!o || typeof o !== 'object' || !o.counts) return undefined;
    const n = c.traffic.connections ?? 1;
    const ranges = Object.fromEntries(
      Object.entries(c.shares).map(([node, p]) => [node, shareRange(n, p, c.sigmas ?? DEFAULT_SIGMAS)]),
    );
    const off = Object.entries(o.counts)
      .filter(([node, k]) => !ranges[node] || k < ranges[node]!.min || k > ranges[node]!.max)
      .map(
        ([node, k]) =>
          `${node} answered ${k} of ${n}${ranges[node] ? ` (expected ${ranges[node]!.min}..${ranges[node]!.max})` : ' (not a backend of the check)'}`,
      );
    return (
      [
        ...off,
        ...(o.outcomes
          ? [
              `outcomes: ${Object.entries(o.outcomes)
                .map(([r, k]) => `${k} ${r}`)
                .join(', ')}`,
            ]
          : []),
      ].join('; ') || undefined
    );
  },
  exportLine(c, desc, ids) {
    const n = c.traffic.connections ?? 1;
    const shares = Object.entries(c.shares).map(([node, p]) => {
      const { min, max } = shareRange(n, p, c.sigmas ?? DEFAULT_SIGMAS);
      return `${q(node)} ${min} ${max}`;
    });
    return `check_distribution ${ids.traffic(c.traffic)} ${n} ${desc} ${shares.join(' ')}`;
  },
});

function roundShares(shares: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(shares).map(([node, p]) => [node, Math.round(p * 1e4) / 1e4]));
}
