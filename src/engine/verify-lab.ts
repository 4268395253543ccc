// Checks that can fail (nflab verify-lab). A check that is met whether or not its step's commands
// ran verifies nothing. For every step N with commands: build the lab, apply steps 1..N-1 fully,
// run step N with its own commands left out, and require at least one of its checks to be not
// met. The lab run as written (every step applied) is the baseline: a check counts as noticing
// only when it is met with the commands and not met without them.
import type { Lab } from '../lab/types.ts';
import type { CheckReport, LabReport, StepReport } from '../report/types.ts';
import { mapLimit } from '../exec/pool.ts';
import { runLab, type RunOptions } from './run-lab.ts';

export type StepVerdict =
  /** At least one check is not met without the step's commands. */
  | 'noticed'
  /** Every check is still met without the step's commands: none of them notices the step. */
  | 'unnoticed'
  /** The step has no commands (it only observes): nothing to leave out. */
  | 'no-commands'
  /** No verdict: the baseline or the run without commands did not get as far as this step. */
  | 'error';

export interface StepVerification {
  /** 1-based, as people count steps. */
  step: number;
  title: string;
  verdict: StepVerdict;
  /** The checks that were met with the commands and are not met without them. */
  noticed: string[];
  /** The checks that are met without the commands too (they did not notice the step). */
  unnoticed: string[];
  /** Why there is no verdict (verdict 'error'). */
  reason?: string;
  /** The step as it ran with its commands left out. */
  withoutCommands?: StepReport;
  /** The run that left the commands out. */
  runId?: string;
}

export interface LabVerification {
  id: string;
  title: string;
  /** verified: every step with commands is noticed; unverified: some step is not; skipped: the
   * target cannot run the lab; failed: the lab does not pass as written, or a run broke off. */
  status: 'verified' | 'unverified' | 'skipped' | 'failed';
  reason?: string;
  target: string;
  /** The run of the lab as written. */
  baselineRunId: string;
  durationMs: number;
  steps: StepVerification[];
}

export interface VerifyOptions extends Omit<
  RunOptions,
  'withoutCommandsAt' | 'keepAfterStep' | 'onEvent' | 'rootNamespace'
> {
  /** Runs of the lab at once (each in its own sandbox). */
  parallel?: number;
  /** Only these steps (1-based); default every step. */
  steps?: number[];
  /** Called once per finished run: the baseline (step undefined) or the run without step N's commands. */
  onRun?: (lab: Lab, step: number | undefined, report: LabReport) => void;
}

/** The checks of a step report that belong to the step's expectations (command failures come first). */
function expectationReports(lab: Lab, index: number, report: StepReport): CheckReport[] {
  const n = lab.steps[index]!.expect?.length ?? 0;
  return n === 0 ? [] : report.checks.slice(-n);
}

export async function verifyLab(lab: Lab, options: VerifyOptions): Promise<LabVerification> {
  const started = Date.now();
  const chosen = (i: number) => options.steps === undefined || options.steps.includes(i + 1);
  const withCommands = lab.steps.flatMap((s, i) => ((s.run ?? []).length > 0 && chosen(i) ? [i] : []));
  // The baseline first: when the lab does not pass as written, the other runs say nothing.
  const baseline = await runLab(lab, { ...options, rootNamespace: false });
  options.onRun?.(lab, undefined, baseline.report);
  const result: LabVerification = {
    id: lab.id,
    title: lab.title,
    status: 'verified',
    target: options.exec.name,
    baselineRunId: baseline.report.runId,
    durationMs: 0,
    steps: [],
  };
  const done = (status: LabVerification['status'], reason?: string): LabVerification => ({
    ...result,
    status,
    ...(reason ? { reason } : {}),
    durationMs: Date.now() - started,
  });
  if (baseline.report.status === 'skipped') return done('skipped', baseline.report.reason);
  if (baseline.report.status !== 'passed') {
    const notMet = baseline.report.steps.findIndex((s) => s.status === 'failed');
    return done(
      'failed',
      `the lab does not pass as written${notMet >= 0 ? ` (step ${notMet + 1} has a check not met)` : ''}${baseline.report.reason ? `: ${baseline.report.reason}` : ''}`,
    );
  }

  const runs = await mapLimit(withCommands, options.parallel ?? 1, async (index) => {
    if (options.aborted?.()) return undefined;
    const { report } = await runLab(lab, { ...options, rootNamespace: false, withoutCommandsAt: index });
    options.onRun?.(lab, index + 1, report);
    return report;
  });
  const byIndex = new Map(withCommands.map((index, k) => [index, runs[k]] as const));

  for (const [index, step] of lab.steps.entries()) {
    if (!chosen(index)) continue;
    let base: StepVerification = {
      step: index + 1,
      title: step.title,
      verdict: 'no-commands',
      noticed: [],
      unnoticed: [],
    };
    if (!byIndex.has(index)) {
      result.steps.push(base);
      continue;
    }
    const report = byIndex.get(index);
    if (report) base = { ...base, runId: report.runId };
    const without = report?.steps[index];
    if (!report || !without) {
      result.steps.push({ ...base, verdict: 'error', reason: report?.reason ?? 'interrupted' });
      continue;
    }
    const prefixFailed = report.steps.slice(0, index).findIndex((s) => s.status === 'failed');
    if (prefixFailed >= 0) {
      result.steps.push({
        ...base,
        verdict: 'error',
        reason: `step ${prefixFailed + 1} did not pass this time, so step ${index + 1} started from another state`,
        withoutCommands: without,
      });
      continue;
    }
    const expected = expectationReports(lab, index, baseline.report.steps[index]!);
    const observed = expectationReports(lab, index, without);
    const noticed = observed
      .filter((c, k) => c.status === 'not-met' && expected[k]?.status === 'met')
      .map((c) => c.description);
    const unnoticed = observed.filter((c) => c.status === 'met').map((c) => c.description);
    result.steps.push({
      ...base,
      verdict: noticed.length > 0 ? 'noticed' : 'unnoticed',
      noticed,
      unnoticed,
      withoutCommands: without,
    });
  }
  if (result.steps.some((s) => s.verdict === 'error'))
    return done('failed', "a run without a step's commands broke off or started from another state");
  return done(result.steps.some((s) => s.verdict === 'unnoticed') ? 'unverified' : 'verified');
}
