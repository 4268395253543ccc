// Judges a check on what its step observed, through its kind's module; the report carries both
// sides as data, what the check is about, and (when not met) a hint from the evidence.
import type { Check } from '../lab/types.ts';
import type { CheckAbout, CheckReport, StepReport } from '../report/types.ts';
import type { Observations } from './observations.ts';
import { describeCheck, moduleOf } from './registry.ts';

export function aboutOf(check: Check): CheckAbout {
  return check.about ?? moduleOf(check).about(check as never);
}

export function evaluate(check: Check, obs: Observations): CheckReport {
  const module = moduleOf(check);
  const verdict = module.judge(check as never, obs);
  // The evidence first, then the lab's own words.
  const hint = verdict.met
    ? undefined
    : [safeHint(() => module.hint(check as never, verdict as never, obs)), check.hint].filter(Boolean).join(' — ');
  return {
    description: describeCheck(check),
    kind: check.kind,
    about: aboutOf(check),
    status: verdict.met ? 'met' : 'not-met',
    expected: verdict.expected,
    observed: verdict.observed,
    ...(verdict.reason ? { reason: verdict.reason } : {}),
    ...(hint ? { hint } : {}),
  };
}

/** A hint is help, never a verdict: one that cannot be made leaves the report as it is. */
function safeHint(make: () => string | undefined): string | undefined {
  try {
    return make();
  } catch {
    return undefined;
  }
}

/** A check not judged in this run, with why (a sandboxOnly check in a root-namespace run). */
export function skipped(check: Check, reason: string): CheckReport {
  return {
    description: describeCheck(check),
    kind: check.kind,
    about: aboutOf(check),
    status: 'skipped',
    expected: null,
    observed: null,
    reason,
  };
}

/**
 * A step's verdict from its checks. Strict (nflab run, CI): every check met. Lenient (nflab check, a
 * student's own answer): a step whose behaviour checks are all met (and there is at least one) and
 * only reference checks are not is `differs`: it works, in another way than the reference's.
 */
export function stepStatus(checks: CheckReport[], lenient: boolean): StepReport['status'] {
  const notMet = checks.filter((c) => c.status === 'not-met');
  if (notMet.length === 0) return 'passed';
  if (!lenient) return 'failed';
  const behaviour = checks.filter((c) => c.about === 'behaviour' && c.status !== 'skipped');
  return behaviour.length > 0 && notMet.every((c) => c.about === 'reference') ? 'differs' : 'failed';
}
