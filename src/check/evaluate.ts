// Compares what a step observed with what each check expects. Numbers and structures are
// compared, never rendered strings; the report carries both sides.
import type { Check, CountExpectation, PacketMatch, TupleMatch } from '../lab/types.ts';
import type { CheckReport } from '../report/types.ts';
import type { ConntrackEntry, ConntrackTuple, PacketRecord, SavedRuleset } from '../observe/types.ts';
import type { RunResult } from '../exec/types.ts';
import type { TrafficResult } from '../traffic/run.ts';
import { trafficKey } from '../traffic/run.ts';
import { ruleSpecMatches } from '../observe/parse-iptables-save.ts';
import { describeCheck } from './describe.ts';
import type { RecentEntry } from '../observe/parse-xt-recent.ts';
import type { TcpTraffic } from '../lab/types.ts';
import type { TcpOutcome } from '../observe/types.ts';
import { DEFAULT_SIGMAS, shareRange, toleranceFormula } from './distribution.ts';
import { reachKey, type ReachResult } from '../traffic/reach.ts';
import { judgePath, traceKey, type TraceObservation } from './path.ts';

export interface StepObservations {
  traffic: Map<string, TrafficResult>;
  captures: Map<string, { packets: PacketRecord[]; error?: string }>;
  countersBefore: Map<string, SavedRuleset>;
  countersAfter: Map<string, SavedRuleset>;
  conntrack: Map<string, ConntrackEntry[]>;
  outputs: Map<string, RunResult>;
  /** xt_recent lists read after the traffic, by recentKey(node, list). */
  recent?: Map<string, { entries: RecentEntry[] } | { error: string }>;
  /** Results of all-pairs / all-reach checks, by reachKey(check). */
  reach?: Map<string, ReachResult>;
  /** Packet traces taken while the traffic ran, by traceKey(node, filter) (src/check/path.ts). */
  traces?: Map<string, TraceObservation>;
}

export const captureKey = (node: string, iface: string) => `${node}:${iface}`;
export const outputKey = (node: string, argv: string[]) => `${node}\0${argv.join('\0')}`;
export const recentKey = (node: string, list: string) => `${node}\0${list}`;

export function evaluate(check: Check, obs: StepObservations): CheckReport {
  const verdict = judge(check, obs);
  return { description: checkDescription(check), kind: check.kind, status: verdict.met ? 'met' : 'not-met', expected: verdict.expected, observed: verdict.observed, ...(verdict.reason ? { reason: verdict.reason } : {}) };
}

/** A check not judged in this run, with why (a sandboxOnly check in a root-namespace run). */
export function skipped(check: Check, reason: string): CheckReport {
  return { description: checkDescription(check), kind: check.kind, status: 'skipped', expected: null, observed: null, reason };
}

function checkDescription(check: Check): string {
  return check.description ?? describeCheck(check);
}

interface Verdict { met: boolean; expected: unknown; observed: unknown; reason?: string }

