// The shape `nflab run --json` prints; handouts and JUnit reports are rendered from it.

export type CheckStatus = 'met' | 'not-met' | 'skipped';

export interface CheckReport {
  description: string;
  kind: string;
  status: CheckStatus;
  expected: unknown;
  observed: unknown;
  /** What decided the verdict when it is not obvious (e.g. 'policy counter grew: not waiting for timeout'). */
  reason?: string;
  /** behaviour (reachability, what is seen where, translation, path, a conntrack tuple) or reference (the reference answer's own rule or text). */
  about?: CheckAbout;
  /** A check not met: why, from what was observed (a hop, a counter, an interface), then the lab's own hint. */
  hint?: string;
}

export type CheckAbout = 'behaviour' | 'reference';

export interface CommandReport {
  node: string;
  /** The command as a person types it for the chosen driver. */
  display: string;
  exitCode: number | null;
  output?: string;
}

export interface StepReport {
  title: string;
  teaches?: string;
  /** error: the step did not finish (a time limit was hit); `reason` says which command.
   * differs (nflab check only, never nflab run): every behaviour check met, a reference check not. */
  status: 'passed' | 'differs' | 'failed' | 'skipped' | 'error';
  reason?: string;
  commands: CommandReport[];
  checks: CheckReport[];
  durationMs: number;
  /** With `nflab run --record`: the step's raw observations (traffic, packets, counters, conntrack, outputs, traces). */
  observations?: Record<string, unknown>;
}

/** passed: every check met; failed: a check not met; skipped: the kernel lacks a feature;
 * error: the lab could not be built or run; interrupted: a signal stopped it; not-run: a signal
 * stopped an earlier lab of the same `run`. */
export type LabStatus = 'passed' | 'failed' | 'skipped' | 'error' | 'interrupted' | 'not-run';

export interface LabReport {
  id: string;
  title: string;
  status: LabStatus;
  /** Why the lab was skipped, or what went wrong outside the checks. */
  reason?: string;
  /** With status `error`: the error's stable code (src/errors.ts) and message. */
  error?: { code: string; message: string };
  driver: string;
  target: string;
  runId: string;
  startedAt: string;
  durationMs: number;
  kernel?: string;
  /** --root-namespace: this lab node was the target's own root namespace (else every node was a namespace or container of the run). */
  rootNamespace?: string;
  /** The iptables backend the lab's commands ran (--iptables): 'nft' or 'legacy'. */
  iptables?: 'nft' | 'legacy';
  /** The kube-proxy profile a Kubernetes lab's rules were rendered with (--kube-proxy). */
  kubeProxy?: string;
  steps: StepReport[];
}

export interface RunReport {
  labs: LabReport[];
}
