// rule(node, 'table CHAIN', words).delta({packets, bytes}), rules(...), policy(node, 'table CHAIN'):
// how much a rule's (or a chain policy's) counters grew across the step's traffic. An nftables
// table is named with its family, `rule(node, 'ip kube-proxy CHAIN', words)`: its rules' `counter`
// statements are read with `nft list table` (a rule without one cannot be checked).
import type { CountExpectation, TcpTraffic } from '../../lab/types.ts';
import { defineKind } from '../kind.ts';
import type { Observations } from '../observations.ts';
import { quoteWord as q } from '../../exec/quote.ts';
import { trafficKey } from '../../traffic/run.ts';
import { isLost } from '../lost.ts';
import { countOk, counterDelta, isNftTable, shellRange, type CounterDelta } from '../compare.ts';
import { countWords } from '../words.ts';
import { ruleTokens } from '../rule-tokens.ts';
import { dropsDuringStep, sentences } from '../evidence.ts';
import type { SavedRuleset } from '../../observe/types.ts';

/** Rules and the policy of one chain whose counters grew across the step, with how much. */
function movedInChain(
  table: string,
  chain: string,
  before: SavedRuleset,
  after: SavedRuleset,
): { what: string; packets: number; bytes: number }[] {
  const out: { what: string; packets: number; bytes: number }[] = [];
  for (const r of after.rules) {
    if (r.table !== table || r.chain !== chain) continue;
    const b = before.rules.find((x) => x.table === table && x.chain === chain && x.spec === r.spec);
    const packets = r.packets - (b?.packets ?? 0);
    if (packets > 0) out.push({ what: `-A ${chain} ${r.spec}`, packets, bytes: r.bytes - (b?.bytes ?? 0) });
  }
  const a = after.chains.find((x) => x.table === table && x.chain === chain);
  const b = before.chains.find((x) => x.table === table && x.chain === chain);
  if (a && a.packets - (b?.packets ?? 0) > 0)
    out.push({
      what: `the ${chain} policy ${a.policy}`,
      packets: a.packets - (b?.packets ?? 0),
      bytes: a.bytes - (b?.bytes ?? 0),
    });
  return out;
}

const TABLES = new Set(['filter', 'nat', 'mangle', 'raw', 'security']);
const BRIDGE_TABLES = new Set(['filter', 'nat', 'broute']);
/** How a person names where the counter is: `nat POSTROUTING`, `ebtables nat PREROUTING`. */
const where = (c: { family?: 'bridge'; table: string; chain: string }) =>
  `${c.family === 'bridge' ? 'ebtables ' : ''}${c.table} ${c.chain}`;