function judge(check: Check, obs: StepObservations): Verdict {
  switch (check.kind) {
    case 'ping': {
      const result = obs.traffic.get(trafficKey(check.traffic))?.ping;
      const expected = { outcome: check.expect, ...(check.error ? { error: check.error } : {}) };
      if (!result) return { met: false, expected, observed: 'the ping did not run' };
      const succeeded = result.transmitted > 0 && result.received === result.transmitted;
      const observed = { outcome: succeeded ? 'succeeds' : 'fails', transmitted: result.transmitted, received: result.received, ...(result.error ? { error: result.error } : {}) };
      const outcomeOk = check.expect === 'succeeds' ? succeeded : result.received === 0;
      const errorOk = !check.error || (result.error ?? result.output).includes(check.error);
      // The ping was stopped once the drop counters showed no reply could come (engine/step.ts).
      const decidedBy = obs.traffic.get(trafficKey(check.traffic))?.decidedBy;
      return { met: outcomeOk && errorOk, expected, observed, ...(decidedBy ? { reason: decidedBy } : {}) };
    }
    case 'tcp': {
      const outcomes = obs.traffic.get(trafficKey(check.traffic))?.tcp;
      const expected = { outcome: check.expect, connections: check.traffic.connections ?? 1, ...(check.answeredBy ? { answeredBy: check.answeredBy } : {}), ...(check.clientSeen ? { clientSeen: check.clientSeen } : {}) };
      if (!outcomes || outcomes.length === 0) return { met: false, expected, observed: 'no connection was attempted' };
      const observed = {
        outcomes: tally(outcomes.map((o) => o.result)),
        ...(outcomes.some((o) => o.answeredBy) ? { answeredBy: tally(outcomes.map((o) => o.answeredBy ?? '(none)')) } : {}),
        ...(outcomes.some((o) => o.clientSeen) ? { clientSeen: tally(outcomes.map((o) => o.clientSeen ?? '(none)')) } : {}),
        ...(outcomes.find((o) => o.error) ? { error: outcomes.find((o) => o.error)!.error } : {}),
      };
      const met = outcomes.length === (check.traffic.connections ?? 1)
        && outcomes.every((o) => o.result === check.expect
          && (!check.answeredBy || o.answeredBy === check.answeredBy)
          && (!check.clientSeen || o.clientSeen === check.clientSeen));
      return { met, expected, observed };
    }
    case 'packets': {
      const capture = obs.captures.get(captureKey(check.node, check.iface));
      const expected = { match: check.match, count: check.count };
      if (!capture) return { met: false, expected, observed: 'no capture ran' };
      if (capture.error) return { met: false, expected, observed: { error: capture.error } };
      const matching = capture.packets.filter((p) => packetMatches(p, check.match));
      return { met: countOk(matching.length, check.count), expected, observed: { count: matching.length, packets: matching.slice(0, 6).map((p) => stripTimestamp(p.line)), capturedInAll: capture.packets.length } };
    }
    case 'counter': {
      const before = obs.countersBefore.get(check.node);
      const after = obs.countersAfter.get(check.node);
      // answersOf: as many packets as one backend answered connections (NAT rules count connections, G9).
      const answers = check.answersOf ? answeredCount(obs, check.answersOf.traffic, check.answersOf.answeredBy) : undefined;
      const packets = answers ?? check.packets;
      const expected = {
        ...(packets !== undefined ? { packets } : {}),
        ...(check.answersOf ? { as: `connections of ${trafficKey(check.answersOf.traffic)} answered by ${check.answersOf.answeredBy}` } : {}),
        ...(check.bytes !== undefined ? { bytes: check.bytes } : {}),
      };
      if (!before || !after) return { met: false, expected, observed: 'the counters were not read' };
      if (check.answersOf && answers === undefined) return { met: false, expected, observed: `the traffic ${trafficKey(check.answersOf.traffic)} did not run` };
      const found = check.rules
        ? sumDeltas(check.rules.map((words) => counterDelta(check.table, check.chain, words, before, after)))
        : counterDelta(check.table, check.chain, check.rule, before, after);
      if ('problem' in found) return { met: false, expected, observed: found.problem };
      const met = (packets === undefined || countOk(found.packets, packets)) && (check.bytes === undefined || countOk(found.bytes, check.bytes));
      const what = 'parts' in found ? { rules: found.parts } : { [check.rule ? 'rule' : 'policy']: found.what };
      return { met, expected, observed: { packets: found.packets, bytes: found.bytes, ...what } };
    }
    case 'distribution': {
      const n = check.traffic.connections ?? 1;
      const sigmas = check.sigmas ?? DEFAULT_SIGMAS;
      const ranges = Object.fromEntries(Object.entries(check.shares).map(([node, p]) => [node, shareRange(n, p, sigmas)]));
      const expected = { connections: n, shares: roundShares(check.shares), tolerance: toleranceFormula(sigmas), counts: ranges };
      const outcomes = obs.traffic.get(trafficKey(check.traffic))?.tcp;
      if (!outcomes || outcomes.length === 0) return { met: false, expected, observed: 'no connection was attempted' };
      const answered = outcomes.filter((o) => o.result === 'connects').map((o) => o.answeredBy ?? '(no answer)');
      const counts = { ...Object.fromEntries(Object.keys(check.shares).map((node) => [node, 0])), ...tally(answered) };
      const allAnswered = outcomes.length === n && answered.length === n;
      const met = allAnswered && Object.entries(counts).every(([node, count]) => ranges[node] !== undefined && countOk(count, ranges[node]));
      return { met, expected, observed: { counts, ...(allAnswered ? {} : { outcomes: tally(outcomes.map((o) => o.result)), ...firstError(outcomes) }) } };
    }
    case 'sticky': {
      const n = check.traffic.connections ?? 1;
      const expected = { connections: n, answeredBy: 'one and the same backend for every connection', ...(check.among ? { among: check.among } : {}) };
      const outcomes = obs.traffic.get(trafficKey(check.traffic))?.tcp;
      if (!outcomes || outcomes.length === 0) return { met: false, expected, observed: 'no connection was attempted' };
      const answered = outcomes.filter((o) => o.result === 'connects').map((o) => o.answeredBy ?? '(no answer)');
      const backends = tally(answered);
      const only = Object.keys(backends);
      const allAnswered = outcomes.length === n && answered.length === n;
      const met = allAnswered && only.length === 1 && (!check.among || check.among.includes(only[0]!));
      return { met, expected, observed: { answeredBy: backends, ...(allAnswered ? {} : { outcomes: tally(outcomes.map((o) => o.result)), ...firstError(outcomes) }) } };
    }
    case 'recent':
      return judgeRecent(check, obs);
    case 'path':
      return judgePath(check, obs.traces?.get(traceKey(check.node, check.filter)));
    case 'all-pairs': case 'all-reach': {
      const result = obs.reach?.get(reachKey(check));
      const pairs = check.kind === 'all-pairs' ? Object.keys(check.nodes).length * (Object.keys(check.nodes).length - 1) : check.from.length;
      const expected = { pings: pairs, replies: check.expect === 'succeeds' ? pairs : 0 };
      if (!result) return { met: false, expected, observed: 'the pings did not run' };
      const replied = result.outcomes.filter((o) => o.code === 0).length;
      // The pairs that went against the expectation, a few of them, with what ping said.
      const odd = result.outcomes.filter((o) => (o.code === 0) !== (check.expect === 'succeeds'));
      const words = (code: number) => (code === 0 ? 'reply' : code === 1 ? 'no reply' : 'error');
      const observed = {
        pings: result.outcomes.length, replies: replied,
        ...(odd.length > 0 ? { unexpected: odd.slice(0, 8).map((o) => `${o.from} → ${o.to}: ${words(o.code)}`), ...(odd.length > 8 ? { more: odd.length - 8 } : {}) } : {}),
        seconds: Math.round(result.ms / 10) / 100, parallel: result.parallel,
      };
      return { met: result.outcomes.length === pairs && odd.length === 0, expected, observed };
    }
    case 'conntrack': {
      const entries = obs.conntrack.get(check.node);
      const expected = { ...(check.proto ? { proto: check.proto } : {}), ...(check.orig ? { orig: check.orig } : {}), ...(check.reply ? { reply: check.reply } : {}), ...(check.mark !== undefined ? { mark: check.mark } : {}), count: check.count };
      if (!entries) return { met: false, expected, observed: 'conntrack was not read' };
      const matching = entries.filter((e) => (!check.proto || e.proto === check.proto) && tupleMatches(e.orig, check.orig) && tupleMatches(e.reply, check.reply)
        && (check.mark === undefined || e.mark === check.mark));
      return { met: countOk(matching.length, check.count), expected, observed: { count: matching.length, entries: (matching.length > 0 ? matching : entries).slice(0, 5).map((e) => e.line), ...(matching.length === 0 && entries.length > 0 ? { note: 'no entry matched; showing others' } : {}) } };
    }
    case 'output': {
      const result = obs.outputs.get(outputKey(check.command.node, check.command.argv));
      const expected = { ...(check.includes ? { includes: check.includes } : {}), ...(check.excludes ? { excludes: check.excludes } : {}) };
      if (!result) return { met: false, expected, observed: 'the command did not run' };
      const text = result.stdout + result.stderr;
      const met = (check.includes ?? []).every((s) => text.includes(s)) && (check.excludes ?? []).every((s) => !text.includes(s));
      return { met, expected, observed: { output: text.trim().split('\n').slice(0, 12) } };
    }
  }
}

