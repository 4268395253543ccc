// One step: start the observers its checks need, apply its commands, drive its traffic, read
// the evidence, and judge every check.
import type { Check, Step, Traffic } from '../lab/types.ts';
import type { CheckReport, CommandReport, StepReport } from '../report/types.ts';
import type { Sandbox } from './sandbox.ts';
import { startCapture, type Capture } from '../observe/capture.ts';
import { parseIptablesSave } from '../observe/parse-iptables-save.ts';
import { parseConntrack } from '../observe/parse-conntrack.ts';
import { runTraffic, trafficKey } from '../traffic/run.ts';
import { captureKey, evaluate, outputKey, type StepObservations } from '../check/evaluate.ts';

/** Traffic a step sends: its explicit `send` list, then the traffic of its reachability checks. */
export function stepTraffic(step: Step): Traffic[] {
  const all = [...(step.send ?? []), ...(step.expect ?? []).flatMap((c) => (c.kind === 'ping' || c.kind === 'tcp' ? [c.traffic] : []))];
  const seen = new Set<string>();
  return all.filter((t) => !seen.has(trafficKey(t)) && seen.add(trafficKey(t)));
}

function nodesFor(checks: Check[], kind: 'counter' | 'conntrack'): string[] {
  return [...new Set(checks.flatMap((c) => (c.kind === kind ? [c.node] : [])))];
}

export async function runStep(sandbox: Sandbox, step: Step, aborted: () => boolean): Promise<StepReport> {
  const started = Date.now();
  const checks = step.expect ?? [];
  const obs: StepObservations = { traffic: new Map(), captures: new Map(), countersBefore: new Map(), countersAfter: new Map(), conntrack: new Map(), outputs: new Map() };
  const commands: CommandReport[] = [];
  const failures: CheckReport[] = [];

  const captureTargets = [...new Map(checks.flatMap((c) => (c.kind === 'packets' ? [[captureKey(c.node, c.iface), c] as const] : []))).values()];
  const counterNodes = nodesFor(checks, 'counter');
  const readCounters = (into: Map<string, ReturnType<typeof parseIptablesSave>>) => Promise.all(counterNodes.map(async (node) => {
    const r = await sandbox.exec.run(sandbox.wrap(node, ['iptables-save', '-c']));
    into.set(node, parseIptablesSave(r.stdout));
  }));

  // Commands first: observers measure the step's traffic. (Commands can also reset counters:
  // `iptables -P` on the nf_tables backend zeroes the chain's policy counter.)
  for (const command of step.run ?? []) {
    if (aborted()) throw new Error('interrupted');
    const r = await sandbox.run(command);
    const report: CommandReport = { node: command.node, display: sandbox.display(command), exitCode: r.code, ...(r.stdout.trim() || r.stderr.trim() ? { output: (r.stdout + r.stderr).trim() } : {}) };
    commands.push(report);
    const failed = r.code !== 0;
    if (failed !== (command.expectFailure ?? false)) {
      failures.push({ description: `command ${command.expectFailure ? 'is refused' : 'succeeds'}: ${report.display}`, kind: 'command', status: 'not-met', expected: { exitCode: command.expectFailure ? 'non-zero' : 0 }, observed: { exitCode: r.code, output: report.output } });
    }
  }
  await readCounters(obs.countersBefore);
  const captures: Capture[] = await Promise.all(captureTargets.map((c) =>
    startCapture(sandbox.exec, (argv) => sandbox.observerWrap(c.node, argv), c.node, c.iface)));
  try {
    for (const t of stepTraffic(step)) {
      if (aborted()) throw new Error('interrupted');
      const result = await runTraffic(sandbox.exec, (node, argv) => sandbox.wrap(node, argv), (node, argv) => sandbox.display({ node, argv }), t);
      obs.traffic.set(trafficKey(t), result);
      commands.push({ node: t.from, display: result.display, exitCode: null, output: summarizeTraffic(result) });
    }
  } finally {
    await Promise.all(captures.map(async (c) => obs.captures.set(captureKey(c.node, c.iface), await c.stop())));
  }
  await readCounters(obs.countersAfter);
  await Promise.all(nodesFor(checks, 'conntrack').map(async (node) => {
    const r = await sandbox.exec.run(sandbox.wrap(node, ['conntrack', '-L']));
    obs.conntrack.set(node, parseConntrack(r.stdout));
  }));
  for (const c of checks) {
    if (c.kind !== 'output') continue;
    obs.outputs.set(outputKey(c.command.node, c.command.argv), await sandbox.run(c.command));
  }

  const reports = [...failures, ...checks.map((c) => evaluate(c, obs))];
  return {
    title: step.title,
    ...(step.teaches ? { teaches: step.teaches } : {}),
    status: reports.every((r) => r.status !== 'not-met') ? 'passed' : 'failed',
    commands,
    checks: reports,
    durationMs: Date.now() - started,
  };
}

function summarizeTraffic(result: Awaited<ReturnType<typeof runTraffic>>): string {
  if (result.ping) return result.ping.output.trim();
  const outcomes = result.tcp ?? [];
  if (outcomes.length === 1) return outcomes[0]!.output.trim();
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const key = o.result === 'connects' ? `${o.answeredBy ?? '?'} (client ${o.clientSeen ?? '?'})` : o.result;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, v]) => `${v}× ${k}`).join(', ');
}
