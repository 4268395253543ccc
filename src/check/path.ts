// Path checks: which tables, chains and rules a traced packet went through in a node, compared
// with the hops a lab expects. Hops are compared as the short strings describeHop() writes
// (`nat PREROUTING: DNAT`, `filter FORWARD: policy DROP`), the same strings the report shows.
import type { Check, PathFilter } from '../lab/types.ts';
import type { TraceHop } from '../observe/parse-trace.ts';
import { describeHop, hopsByPacket } from '../observe/trace.ts';
import { ruleSpecMatches } from '../observe/parse-iptables-save.ts';
import type { TraceObservation } from './observations.ts';

type PathCheck = Extract<Check, { kind: 'path' }>;

/** `[family ]<table> <CHAIN>[: [policy ]<target>]`: the family is left out for ip, as describeHop writes it. */
export const HOP_FORM =
  /^(?:(?:bridge|ip6|arp|inet|netdev) )?[a-z]+ [A-Za-z0-9_.-]+?(?:: (?:policy )?[A-Za-z0-9_.-]+)?$/;

/** How many packets' paths a report shows at most. */
const SHOWN_PACKETS = 10;

/** A hop written in a lab matches an observed hop string: the same hop, or any hop of the chain it names. */
export function hopMatches(pattern: string, observed: string): boolean {
  return pattern.includes(': ') ? observed === pattern : observed.startsWith(`${pattern}: `);
}

/** Whether `wanted` appear in `path` in order; with `exact`, the path is `wanted` and nothing else
 * but hops marked `optional` (which an exact path may name or leave out). */
export function pathFollows(path: string[], wanted: string[], exact = false, optional: boolean[] = []): boolean {
  if (exact) {
    let at = 0;
    for (let i = 0; i < path.length; i++) {
      if (at < wanted.length && hopMatches(wanted[at]!, path[i]!)) at++;
      else if (!optional[i]) return false;
    }
    return at === wanted.length;
  }
  let at = 0;
  for (const hop of path) if (at < wanted.length && hopMatches(wanted[at]!, hop)) at++;
  return at === wanted.length;
}

/** The rule of a hop without `-A CHAIN`, as counter checks match rule words against it. */
function ruleSpec(hop: TraceHop): string | undefined {
  return hop.rule?.replace(/^-A\s+\S+\s*/, '');
}

function safeRuleMatch(spec: string, words: string): boolean {
  try {
    return ruleSpecMatches(spec, words);
  } catch {
    return false;
  }
}

/** A return event without a rule: kernel 6.1 reports both an explicit `-j RETURN` and falling off a
 * user chain's end this way (newer kernels: the rule, and nothing). Which one it was cannot be told,
 * so an exact path may leave it out. */
export function ambiguousReturn(hop: TraceHop): boolean {
  return hop.verdict === 'RETURN' && hop.handle === undefined && !hop.policy;
}

/** Why one packet's path does not satisfy the check, or undefined when it does. */
function pathProblem(check: PathCheck, packet: TraceHop[], label: string): string | undefined {
  const path = packet.map(describeHop);
  if (check.through && !pathFollows(path, check.through, check.exact, packet.map(ambiguousReturn))) {
    const missing = check.exact ? undefined : firstMissing(path, check.through);
    return `${label} went ${path.join(' → ') || '(no hop)'}${check.exact ? ', not exactly the expected hops' : `, not through ${missing}${check.through.length > 1 ? ' in the expected order' : ''}`}`;
  }
  const forbidden = (check.notThrough ?? []).find((w) => path.some((hop) => hopMatches(w, hop)));
  if (forbidden) return `${label} went through ${forbidden}`;
  if (
    check.rule !== undefined &&
    !packet.some((hop) => ruleSpec(hop) !== undefined && safeRuleMatch(ruleSpec(hop)!, check.rule!))
  ) {
    return `${label} matched no rule like "${check.rule}"`;
  }
  return undefined;
}

function firstMissing(path: string[], wanted: string[]): string {
  let at = 0;
  for (const hop of path) if (at < wanted.length && hopMatches(wanted[at]!, hop)) at++;
  return wanted[at] ?? wanted[0]!;
}

export function judgePath(
  check: PathCheck,
  trace: TraceObservation | undefined,
): { met: boolean; expected: unknown; observed: unknown; reason?: string } {
  const which = check.packet ?? 'first';
  const expected = {
    packet: which,
    ...(check.through ? { through: check.through } : {}),
    ...(check.exact ? { exact: true } : {}),
    ...(check.notThrough ? { notThrough: check.notThrough } : {}),
    ...(check.rule !== undefined ? { rule: check.rule } : {}),
  };
  if (!trace) return { met: false, expected, observed: 'no trace ran' };
  if ('error' in trace) return { met: false, expected, observed: { error: trace.error } };
  const packets = hopsByPacket(trace.hops);
  const paths = packets.map((p) => p.map(describeHop));
  const observed: Record<string, unknown> = { packets: paths.slice(0, SHOWN_PACKETS) };
  if (paths.length > SHOWN_PACKETS) observed.traced = paths.length;
  if (trace.problems.length > 0) observed.problems = trace.problems;

  const judged: [TraceHop[], string][] =
    which === 'each'
      ? packets.map((p, i) => [p, `packet ${i + 1}`])
      : (() => {
          const n = which === 'first' ? 1 : which;
          const p = packets[n - 1];
          return p ? [[p, `packet ${n}`]] : [];
        })();
  if (check.rule !== undefined) observed.rules = judged.flatMap(([p]) => p.flatMap((h) => (h.rule ? [h.rule] : [])));
  if (judged.length === 0) {
    const reason =
      paths.length === 0 ? 'no packet matching the filter was traced' : `only ${paths.length} packet(s) were traced`;
    return { met: false, expected, observed, reason };
  }
  const problems = judged.map(([p, label]) => pathProblem(check, p, label)).filter((x): x is string => x !== undefined);
  return {
    met: problems.length === 0,
    expected,
    observed,
    ...(problems.length > 0 ? { reason: problems.slice(0, 3).join('; ') } : {}),
  };
}

/** `icmp packet from 10.55.66.2 to 10.55.66.3`: the filter in words, around the noun given. */
export function filterWords(f: PathFilter, noun = 'packet'): string {
  const port = (p: number | undefined) => (p === undefined ? '' : `:${p}`);
  const parts = [
    f.proto ?? '',
    noun,
    f.src || f.sport ? `from ${f.src ?? '*'}${port(f.sport)}` : '',
    f.dst || f.dport ? `to ${f.dst ?? '*'}${port(f.dport)}` : '',
  ];
  return parts.filter(Boolean).join(' ');
}

export function describePath(check: PathCheck): string {
  const which = check.packet ?? 'first';
  const subject =
    which === 'each'
      ? `every ${filterWords(check.filter)}`
      : which === 'first'
        ? `the first ${filterWords(check.filter)}`
        : `${filterWords(check.filter)} number ${which}`;
  const parts: string[] = [];
  if (check.through) parts.push(`goes ${check.exact ? 'exactly ' : ''}through ${check.through.join(' → ')}`);
  if (check.notThrough) parts.push(`${check.through ? 'and ' : ''}never through ${check.notThrough.join(', ')}`);
  if (check.rule !== undefined) parts.push(`${parts.length ? 'and ' : ''}matches the rule "${check.rule}"`);
  return `on ${check.node}, ${subject} ${parts.join(' ')}`;
}
