// The bounds of a lab, checked at validation: every lab command has a time limit, every step has
// one, and the traffic a step asks for must fit in its step's limit by its own settings (so
// `tcp(…, { connections: 10000, timeout: 60 })` is refused at validation instead of running for
// hours). The engine enforces the limits at run time (src/engine/limits.ts).
import type { Lab, Step, Traffic } from '../lab/types.ts';
import { stepTraffic } from '../check/step-needs.ts';

export interface Limits {
  /** Seconds one lab command may take (`conntrack -E` or `ip monitor` never end by themselves). */
  commandSeconds: number;
  /** Seconds one step may take: its commands, traffic, observations and checks. */
  stepSeconds: number;
}

/** Defaults: far above what any lab here needs on a loaded machine (lab 06, whose ~150
 * connections all time out without its set-up, took 7 minutes; lab 12's 100 connections may take
 * 1000 s by their settings), far below a hang of hours. */
export const DEFAULT_LIMITS: Limits = { commandSeconds: 60, stepSeconds: 1800 };
/** What a lab may set a limit to. */
export const MAX_LIMIT_SECONDS = 3600;

/** The limits of a step: its own, then the lab's, then the defaults. */
export function limitsOf(lab: Pick<Lab, 'limits'>, step?: Pick<Step, 'limits'>): Limits {
  return { ...DEFAULT_LIMITS, ...definedOnly(lab.limits), ...definedOnly(step?.limits) };
}

function definedOnly(l: Partial<Limits> | undefined): Partial<Limits> {
  return Object.fromEntries(Object.entries(l ?? {}).filter(([, v]) => v !== undefined));
}

/** Problems of a `limits` field (lab or step), as "field: what". */
export function limitFieldProblems(limits: unknown): string[] {
  if (limits === undefined) return [];
  if (typeof limits !== 'object' || limits === null || Array.isArray(limits))
    return ['field "limits" must be { commandSeconds?, stepSeconds? }'];
  const problems: string[] = [];
  for (const [field, value] of Object.entries(limits)) {
    if (value === undefined) continue;
    if (!(typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= MAX_LIMIT_SECONDS)) {
      problems.push(
        `field "limits.${field}" must be a number of seconds in (0, ${MAX_LIMIT_SECONDS}] (got ${JSON.stringify(value)})`,
      );
    }
  }
  return problems;
}

/** The longest a traffic item can take by its own settings, when nothing answers (seconds). */
export function worstCaseSeconds(t: Traffic): number {
  switch (t.kind) {
    case 'ping':
      return ((t.count ?? 1) - 1) * 0.2 + (t.wait ?? 1) + 1;
    // The client waits up to `timeout` to connect, then up to `timeout` for the answer (socat -T).
    case 'tcp':
      return (t.connections ?? 1) * 2 * (t.timeout ?? 2);
    case 'udp':
      return (t.count ?? 1) * 1;
  }
}

/** A step whose traffic cannot fit in its limit even when every reply comes at once is refused. */
// (Reachability checks are left out: their duration depends on the target's CPUs, which set how many
// sources ping at once, and each ping ends within its wait of at most 30 s.)
export function trafficBoundProblem(traffic: Traffic[], limits: Limits): string | undefined {
  const seconds = traffic.reduce((sum, t) => sum + worstCaseSeconds(t), 0);
  if (seconds <= limits.stepSeconds) return undefined;
  const worst = [...traffic].sort((a, b) => worstCaseSeconds(b) - worstCaseSeconds(a))[0];
  return (
    `its traffic may take up to ${Math.round(seconds)} s when nothing answers, more than the step's limit of ${limits.stepSeconds} s` +
    `${worst ? ` (the longest: ${worst.kind} from ${worst.from} to ${worst.to}, up to ${Math.round(worstCaseSeconds(worst))} s)` : ''}` +
    '; send less traffic, shorten its timeout, or raise limits.stepSeconds'
  );
}

/** Validation (exit 2): the limits a lab sets, and each step's traffic against its step's limit. */
export function boundProblems(lab: Lab): string[] {
  const problems = limitFieldProblems(lab.limits);
  lab.steps.forEach((step, i) => {
    const where = `step ${i + 1} "${step.title}"`;
    const own = limitFieldProblems(step.limits);
    problems.push(...own.map((p) => `${where}: ${p}`));
    if (own.length > 0 || problems.length > 0) return;
    const bound = trafficBoundProblem(stepTraffic(step), limitsOf(lab, step));
    if (bound) problems.push(`${where}: ${bound}`);
  });
  return problems;
}