type RecentCheck = Extract<Check, { kind: 'recent' }>;

function judgeRecent(check: RecentCheck, obs: StepObservations): Verdict {
  const perBackend = typeof check.lists !== 'string';
  const names = typeof check.lists === 'string' ? [check.lists] : Object.values(check.lists);
  const read = new Map(names.map((list) => [list, obs.recent?.get(recentKey(check.node, list))] as const));
  const observed: Record<string, unknown> = {
    lists: Object.fromEntries([...read].map(([list, r]) => [list, !r ? 'not read' : 'error' in r ? r.error : r.entries.map((e) => `${e.address} (${e.hits} hits)`)])),
  };
  const holders = (address: string) => [...read].filter(([, r]) => r && 'entries' in r && r.entries.some((e) => e.address === address)).map(([list]) => list);
  const unreadable = [...read].filter(([, r]) => !r || 'error' in r).map(([list]) => list);
  const base = { lists: names, ...(check.address ? { address: check.address } : {}) };
  if (unreadable.length > 0) return { met: false, expected: { ...base, expect: check.expect }, observed };
  switch (check.expect) {
    case 'empty':
      return { met: [...read.values()].every((r) => r && 'entries' in r && r.entries.length === 0), expected: { ...base, entries: 0 }, observed };
    case 'lacks':
      return { met: holders(check.address!).length === 0, expected: { ...base, heldBy: [] }, observed };
    case 'has': {
      if (!perBackend) return { met: holders(check.address!).length === 1, expected: { ...base, heldBy: names }, observed };
      const lists = check.lists as Record<string, string>;
      const outcomes = obs.traffic.get(trafficKey(check.chosenBy!))?.tcp ?? [];
      const backends = Object.keys(tally(outcomes.flatMap((o) => (o.answeredBy ? [o.answeredBy] : []))));
      const expected = { ...base, heldBy: `only the list of the backend that answered ${trafficKey(check.chosenBy!)}` };
      observed.chosenBy = backends.length === 0 ? 'no connection was answered' : backends;
      if (backends.length !== 1) return { met: false, expected, observed, reason: 'the traffic was not answered by exactly one backend' };
      const list = lists[backends[0]!];
      if (list === undefined) return { met: false, expected, observed, reason: `no list is given for backend ${backends[0]}` };
      const held = holders(check.address!);
      return { met: held.length === 1 && held[0] === list, expected: { ...expected, list }, observed: { ...observed, heldBy: held } };
    }
  }
}