export const counterKind = defineKind({
  kind: 'counter',
  builder: "rule(node, 'table CHAIN', words) / rules(...) / policy(node, 'table CHAIN')",
  fields: { answersOf: 'object', rules: 'array-of-strings' },
  validate(c, v) {
    v.knownNode(c.node);
    if (c.family !== undefined && c.family !== 'bridge')
      v.add(`counter check: field "family" must be bridge (ebtables) or left out (got ${v.show(c.family)})`);
    if (c.family === 'bridge') {
      if (!BRIDGE_TABLES.has(c.table)) v.add(`counter check: unknown ebtables table ${v.show(c.table)}`);
      // ebtables-save prints no counters for a chain's policy.
      if (c.rule === undefined && c.rules === undefined)
        v.add('counter check: an ebtables counter needs a rule (ebtables-save counts no policy)');
    } else {
      if (!TABLES.has(c.table) && !isNftTable(String(c.table)))
        v.add(
          `counter check: unknown table ${v.show(c.table)} (an iptables table, or an nftables table with its family: "ip kube-proxy")`,
        );
      if (isNftTable(String(c.table)) && c.rule === undefined && c.rules === undefined)
        v.add('counter check: an nftables chain has no policy counter here; name a rule');
    }
    if (typeof c.chain !== 'string' || c.chain === '') v.add('counter check: chain is missing');
    if (c.packets === undefined && c.bytes === undefined && c.answersOf === undefined)
      v.add('counter check: expect packets or bytes');
    if (c.packets !== undefined) v.count(c.packets, 'counter check: field "packets"');
    if (c.bytes !== undefined) v.count(c.bytes, 'counter check: field "bytes"');
    if (c.rule !== undefined && (typeof c.rule !== 'string' || c.rule.trim() === ''))
      v.add('counter check: field "rule" must be rule words');
    if (c.rules !== undefined) {
      if (c.rule !== undefined) v.add('counter check: give "rule" or "rules", not both');
      if (
        !Array.isArray(c.rules) ||
        c.rules.length === 0 ||
        !c.rules.every((r) => typeof r === 'string' && r.trim() !== '')
      )
        v.add('counter check: field "rules" must be a non-empty array of rule words');
    }
    if (c.answersOf !== undefined) {
      if (c.rule === undefined && c.rules === undefined)
        v.add('counter check: field "answersOf" needs a rule (a chain policy does not count connections)');
      if (c.packets !== undefined) v.add('counter check: give "packets" or "answersOf", not both');
      v.knownNode(c.answersOf?.answeredBy, 'answersOf.answeredBy');
      v.tcpTraffic(c.answersOf?.traffic, 'answersOf.traffic');
    }
  },
  describe(c) {
    const counts = c.answersOf
      ? `as many packets as connections ${c.answersOf.answeredBy} answered${c.bytes !== undefined ? ` and ${countWords(c.bytes, 'byte')}` : ''}`
      : deltaWords(c);
    if (c.rules) return `${where(c)} rules ${c.rules.map((r) => `"${r}"`).join(', ')} count ${counts} in all`;
    return c.rule ? `${where(c)} rule "${c.rule}" counts ${counts}` : `${where(c)} policy counts ${counts}`;
  },
  traffic: (c) => (c.answersOf ? [c.answersOf.traffic] : []),
  needs: (c) => [
    {
      type: 'counters',
      node: c.node,
      ...(isNftTable(c.table) ? { nft: c.table } : {}),
      ...(c.family ? { family: c.family } : {}),
    },
  ],
  // A rule's (or a policy's) own counter: the reference answer's rule. Another rule may do the same work.
  about: () => 'reference',
  hint(c, _verdict, obs) {
    const counters = obs.counters(c.node, isNftTable(c.table) ? c.table : undefined, c.family);
    if (!counters) return undefined;
    const { before, after } = counters;
    const patterns = c.rules ?? (c.rule !== undefined ? [c.rule] : []);
    const own = patterns.map((w) => counterDelta(c.table, c.chain, w, before, after));
    const ownSpecs = new Set(own.flatMap((f) => ('what' in f ? [f.what] : [])));
    const parts: string[] = [];
    for (const [i, f] of own.entries()) {
      if ('problem' in f)
        parts.push(
          /^no rule/.test(f.problem)
            ? `the reference rule "${patterns[i]}" is not in ${where(c)} on ${c.node}`
            : f.problem,
        );
      else
        parts.push(`${f.what} counted ${f.packets} packet${f.packets === 1 ? '' : 's'}, ${f.bytes} bytes on ${c.node}`);
    }
    if (patterns.length === 0) {
      const p = counterDelta(c.table, c.chain, undefined, before, after);
      parts.push(
        'problem' in p
          ? p.problem
          : `the ${p.what} policy counted ${p.packets} packet${p.packets === 1 ? '' : 's'} on ${c.node}`,
      );
    }
    // The counters that moved instead: the rule the student has, which did the work.
    const moved = movedInChain(c.table, c.chain, before, after).filter((m) => !ownSpecs.has(m.what));
    if (moved.length > 0)
      parts.push(
        `${patterns.length > 0 ? 'in its place' : 'instead'}, ${moved
          .slice(0, 3)
          .map((m) => `${m.what} counted ${m.packets} packet${m.packets === 1 ? '' : 's'}, ${m.bytes} bytes`)
          .join('; ')}`,
      );
    else if (!c.family) parts.push(...dropsDuringStep(obs));
    return sentences(parts);
  },
  judge(c, obs) {
    const counters = obs.counters(c.node, isNftTable(c.table) ? c.table : undefined, c.family);
    // answersOf: as many packets as one backend answered connections (NAT rules count connections).
    const answers = c.answersOf ? answeredCount(obs, c.answersOf.traffic, c.answersOf.answeredBy) : undefined;
    // A lost connection (connected, no answer: lost.ts) may have been this backend's: it may count.
    const lost = c.answersOf ? (obs.traffic(c.answersOf.traffic)?.tcp ?? []).filter(isLost).length : 0;
    const packets = answers !== undefined && lost > 0 ? { min: answers, max: answers + lost } : (answers ?? c.packets);
    const expected = {
      ...(packets !== undefined ? { packets } : {}),
      ...(c.answersOf
        ? { as: `connections of ${trafficKey(c.answersOf.traffic)} answered by ${c.answersOf.answeredBy}` }
        : {}),
      ...(c.bytes !== undefined ? { bytes: c.bytes } : {}),
    };
    if (!counters) return { met: false, expected, observed: 'the counters were not read' };
    if (c.answersOf && answers === undefined)
      return { met: false, expected, observed: `the traffic ${trafficKey(c.answersOf.traffic)} did not run` };
    const { before, after } = counters;
    const found = c.rules
      ? sumDeltas(c.rules.map((words) => counterDelta(c.table, c.chain, words, before, after)))
      : counterDelta(c.table, c.chain, c.rule, before, after);
    if ('problem' in found) return { met: false, expected, observed: found.problem };
    const met =
      (packets === undefined || countOk(found.packets, packets)) &&
      (c.bytes === undefined || countOk(found.bytes, c.bytes));
    const what = 'parts' in found ? { rules: found.parts } : { [c.rule ? 'rule' : 'policy']: found.what };
    return { met, expected, observed: { packets: found.packets, bytes: found.bytes, ...what } };
  },
  exportLine(c, desc, ids) {
    if (isNftTable(c.table))
      return `skip_check ${desc} ${q('an nftables rule counter: the exported script reads iptables counters only; nflab run reads it')}`;
    const packets = c.answersOf
      ? `answers:${ids.traffic(c.answersOf.traffic)}:${q(c.answersOf.answeredBy)} ''`
      : c.packets === undefined
        ? `'' ''`
        : shellRange(c.packets);
    const bytes = c.bytes === undefined ? `'' ''` : shellRange(c.bytes);
    const patterns = c.rules ?? (c.rule !== undefined ? [c.rule] : []);
    const what =
      patterns.length === 0
        ? 'policy'
        : patterns.map((p) => `rule ${q(p)} ${ruleTokens(p).map(q).join(' ')}`).join(' ');
    // An ebtables counter's saves are NODE.bridge.before/after (save_ebcounters in library.sh).
    return `check_counter ${q(c.family === 'bridge' ? `${c.node}.bridge` : c.node)} ${q(c.table)} ${q(c.chain)} ${packets} ${bytes} ${desc} ${what}`;
  },
  look: (c, show) => [
    show(
      c.node,
      c.family === 'bridge'
        ? ['ebtables', '-t', c.table, '-L', c.chain, '--Lc']
        : isNftTable(c.table)
          ? ['nft', 'list', 'chain', ...c.table.split(' '), c.chain]
          : ['iptables', '-t', c.table, '-L', c.chain, '-v', '-n', '-x'],
    ),
  ],
});

function deltaWords(c: { packets?: CountExpectation; bytes?: CountExpectation }): string {
  const parts = [];
  if (c.packets !== undefined) parts.push(countWords(c.packets, 'packet'));
  if (c.bytes !== undefined) parts.push(countWords(c.bytes, 'byte'));
  return parts.join(' and ');
}

/** Connections of a traffic item answered by one node; undefined if the traffic did not run. */
function answeredCount(obs: Observations, traffic: TcpTraffic, node: string): number | undefined {
  const outcomes = obs.traffic(traffic)?.tcp;
  return outcomes && outcomes.filter((o) => o.result === 'connects' && o.answeredBy === node).length;
}

function sumDeltas(
  found: CounterDelta[],
): { packets: number; bytes: number; parts: { rule: string; packets: number; bytes: number }[] } | { problem: string } {
  const problem = found.find((f) => 'problem' in f);
  if (problem) return problem as { problem: string };
  const parts = found
    .map((f) => f as { packets: number; bytes: number; what: string })
    .map((f) => ({ rule: f.what, packets: f.packets, bytes: f.bytes }));
  return { packets: parts.reduce((a, p) => a + p.packets, 0), bytes: parts.reduce((a, p) => a + p.bytes, 0), parts };
}
