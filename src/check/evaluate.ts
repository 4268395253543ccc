// Judges a check on what its step observed, through its kind's module; the report carries both
// sides as data.
import type { Check } from '../lab/types.ts';
import type { CheckReport } from '../report/types.ts';
import type { Observations } from './observations.ts';
import { describeCheck, moduleOf } from './registry.ts';

export function evaluate(check: Check, obs: Observations): CheckReport {
  const verdict = moduleOf(check).judge(check as never, obs);
  return { description: describeCheck(check), kind: check.kind, status: verdict.met ? 'met' : 'not-met', expected: verdict.expected, observed: verdict.observed, ...(verdict.reason ? { reason: verdict.reason } : {}) };
}

/** A check not judged in this run, with why (a sandboxOnly check in a root-namespace run). */
export function skipped(check: Check, reason: string): CheckReport {
  return { description: describeCheck(check), kind: check.kind, status: 'skipped', expected: null, observed: null, reason };
}
