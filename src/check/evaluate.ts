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

export interface StepObservations {
  traffic: Map<string, TrafficResult>;
  captures: Map<string, { packets: PacketRecord[]; error?: string }>;
  countersBefore: Map<string, SavedRuleset>;
  countersAfter: Map<string, SavedRuleset>;
  conntrack: Map<string, ConntrackEntry[]>;
  outputs: Map<string, RunResult>;
}

export const captureKey = (node: string, iface: string) => `${node}:${iface}`;
export const outputKey = (node: string, argv: string[]) => `${node}\0${argv.join('\0')}`;

export function evaluate(check: Check, obs: StepObservations): CheckReport {
  const description = check.description ?? describeCheck(check);
  const verdict = judge(check, obs);
  return { description, kind: check.kind, status: verdict.met ? 'met' : 'not-met', expected: verdict.expected, observed: verdict.observed, ...(verdict.reason ? { reason: verdict.reason } : {}) };
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
      return { met: outcomeOk && errorOk, expected, observed };
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
      const expected = { ...(check.packets !== undefined ? { packets: check.packets } : {}), ...(check.bytes !== undefined ? { bytes: check.bytes } : {}) };
      if (!before || !after) return { met: false, expected, observed: 'the counters were not read' };
      const found = counterDelta(check.table, check.chain, check.rule, before, after);
      if ('problem' in found) return { met: false, expected, observed: found.problem };
      const met = (check.packets === undefined || countOk(found.packets, check.packets)) && (check.bytes === undefined || countOk(found.bytes, check.bytes));
      return { met, expected, observed: { packets: found.packets, bytes: found.bytes, [check.rule ? 'rule' : 'policy']: found.what } };
    }
    case 'conntrack': {
      const entries = obs.conntrack.get(check.node);
      const expected = { ...(check.proto ? { proto: check.proto } : {}), ...(check.orig ? { orig: check.orig } : {}), ...(check.reply ? { reply: check.reply } : {}), count: check.count };
      if (!entries) return { met: false, expected, observed: 'conntrack was not read' };
      const matching = entries.filter((e) => (!check.proto || e.proto === check.proto) && tupleMatches(e.orig, check.orig) && tupleMatches(e.reply, check.reply));
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
  if (candidates.length > 1) return { problem: `"${words}" matches ${candidates.length} rules in ${table} ${chain}: ${candidates.map((r) => r.spec).join(' | ')}` };
  const rule = candidates[0]!;
  const earlier = before.rules.find((r) => r.table === table && r.chain === chain && r.spec === rule.spec);
  return { packets: rule.packets - (earlier?.packets ?? 0), bytes: rule.bytes - (earlier?.bytes ?? 0), what: `-A ${chain} ${rule.spec}` };
}

function stripTimestamp(line: string): string {
  return line.replace(/^\d{2}:\d{2}:\d{2}\.\d+\s+/, '');
}