/** Connections of a traffic item answered by one node; undefined if the traffic did not run. */
function answeredCount(obs: StepObservations, traffic: TcpTraffic, node: string): number | undefined {
  const outcomes = obs.traffic.get(trafficKey(traffic))?.tcp;
  return outcomes && outcomes.filter((o) => o.result === 'connects' && o.answeredBy === node).length;
}

function sumDeltas(found: ReturnType<typeof counterDelta>[]):
  { packets: number; bytes: number; parts: { rule: string; packets: number; bytes: number }[] } | { problem: string } {
  const problem = found.find((f) => 'problem' in f);
  if (problem) return problem;
  const parts = found.map((f) => f as { packets: number; bytes: number; what: string }).map((f) => ({ rule: f.what, packets: f.packets, bytes: f.bytes }));
  return { packets: parts.reduce((a, p) => a + p.packets, 0), bytes: parts.reduce((a, p) => a + p.bytes, 0), parts };
}

function roundShares(shares: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(shares).map(([node, p]) => [node, Math.round(p * 1e4) / 1e4]));
}

function firstError(outcomes: TcpOutcome[]): { error?: string } {
  const e = outcomes.find((o) => o.error)?.error;
  return e ? { error: e } : {};
}

export function countOk(n: number, expected: CountExpectation): boolean {
  if (typeof expected === 'number') return n === expected;
  return (expected.min === undefined || n >= expected.min) && (expected.max === undefined || n <= expected.max);
}

