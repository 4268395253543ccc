// `nflab trace <lab> --step N`: on a lab left running by `nflab up`, send step N's traffic (not its
// commands) with packet tracing on, and show the path each packet took through the tables and
// chains. Traced nodes: those of step N's path checks, else every host and outside node.
import type { Lab, PathFilter, Traffic } from '../lab/types.ts';
import type { Executor } from '../exec/types.ts';
import { keptRun } from './check.ts';
import { assertStep } from '../engine/select-run.ts';
import { LabError } from '../errors.ts';
import { attach, labOf } from '../engine/attach.ts';
import { interruptions } from './interrupt.ts';
import { killLiveChildren } from '../exec/local.ts';
import { stepRequestsOf, stepTraffic } from '../check/step-needs.ts';
import { startPathTraces } from '../engine/path-traces.ts';
import { runTraffic, trafficKey, type TrafficResult } from '../traffic/run.ts';
import { filterWords } from '../check/path.ts';
import { Observations, traceKey, type TraceObservation } from '../check/observations.ts';
import { evaluate } from '../check/evaluate.ts';
import { checkNeeds } from '../check/registry.ts';
import { packetPictures, renderPacket } from '../report/trace-picture.ts';

/** Without path checks: every host and outside node, tracing the protocols of the step's traffic. */
function defaultTargets(lab: Lab, traffic: Traffic[]): { node: string; filter: PathFilter }[] {
  const protos = new Set(traffic.map((t) => (t.kind === 'ping' ? 'icmp' : t.kind)));
  const filter: PathFilter = protos.size === 1 ? { proto: [...protos][0] as PathFilter['proto'] } : {};
  return Object.entries(lab.topology.nodes).filter(([, spec]) => spec.role !== 'container').map(([node]) => ({ node, filter }));
}

function trafficSummary(r: TrafficResult): string {
  if (r.ping) return `${r.ping.received}/${r.ping.transmitted} replies${r.ping.error ? ` (${r.ping.error})` : ''}`;
  if (r.udp) return `${r.udp.length} datagram(s) sent`;
  const counts = new Map<string, number>();
  for (const o of r.tcp ?? []) {
    const key = o.result === 'connects' ? `connects (${o.answeredBy ?? '?'} saw client ${o.clientSeen ?? '?'}${o.clientPort ? `:${o.clientPort}` : ''})` : o.result;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => (n > 1 ? `${n}× ${k}` : k)).join(', ');
}

export async function traceCommand(ref: string, stepNumber: number, json: boolean, exec: Executor, runId?: string): Promise<number> {
  const record = await keptRun(ref, runId);
  const lab = await labOf(record);
  assertStep(lab, stepNumber, 1);
  if (record.iptables === 'legacy') {
    throw new LabError(`lab ${lab.id} is up with --iptables legacy (run ${record.runId}): packet traces come from the nftables trace, which iptables-legacy rules never appear in; bring it up with --iptables nft to trace it`);
  }
  const step = lab.steps[stepNumber - 1]!;
  const traffic = stepTraffic(step);
  if (traffic.length === 0) throw new LabError(`lab ${lab.id} step ${stepNumber} sends no traffic: nothing to trace`);
  // The step's checks that read a trace (path checks) are judged on this trace.
  const checks = (step.expect ?? []).filter((c) => checkNeeds(c).some((r) => r.type === 'trace'));
  const traced = stepRequestsOf(step, 'trace');
  const targets = traced.length > 0 ? traced : defaultTargets(lab, traffic);
  const run = await attach(record, exec, lab);

  // Ctrl-C kills the traffic and the monitors; stop() still removes every tracer table.
  const stop = interruptions(killLiveChildren);
  const results: TrafficResult[] = [];
  let observed: Map<string, TraceObservation>;
  try {
    const traces = await startPathTraces(run, targets, run.rootNetworks());
    try {
      for (const t of traffic) if (!stop.signal()) results.push(await runTraffic(exec, (node, argv) => run.node(node).wrap(argv), (node, argv) => run.node(node).display(argv), t));
    } finally {
      observed = await traces.stop();
    }
  } finally {
    stop.release();
  }
  if (stop.signal()) return stop.exitCode();

  const obs = new Observations();
  for (const r of traced) { const o = observed.get(traceKey(r.node, r.filter)); if (o) obs.set(r, o); }
  const verdicts = checks.map((c) => evaluate(c, obs));
  const report = {
    lab: lab.id, step: stepNumber, title: step.title, runId: record.runId, appliedSteps: record.step ?? 0,
    traffic: results.map((r) => ({ key: trafficKey(r.traffic), display: r.display, outcome: trafficSummary(r) })),
    traces: targets.map((t) => {
      const o = observed.get(traceKey(t.node, t.filter));
      return {
        node: t.node, filter: t.filter,
        ...(o && 'error' in o ? { error: o.error } : { problems: o?.problems ?? [], packets: packetPictures(o?.hops ?? []) }),
      };
    }),
    checks: verdicts.map((v) => ({ description: v.description, status: v.status, expected: v.expected, observed: v.observed, ...(v.reason ? { reason: v.reason } : {}) })),
  };
  if (json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else process.stdout.write(renderReport(report));
  return verdicts.every((v) => v.status === 'met') ? 0 : 1;
}

type TraceReport = {
  lab: string; step: number; title: string; runId: string; appliedSteps: number;
  traffic: { display: string; outcome: string }[];
  traces: { node: string; filter: PathFilter; error?: string; problems?: string[]; packets?: ReturnType<typeof packetPictures> }[];
  checks: { description: string; status: string; reason?: string }[];
};

function renderReport(r: TraceReport): string {
  const out: string[] = [`lab ${r.lab}, step ${r.step}: ${r.title}  (run ${r.runId}, steps 1..${r.appliedSteps} applied)`, ''];
  for (const t of r.traffic) out.push(`  $ ${t.display}`, `    → ${t.outcome}`);
  for (const t of r.traces) {
    out.push('', `${t.node}: ${filterWords(t.filter, 'packets')}`);
    if (t.error) { out.push(`  tracing failed: ${t.error}`); continue; }
    if (!t.packets || t.packets.length === 0) out.push('  no packet was traced (none matched, or none reached this node)');
    t.packets?.forEach((p, i) => out.push(renderPacket(p, i + 1), ''));
    for (const problem of t.problems ?? []) out.push(`  ! ${problem}`);
  }
  if (r.checks.length > 0) {
    out.push('', 'path checks of this step:');
    for (const c of r.checks) out.push(`  ${c.status === 'met' ? '✔' : '✘'} ${c.description}${c.reason ? `\n      ${c.reason}` : ''}`);
  }
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n')}\n`;
}
