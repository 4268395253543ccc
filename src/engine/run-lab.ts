// Runs one lab from build to teardown. Teardown always happens unless the run is kept (up).
import type { DriverKind, Lab } from '../lab/types.ts';
import type { Executor } from '../exec/types.ts';
import type { LabReport, StepReport } from '../report/types.ts';
import { Sandbox } from './sandbox.ts';
import { runStep } from './step.ts';
import type { RunRecord } from './journal.ts';
import { EnvError, Interrupted, LabSkipped, errorCode } from '../errors.ts';
import { assertNoLegacyRulesInNodes } from './preflight.ts';
import { resolveLab } from '../resolve/resolve-lab.ts';
import type { PlanLine } from '../resolve/plan-display.ts';
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
  /** --pcap DIR: keep every step's captures as pcap files there (named by lab, step, node, interface). */
  pcapDir?: string;
  /** verify-lab: stop after this step (0-based), run with its commands left out (verify-lab.ts). */
  withoutCommandsAt?: number;
  /** nflab reset: build again under the run id the lab had (default: a new one). */
  runId?: string;
}

export type RunEvent =
  | { type: 'lab-start'; lab: Lab; runId: string }
  | { type: 'built'; lab: Lab; ms: number }
  | { type: 'step-start'; lab: Lab; index: number; title: string }
  | { type: 'step-end'; lab: Lab; index: number; report: StepReport }
  | { type: 'lab-end'; lab: Lab; report: LabReport };

export interface RunOutcome {
  report: LabReport;
  /** The build plan's items as the engine executed them, as a person types them. */
  buildLog: PlanLine[];
  /** Present when the sandbox was kept for hands-on work. */
  kept?: { record: RunRecord; sandbox: Sandbox };
}

export async function runLab(lab: Lab, options: RunOptions): Promise<RunOutcome> {
  const started = Date.now();
  const resolved = resolveLab(lab, { driver: options.driver, rootNamespace: options.rootNamespace });
  const rootNode = resolved.rootNode;
  const sandbox = new Sandbox(resolved, options.exec, {
    ...(options.runId ? { runId: options.runId } : {}),
    image: options.image,
    kept: options.keepAfterStep !== undefined,
    iptables: options.iptables,
  });
  const aborted = options.aborted ?? (() => false);
  const report: LabReport = {
    id: lab.id,
    title: lab.title,
    status: 'passed',
    driver: options.driver,
    target: options.exec.name,
    runId: sandbox.runId,
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    ...(rootNode ? { rootNamespace: rootNode } : {}),
    iptables: options.iptables ?? 'nft',
    ...(lab.kubeProxy ? { kubeProxy: lab.kubeProxy.options.era } : {}),
    steps: [],
  };
  options.onEvent?.({ type: 'lab-start', lab, runId: sandbox.runId });
  let kept: RunOutcome['kept'];
  try {
    // The kernel that produced the evidence: the target's, which over SSH is not this machine's.
    report.kernel = (await options.exec.run(['uname', '-r'])).stdout.trim() || undefined;
    const builtAt = Date.now();
    await sandbox.build();
    // Under iptables-legacy the lab's own rules are the legacy ones: nothing to warn about.
    if ((options.iptables ?? 'nft') === 'nft')
      await assertNoLegacyRulesInNodes(options.exec, Object.keys(lab.topology.nodes), (node, argv) =>
        sandbox.node(node).observerArgv(argv),
      );
    options.onEvent?.({ type: 'built', lab, ms: Date.now() - builtAt });
    const lastStep = Math.min(
      options.keepAfterStep ?? (options.withoutCommandsAt ?? lab.steps.length - 1) + 1,
      lab.steps.length,
    );
    for (let i = 0; i < lastStep; i++) {
      if (aborted()) throw new Interrupted();
      const step = lab.steps[i]!;
      options.onEvent?.({ type: 'step-start', lab, index: i, title: step.title });
      const stepReport = await runStep(sandbox, step, aborted, {
        keepObservations: options.keepObservations,
        applyCommands: i !== options.withoutCommandsAt,
        ...(options.pcapDir ? { pcap: { dir: options.pcapDir, prefix: `${lab.id}-step${i + 1}` } } : {}),
      });
      report.steps.push(stepReport);
      options.onEvent?.({ type: 'step-end', lab, index: i, report: stepReport });
      // A step that did not finish (a limit): what later steps would see depends on it.
      // A step stopped by a time limit: the lab could not be run (status error), not a check not met.
      if (stepReport.status === 'error') {
        report.status = 'error';
        report.reason = `step ${i + 1}: ${stepReport.reason}`;
        report.error = { code: 'limit-reached', message: report.reason };
        break;
      }
    }
    if (report.status !== 'error' && report.steps.some((s) => s.status === 'failed')) report.status = 'failed';
    if (options.keepAfterStep !== undefined) kept = { record: sandbox.keep(lastStep), sandbox };
  } catch (err) {
    if (err instanceof LabSkipped) {
      report.status = 'skipped';
      report.reason = err.message;
    } else if (aborted() || err instanceof Interrupted) {
      // Killing the observers on a signal looks like any other failure: the signal is what happened.
      report.status = 'interrupted';
      report.reason = 'interrupted';
    } else {
      // The environment cannot run the lab (no Docker engine, ...): that is exit 3, not a verdict.
      if (err instanceof EnvError) {
        await sandbox.teardown();
        throw err;
      }
      // The lab could not be built or run (a setup command failed, a link never came up): no check
      // was judged wrong, so this is `error`, not `failed`.
      report.status = 'error';
      report.reason = (err as Error).message;
      report.error = { code: errorCode(err), message: (err as Error).message };
    }
  } finally {
    if (!kept) await sandbox.teardown();
    report.durationMs = Date.now() - started;
  }
  options.onEvent?.({ type: 'lab-end', lab, report });
  return { report, kept, buildLog: sandbox.log };
}
