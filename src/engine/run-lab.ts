// Runs one lab from build to teardown. Teardown always happens unless the run is kept (up).
import type { DriverKind, Lab } from '../lab/types.ts';
import type { Executor } from '../exec/types.ts';
import type { LabReport, StepReport } from '../report/types.ts';
import { Sandbox } from './sandbox.ts';
import { runStep } from './step.ts';
import { missingFeature } from '../lab/features.ts';
import type { RunRecord } from './journal.ts';
import { EnvError } from '../errors.ts';
import { assertNoLegacyRulesInNodes } from './preflight.ts';
import { rootNodeOf } from './root-namespace.ts';
import type { IptablesBackend } from './iptables-backend.ts';

export interface RunOptions {
  exec: Executor;
  driver: DriverKind;
  image?: string;
  /** Stop after this many steps (1-based) and keep the sandbox running (nflab up). */
  keepAfterStep?: number;
  /** Called as the run progresses, for the terminal. */
  onEvent?: (event: RunEvent) => void;
  /** Set when the user interrupts: the run stops at the next command and tears down. */
  aborted?: () => boolean;
  /** Run the lab's host node as the target's own root namespace (root-namespace.ts). */
  rootNamespace?: boolean;
  /** iptables-nft (default) or iptables-legacy for every iptables command of the lab (--iptables). */
  iptables?: IptablesBackend;
  /** Keep each step's raw observations in the report (nflab run --record). */
  keepObservations?: boolean;
}

export type RunEvent =
  | { type: 'lab-start'; lab: Lab; runId: string }
  | { type: 'built'; lab: Lab; ms: number }
  | { type: 'step-start'; lab: Lab; index: number; title: string }
  | { type: 'step-end'; lab: Lab; index: number; report: StepReport }
  | { type: 'lab-end'; lab: Lab; report: LabReport };

export interface RunOutcome {
  report: LabReport;
  /** Present when the sandbox was kept for hands-on work. */
  kept?: { record: RunRecord; sandbox: Sandbox };
}

/** The target's kernel lacks a feature the lab requires: a skip with the reason, never a failure. */
class LabSkipped extends Error {}

export async function runLab(lab: Lab, options: RunOptions): Promise<RunOutcome> {
  const started = Date.now();
  const rootNode = options.rootNamespace ? rootNodeOf(lab) : undefined;
  const sandbox = new Sandbox(lab, options.exec, { driver: options.driver, image: options.image, kept: options.keepAfterStep !== undefined, rootNode, iptables: options.iptables });
  const aborted = options.aborted ?? (() => false);
  const report: LabReport = {
    id: lab.id, title: lab.title, status: 'passed', driver: options.driver, target: options.exec.name,
    runId: sandbox.runId, startedAt: new Date(started).toISOString(), durationMs: 0, ...(rootNode ? { rootNamespace: rootNode } : {}), iptables: options.iptables ?? 'nft', steps: [],
  };
  options.onEvent?.({ type: 'lab-start', lab, runId: sandbox.runId });
  let kept: RunOutcome['kept'];
  try {
    // The kernel that produced the evidence: the target's, which over SSH is not this machine's.
    report.kernel = (await options.exec.run(['uname', '-r'])).stdout.trim() || undefined;
    const builtAt = Date.now();
    await sandbox.build(async () => {
      const hostNode = Object.keys(lab.topology.nodes).find((n) => sandbox.kindOf(n) === 'netns')!;
      for (const feature of lab.requires ?? []) {
        const reason = await missingFeature(options.exec, (argv) => sandbox.wrap(hostNode, argv), feature);
        if (reason) throw new LabSkipped(reason);
      }
    });
    // Under iptables-legacy the lab's own rules are the legacy ones: nothing to warn about.
    if ((options.iptables ?? 'nft') === 'nft') await assertNoLegacyRulesInNodes(options.exec, sandbox.plan.nodes, (node, argv) => sandbox.observerWrap(node, argv));
    options.onEvent?.({ type: 'built', lab, ms: Date.now() - builtAt });
    const lastStep = Math.min(options.keepAfterStep ?? lab.steps.length, lab.steps.length);
    for (let i = 0; i < lastStep; i++) {
      if (aborted()) throw new Error('interrupted');
      const step = lab.steps[i]!;
      options.onEvent?.({ type: 'step-start', lab, index: i, title: step.title });
      const stepReport = await runStep(sandbox, step, aborted, { keepObservations: options.keepObservations });
      report.steps.push(stepReport);
      options.onEvent?.({ type: 'step-end', lab, index: i, report: stepReport });
    }
    if (report.steps.some((s) => s.status === 'failed')) report.status = 'failed';
    if (options.keepAfterStep !== undefined) kept = { record: sandbox.keep(lastStep), sandbox };
  } catch (err) {
    if (err instanceof LabSkipped) {
      report.status = 'skipped';
      report.reason = err.message;
    } else {
      // The environment cannot run the lab (no Docker engine, ...): that is exit 3, not a verdict.
      // (Unless the user interrupted: killing the observers then looks like an environment problem.)
    if (err instanceof EnvError && !aborted()) { await sandbox.teardown(); throw err; }
      report.status = 'failed';
      report.reason = aborted() ? 'interrupted' : (err as Error).message;
    }
  } finally {
    if (!kept) await sandbox.teardown();
    report.durationMs = Date.now() - started;
  }
  options.onEvent?.({ type: 'lab-end', lab, report });
  return { report, kept };
}
