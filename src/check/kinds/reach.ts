// allPairs(nodes).succeed() / allReach(from, to): reachability at scale, many one-packet pings.
import { isIPv4 } from 'node:net';
import type { Check } from '../../lab/types.ts';
import { defineKind, type CheckValidation } from '../kind.ts';
import type { Observations } from '../observations.ts';
import { quoteWord as q } from '../../exec/quote.ts';
import { reachTargets, type ReachCheck } from '../../traffic/reach.ts';
import { nodeRange } from '../words.ts';
import { whereTheyWent, sentences } from '../evidence.ts';

function validateReach(c: ReachCheck, v: CheckValidation) {
  const sources =
    c.kind === 'all-pairs'
      ? typeof c.nodes === 'object' && c.nodes !== null
        ? Object.keys(c.nodes)
        : []
      : Array.isArray(c.from)
        ? c.from
        : [];
  if (sources.length < (c.kind === 'all-pairs' ? 2 : 1))
    v.add(
      c.kind === 'all-pairs'
        ? 'all-pairs check: field "nodes" must map at least 2 nodes to their addresses'
        : 'all-reach check: field "from" must list at least one node',
    );
  sources.forEach((node) => v.knownNode(node, c.kind === 'all-pairs' ? `nodes.${node}` : 'from'));
  const targets = c.kind === 'all-pairs' ? Object.values(c.nodes ?? {}) : [c.to];
  for (const address of targets)
    if (!isIPv4(String(address))) v.add(`${c.kind} check: ${v.show(address)} is not an IPv4 address`);
  if (!['succeeds', 'fails'].includes(c.expect))
    v.add(`${c.kind} check: field "expect" must be succeeds or fails (got ${v.show(c.expect)})`);
  if (c.parallel !== undefined && !(Number.isInteger(c.parallel) && c.parallel >= 1 && c.parallel <= 256))
    v.add(`${c.kind} check: field "parallel" must be 1-256`);
  if (c.wait !== undefined && !(typeof c.wait === 'number' && c.wait > 0 && c.wait <= 30))
    v.add(`${c.kind} check: field "wait" must be a number of seconds in (0, 30]`);
}

function pairsOf(c: ReachCheck): number {
  return c.kind === 'all-pairs' ? Object.keys(c.nodes).length * (Object.keys(c.nodes).length - 1) : c.from.length;
}

function judgeReach(c: ReachCheck, obs: Observations) {
  const result = obs.reach(c);
  const pairs = pairsOf(c);
  const expected = { pings: pairs, replies: c.expect === 'succeeds' ? pairs : 0 };
  if (!result) return { met: false, expected, observed: 'the pings did not run' };
  const replied = result.outcomes.filter((o) => o.code === 0).length;
  // The pairs that went against the expectation, a few of them, with what ping said.
  const odd = result.outcomes.filter((o) => (o.code === 0) !== (c.expect === 'succeeds'));
  const words = (code: number) => (code === 0 ? 'reply' : code === 1 ? 'no reply' : 'error');
  const observed = {
    pings: result.outcomes.length,
    replies: replied,
    ...(odd.length > 0
      ? {
          unexpected: odd.slice(0, 8).map((o) => `${o.from} → ${o.to}: ${words(o.code)}`),
          ...(odd.length > 8 ? { more: odd.length - 8 } : {}),
        }
      : {}),
    seconds: Math.round(result.ms / 10) / 100,
    parallel: result.parallel,
  };
  return { met: result.outcomes.length === pairs && odd.length === 0, expected, observed };
}

function hintReach(c: ReachCheck, verdict: { observed: unknown }, obs: Observations): string | undefined {
  const o = verdict.observed as { unexpected?: string[]; more?: number };
  if (!o || typeof o !== 'object' || !o.unexpected) return undefined;
  return sentences([
    `${o.unexpected.length + (o.more ?? 0)} ping${o.unexpected.length + (o.more ?? 0) === 1 ? '' : 's'} went against "${c.expect}": ${o.unexpected.slice(0, 4).join(', ')}`,
    ...whereTheyWent(obs),
  ]);
}

function exportReach(c: ReachCheck, desc: string, ids: { reach(c: ReachCheck): string }): string {
  const pings = [...reachTargets(c).values()].reduce((n, t) => n + t.length, 0);
  return `check_reach ${ids.reach(c)} ${q(c.expect)} ${pings} ${desc}`;
}

export const allPairsKind = defineKind({
  kind: 'all-pairs',
  builder: 'allPairs(nodes).succeed() / .fail()',
  fields: {},
  validate: validateReach,
  describe(c) {
    const nodes = Object.keys(c.nodes);
    return `every pair of the ${nodes.length} nodes ${nodeRange(nodes)} ${c.expect === 'succeeds' ? 'reaches each other' : 'fails to reach each other'} by ping (${nodes.length * (nodes.length - 1)} pings)`;
  },
  needs: (c) => [{ type: 'reach', check: c }],
  judge: judgeReach,
  about: () => 'behaviour',
  hint: hintReach,
  exportLine: exportReach,
});

export const allReachKind = defineKind({
  kind: 'all-reach',
  builder: 'allReach(from, to).succeed() / .fail()',
  fields: { from: 'array-of-strings' },
  validate: validateReach,
  describe: (c: Extract<Check, { kind: 'all-reach' }>) =>
    `each of the ${c.from.length} nodes ${nodeRange(c.from)} ${c.expect === 'succeeds' ? 'reaches' : 'fails to reach'} ${c.to} by ping`,
  needs: (c) => [{ type: 'reach', check: c }],
  judge: judgeReach,
  about: () => 'behaviour',
  hint: hintReach,
  exportLine: exportReach,
});