function tally(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

export function packetMatches(p: PacketRecord, m: PacketMatch): boolean {
  return (!m.proto || p.proto === m.proto)
    && (!m.src || p.src === m.src) && (!m.dst || p.dst === m.dst)
    && (m.sport === undefined || p.sport === m.sport) && (m.dport === undefined || p.dport === m.dport)
    && (!m.icmp || p.icmp === m.icmp) && (!m.flags || p.flags === m.flags);
}

function portOk(value: number | undefined, expected: number | { min?: number; max?: number } | undefined): boolean {
  if (expected === undefined) return true;
  if (value === undefined) return false;
  return countOk(value, expected);
}

export function tupleMatches(t: ConntrackTuple, m: TupleMatch | undefined): boolean {
  if (!m) return true;
  return (!m.src || t.src === m.src) && (!m.dst || t.dst === m.dst) && portOk(t.sport, m.sport) && portOk(t.dport, m.dport);
}

/** Packet and byte delta of one rule (found by the lab's words) or of a chain policy across the step. */
export function counterDelta(table: string, chain: string, words: string | undefined, before: SavedRuleset, after: SavedRuleset):
  { packets: number; bytes: number; what: string } | { problem: string } {
  if (words === undefined) {
    const a = after.chains.find((c) => c.table === table && c.chain === chain);
    if (!a) return { problem: `no chain ${table} ${chain}` };
    const b = before.chains.find((c) => c.table === table && c.chain === chain);
    return { packets: a.packets - (b?.packets ?? 0), bytes: a.bytes - (b?.bytes ?? 0), what: `${chain} ${a.policy}` };
  }
  const candidates = after.rules.filter((r) => r.table === table && r.chain === chain && ruleSpecMatches(r.spec, words));
  if (candidates.length === 0) {
    const present = after.rules.filter((r) => r.table === table && r.chain === chain).map((r) => r.spec);
    return { problem: `no rule in ${table} ${chain} matches "${words}"${present.length ? `; the chain holds: ${present.join(' | ')}` : '; the chain is empty'}` };
  }
  // A rule written in full (as the renderer writes it) is that rule, even if it is also a subset of a longer one.
  if (candidates.length > 1) {
    const exact = candidates.filter((r) => ruleSpecMatches(words, r.spec));
    if (exact.length === 1) candidates.splice(0, candidates.length, exact[0]!);
  }
  if (candidates.length > 1) return { problem: `"${words}" matches ${candidates.length} rules in ${table} ${chain}: ${candidates.map((r) => r.spec).join(' | ')}` };
  const rule = candidates[0]!;
  const earlier = before.rules.find((r) => r.table === table && r.chain === chain && r.spec === rule.spec);
  return { packets: rule.packets - (earlier?.packets ?? 0), bytes: rule.bytes - (earlier?.bytes ?? 0), what: `-A ${chain} ${rule.spec}` };
}

function stripTimestamp(line: string): string {
  return line.replace(/^\d{2}:\d{2}:\d{2}\.\d+\s+/, '');
}
