// `nflab trace <lab>`: on a lab left running by `nflab up`, trace packets through the tables and
// chains of its nodes and show each path, what NAT rewrote and where that was seen.
//   nflab trace 02 [--node host] [--filter 'icmp and host 10.55.66.2'] [--count N] [--seconds S]
//       traces what the student sends from another shell, until N packets, S seconds or Ctrl-C;
//   nflab trace 02 -- c1 ping -c 2 198.51.100.8
//       runs the command in node c1 and traces what it sends, until it ends;
//   nflab trace 02 --step 4
//       replays step 4's scripted traffic (not its commands) and judges its path checks.
// Tracing is set up in the lab's own namespaces only (src/observe/trace.ts): a table of the
// tracer's own whose marking rule is the filter; nothing in the root namespace's firewall.
import type { Lab, PathFilter, Traffic } from '../lab/types.ts';
import type { Executor, Process } from '../exec/types.ts';
import { keptRun } from './check.ts';
import { assertStep } from '../engine/select-run.ts';
import { EnvError, LabError } from '../errors.ts';
import { attach, labOf } from '../engine/attach.ts';
import type { Sandbox } from '../engine/sandbox.ts';
import type { RunRecord } from '../engine/journal.ts';
import { interruptions } from './interrupt.ts';
import { killLiveChildren } from '../exec/local.ts';
import { stepRequestsOf, stepTraffic } from '../check/step-needs.ts';
import { isTracerHop, startPathTraces } from '../engine/path-traces.ts';
import { runTraffic, trafficKey, type TrafficResult } from '../traffic/run.ts';
import { filterWords } from '../check/path.ts';
import { Observations, traceKey, type TraceObservation } from '../check/observations.ts';
import { evaluate } from '../check/evaluate.ts';
import { checkNeeds } from '../check/registry.ts';
import { startTrace, type TraceFilter, type TraceHop, type TraceSession } from '../observe/trace.ts';
import { parseTraceFilter, traceFilterWords } from '../observe/trace-filter.ts';
import { parseConntrack } from '../observe/parse-conntrack.ts';
import type { ConntrackEntry } from '../observe/types.ts';
import { pcapName, preparePcapDir, startPcap } from '../observe/capture.ts';
import {
  DEFAULT_TRACE_LIMITS,
  lookupElsewhere,
  renderPaths,
  tracedPaths,
  type TracedPath,
} from '../report/trace-view.ts';
import { join } from 'node:path';

export interface TraceArgs {
  /** Replay this step's scripted traffic. */
  step?: number;
  /** Trace in this node only (default: every host and outside node). */
  node?: string;
  /** tcpdump-style words: `icmp and host 10.55.66.2`. */
  filter?: string;
  count?: number;
  seconds?: number;
  /** `-- <node> <argv…>`: run this in that node and trace what it sends. */
  command?: string[];
  json: boolean;
  /** Keep a pcap file per traced node in this directory. */
  pcap?: string;
  /** Which of the caller's runs of the lab (when they have several). */
  run?: string;
}

/** Live tracing stops by itself after this many packets or seconds (whichever comes first). */
export const DEFAULT_COUNT = 20;
export const DEFAULT_SECONDS = 60;

const width = DEFAULT_TRACE_LIMITS.width;
const clip = (line: string) => (line.length <= width ? line : `${line.slice(0, width - 1)}…`);

/** Without path checks (or without --node): every host and outside node. */
function hostNodes(lab: Lab): string[] {
  return Object.entries(lab.topology.nodes)
    .filter(([, spec]) => spec.role !== 'container')
    .map(([node]) => node);
}

function stepTargets(lab: Lab, traffic: Traffic[]): { node: string; filter: PathFilter }[] {
  const protos = new Set(traffic.map((t) => (t.kind === 'ping' ? 'icmp' : t.kind)));
  const filter: PathFilter = protos.size === 1 ? { proto: [...protos][0] as PathFilter['proto'] } : {};
  return hostNodes(lab).map((node) => ({ node, filter }));
}

/** One line however many flows: outcomes counted without their ports. */
export function trafficSummary(r: TrafficResult): string {
  if (r.ping) return `${r.ping.received}/${r.ping.transmitted} replies${r.ping.error ? ` (${r.ping.error})` : ''}`;
  if (r.udp) return `${r.udp.length} datagram(s) sent`;
  const counts = new Map<string, number>();
  for (const o of r.tcp ?? []) {
    const key =
      o.result === 'connects' ? `connects (${o.answeredBy ?? '?'} saw client ${o.clientSeen ?? '?'})` : o.result;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const total = r.tcp?.length ?? 0;
  return `${total > 1 ? `${total} connections: ` : ''}${[...counts].map(([k, n]) => (n > 1 ? `${n}× ${k}` : k)).join(', ')}`;
}

function assertTraceable(lab: Lab, record: RunRecord): void {
  if (record.iptables === 'legacy') {
    throw new LabError(
      `lab ${lab.id} is up with --iptables legacy (run ${record.runId}): packet traces come from the nftables trace, which iptables-legacy rules never appear in; bring it up with --iptables nft to trace it`,
    );
  }
}

function assertNode(lab: Lab, node: string, what: string): void {
  if (!(node in lab.topology.nodes))
    throw new LabError(
      `lab ${lab.id} has no node "${node}" (${what}); its nodes: ${Object.keys(lab.topology.nodes).join(', ')}`,
    );
}

export async function traceCommand(ref: string, args: TraceArgs, exec: Executor): Promise<number> {
  const live =
    args.node !== undefined ||
    args.filter !== undefined ||
    args.count !== undefined ||
    args.seconds !== undefined ||
    args.command !== undefined;
  if (args.step !== undefined && live)
    throw new LabError(
      '--step replays the step\'s own traffic; --node, --filter, --count, --seconds and "-- <node> <command>" trace your own: use one or the other',
    );
  if (args.count !== undefined && (!Number.isInteger(args.count) || args.count < 1))
    throw new LabError(`--count must be a whole number of at least 1, got ${args.count}`);
  if (args.seconds !== undefined && (!Number.isFinite(args.seconds) || args.seconds <= 0 || args.seconds > 3600))
    throw new LabError(`--seconds must be more than 0 and at most 3600, got ${args.seconds}`);
  if (args.command !== undefined && args.command.length < 2)
    throw new LabError(
      'after --, name the node and the command to run in it: nflab trace <lab> -- c1 ping -c 2 198.51.100.8',
    );
  // Bad words in the filter are a usage error before anything is looked up or changed.
  const filter = parseTraceFilter(args.filter ?? '');
  const record = await keptRun(ref, args.run);
  const lab = await labOf(record);
  assertTraceable(lab, record);
  if (args.node !== undefined) assertNode(lab, args.node, '--node');
  if (args.command !== undefined) assertNode(lab, args.command[0]!, 'the node after --');
  if (args.step !== undefined) return traceStep(lab, record, args.step, args, exec);
  return traceLive(lab, record, filter, args, exec);
}

// ---------------------------------------------------------------- tracing your own packets

interface NodeTrace {
  node: string;
  packets: number;
  paths: TracedPath[];
  problems: string[];
  error?: string;
}

async function traceLive(
  lab: Lab,
  record: RunRecord,
  filter: TraceFilter,
  args: TraceArgs,
  exec: Executor,
): Promise<number> {
  const nodes = args.node !== undefined ? [args.node] : hostNodes(lab);
  const run = await attach(record, exec, lab);
  const rootOnly = run.rootNetworks();
  const seconds = args.seconds ?? DEFAULT_SECONDS;
  const count = args.count ?? (args.command ? undefined : DEFAULT_COUNT);
  let command: Process | undefined;
  const stop = interruptions(() => command?.kill('SIGINT'));
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const what = `${traceFilterWords(filter)} on ${nodes.join(', ')}`;
  let commandReport: { display: string; exitCode: number | null; output: string[] } | undefined;
  const sessions: { node: string; session: TraceSession }[] = [];
  const pcaps: { node: string; file: string; stop(): Promise<{ error?: string }> }[] = [];
  const started = Date.now();
  const hopsOf = new Map<string, TraceHop[]>();
  try {
    await startSessions(run, nodes, filter, seconds, rootOnly, sessions);
    if (args.pcap) {
      await preparePcapDir(exec, args.pcap);
      for (const node of nodes) {
        const file = join(args.pcap, pcapName(lab.id, 'trace', node, 'any'));
        pcaps.push({
          node,
          ...(await startPcap(exec, (argv) => run.node(node).observerArgv(argv), file, args.filter)),
        });
      }
    }
    if (args.command) {
      const [node, ...argv] = args.command as [string, ...string[]];
      const display = run.node(node).display(argv);
      if (!args.json)
        process.stdout.write(
          `lab ${lab.id} (run ${record.runId}): tracing ${what} while this runs in ${node}:\n  $ ${display}\n`,
        );
      const output: string[] = [];
      command = run.node(node).spawn(argv);
      const echo = (line: string) => {
        output.push(line);
        if (!args.json) process.stdout.write(`    ${clip(line)}\n`);
      };
      command.onStdoutLine(echo);
      command.onStderrLine(echo);
      const timer = setTimeout(() => command?.kill('SIGTERM'), seconds * 1000);
      const result = await command.exited.finally(() => clearTimeout(timer));
      commandReport = { display, exitCode: result.code, output };
    } else {
      const until = count !== undefined ? `${count} packets, ${seconds} s or Ctrl-C` : `${seconds} s or Ctrl-C`;
      say(
        `nflab: tracing ${what} (lab ${lab.id}, run ${record.runId}); send your packets now from another shell. Stops after ${until}.`,
      );
      while (
        !stop.signal() &&
        Date.now() - started < seconds * 1000 &&
        (count === undefined || markedPackets(sessions) < count)
      )
        await sleep(100);
    }
  } finally {
    // Every tracer table is removed and every capture ended, whatever happened above.
    await Promise.all(pcaps.map((p) => p.stop()));
    await Promise.all(
      sessions.map(async ({ node, session }) => {
        hopsOf.set(node, await session.stop({ includeTracer: true }));
      }),
    );
    stop.release();
  }
  const traces: NodeTrace[] = [];
  for (const { node, session } of sessions) {
    const hops = hopsOf.get(node) ?? [];
    const others = [...hopsOf].filter(([n]) => n !== node).map(([n, h]) => ({ node: n, hops: h }));
    const paths = tracedPaths(hops, await conntrackOf(run, node), node, lookupElsewhere(others));
    traces.push({ node, packets: paths.reduce((n, p) => n + p.count, 0), paths, problems: [...session.problems] });
  }
  const report = {
    lab: lab.id,
    runId: record.runId,
    appliedSteps: record.step ?? 0,
    filter: args.filter ?? '',
    nodes,
    seconds: Math.round((Date.now() - started) / 100) / 10,
    ...(commandReport ? { command: commandReport } : {}),
    traces,
    ...(pcaps.length > 0 ? { pcap: pcaps.map((p) => p.file) } : {}),
  };
  if (args.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else {
    const out: string[] = [];
    if (!commandReport)
      out.push(
        `lab ${lab.id} (run ${record.runId}, steps 1..${report.appliedSteps} applied): traced ${what} for ${report.seconds} s`,
      );
    out.push(...renderTraces(traces, filter));
    for (const file of report.pcap ?? []) out.push(`pcap: ${file}`);
    process.stdout.write(
      `${out
        .map(clip)
        .join('\n')
        .replace(/\n{3,}/g, '\n\n')}\n`,
    );
  }
  if (stop.signal() && args.command) return stop.exitCode();
  return 0;
}

async function startSessions(
  run: Sandbox,
  nodes: string[],
  filter: TraceFilter,
  seconds: number,
  rootOnly: { node: string; networks: string[] } | undefined,
  sessions: { node: string; session: TraceSession }[],
): Promise<void> {
  const results = await Promise.allSettled(
    nodes.map((node) =>
      startTrace(run.exec, (argv) => run.node(node).observerArgv(argv), filter, {
        maxSeconds: Math.ceil(seconds) + 60,
        ...(node === rootOnly?.node ? { within: rootOnly.networks } : {}),
      }),
    ),
  );
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') sessions.push({ node: nodes[i]!, session: r.value });
  });
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed)
    throw failed.reason instanceof EnvError || failed.reason instanceof LabError
      ? failed.reason
      : new EnvError(
          `tracing did not start: ${(failed.reason as Error).message}`,
          'run as root on a kernel with nf_tables (iptables -V says nf_tables)',
        );
}

/** IPv4 packets the tracers have marked so far (a bridged packet is marked once in family ip too). */
function markedPackets(sessions: { session: TraceSession }[]): number {
  let n = 0;
  for (const { session } of sessions)
    for (const line of session.lines) if (/^\s*TRACE: 2 \S+ nflab_trace_\w+:mark_(pre|out):rule:/.test(line)) n++;
  return n;
}

/** The node's conntrack table after the trace: where SNAT in POSTROUTING can be seen. */
async function conntrackOf(run: Pick<Sandbox, 'node'>, node: string): Promise<ConntrackEntry[] | undefined> {
  const r = await run
    .node(node)
    .run(['conntrack', '-L'])
    .catch(() => undefined);
  return r && r.code === 0 ? parseConntrack(r.stdout) : undefined;
}

function renderTraces(traces: NodeTrace[], filter?: TraceFilter): string[] {
  const out: string[] = [];
  for (const t of traces) {
    out.push(
      '',
      `${t.node}: ${t.error ? 'tracing failed' : t.packets === 0 ? 'no packet traced' : `${t.packets} packet${t.packets === 1 ? '' : 's'}, ${t.paths.length} path${t.paths.length === 1 ? '' : 's'}`}`,
    );
    if (t.error) {
      out.push(`  ${t.error}`);
      continue;
    }
    if (t.packets === 0)
      out.push(
        '  (none matched as it entered this node, or none reached it: the filter is matched before any NAT of this node)',
      );
    out.push(...renderPaths(t.paths));
    for (const problem of t.problems.slice(0, 3)) out.push(`  ! ${problem}`);
  }
  // The filter is matched as packets enter a node, before conntrack undoes a translation: replies
  // to a translated source match only a filter that names the translated address.
  const snat = traces.flatMap((t) =>
    t.paths.flatMap((p) => p.rewrites.filter((r) => r.field === 'src' && r.to !== '?')),
  );
  const named = filter?.host ?? filter?.src;
  if (named && snat.length > 0 && snat.every((r) => r.from.split(':')[0] === named)) {
    const to = snat[0]!.to.split(':')[0];
    out.push(
      '',
      `note: replies come back to ${to}, not ${named}, until conntrack translates them: a filter naming ${to} or the other end traces them too`,
    );
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- replaying a step's traffic

async function traceStep(
  lab: Lab,
  record: RunRecord,
  stepNumber: number,
  args: TraceArgs,
  exec: Executor,
): Promise<number> {
  assertStep(lab, stepNumber, 1);
  const step = lab.steps[stepNumber - 1]!;
  const traffic = stepTraffic(step);
  if (traffic.length === 0) throw new LabError(`lab ${lab.id} step ${stepNumber} sends no traffic: nothing to trace`);
  // The step's checks that read a trace (path checks) are judged on this trace.
  const checks = (step.expect ?? []).filter((c) => checkNeeds(c).some((r) => r.type === 'trace'));
  const traced = stepRequestsOf(step, 'trace');
  const targets = traced.length > 0 ? traced : stepTargets(lab, traffic);
  const run = await attach(record, exec, lab);

  // Ctrl-C kills the traffic and the monitors; stop() still removes every tracer table.
  const stop = interruptions(killLiveChildren);
  const results: TrafficResult[] = [];
  const pcaps: { file: string; stop(): Promise<{ error?: string }> }[] = [];
  let observed: Map<string, TraceObservation>;
  try {
    const traces = await startPathTraces(run, targets, run.rootNetworks(), true);
    try {
      if (args.pcap) {
        await preparePcapDir(exec, args.pcap);
        for (const node of new Set(targets.map((t) => t.node))) {
          pcaps.push(
            await startPcap(
              exec,
              (argv) => run.node(node).observerArgv(argv),
              join(args.pcap, pcapName(lab.id, `trace-step${stepNumber}`, node, 'any')),
            ),
          );
        }
      }
      for (const t of traffic)
        if (!stop.signal())
          results.push(
            await runTraffic(
              exec,
              (node, argv) => run.node(node).wrap(argv),
              (node, argv) => run.node(node).display(argv),
              t,
            ),
          );
    } finally {
      await Promise.all(pcaps.map((p) => p.stop()));
      observed = await traces.stop();
    }
  } finally {
    stop.release();
  }
  if (stop.signal()) return stop.exitCode();

  const obs = new Observations();
  // Path checks read the lab's hops only.
  for (const r of traced) {
    const o = observed.get(traceKey(r.node, r.filter));
    if (o) obs.set(r, 'error' in o ? o : { ...o, hops: o.hops.filter((h) => !isTracerHop(h)) });
  }
  const verdicts = checks.map((c) => evaluate(c, obs));
  const conntrack = new Map<string, ConntrackEntry[] | undefined>();
  for (const node of new Set(targets.map((t) => t.node))) conntrack.set(node, await conntrackOf(run, node));
  const report = {
    lab: lab.id,
    step: stepNumber,
    title: step.title,
    runId: record.runId,
    appliedSteps: record.step ?? 0,
    traffic: results.map((r) => ({ key: trafficKey(r.traffic), display: r.display, outcome: trafficSummary(r) })),
    traces: targets.map((t) => {
      const o = observed.get(traceKey(t.node, t.filter));
      if (o && 'error' in o) return { node: t.node, filter: t.filter, error: o.error };
      const others = targets
        .filter((x) => x.node !== t.node)
        .map((x) => {
          const seen = observed.get(traceKey(x.node, x.filter));
          return { node: x.node, hops: seen && 'hops' in seen ? seen.hops : [] };
        });
      const paths = tracedPaths(o?.hops ?? [], conntrack.get(t.node), t.node, lookupElsewhere(others));
      return {
        node: t.node,
        filter: t.filter,
        packets: paths.reduce((n, p) => n + p.count, 0),
        paths,
        problems: o?.problems ?? [],
      };
    }),
    checks: verdicts.map((v) => ({
      description: v.description,
      status: v.status,
      expected: v.expected,
      observed: v.observed,
      ...(v.reason ? { reason: v.reason } : {}),
    })),
    ...(pcaps.length > 0 ? { pcap: pcaps.map((p) => p.file) } : {}),
  };
  if (args.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else process.stdout.write(renderStepReport(report));
  return verdicts.every((v) => v.status === 'met') ? 0 : 1;
}

type StepTraceReport = {
  lab: string;
  step: number;
  title: string;
  runId: string;
  appliedSteps: number;
  traffic: { display: string; outcome: string }[];
  traces: {
    node: string;
    filter: PathFilter;
    error?: string;
    problems?: string[];
    packets?: number;
    paths?: TracedPath[];
  }[];
  checks: { description: string; status: string; reason?: string }[];
  pcap?: string[];
};

function renderStepReport(r: StepTraceReport): string {
  const out: string[] = [
    `lab ${r.lab}, step ${r.step}: ${r.title}  (run ${r.runId}, steps 1..${r.appliedSteps} applied)`,
    '',
  ];
  for (const t of r.traffic) out.push(`  $ ${t.display}`, `    → ${t.outcome}`);
  for (const t of r.traces) {
    const rendered = renderTraces([
      {
        node: t.node,
        packets: t.packets ?? 0,
        paths: t.paths ?? [],
        problems: t.problems ?? [],
        ...(t.error ? { error: t.error } : {}),
      },
    ]);
    rendered[1] = `${rendered[1]}  (${filterWords(t.filter, 'packets')})`;
    out.push(...rendered);
  }
  if (r.checks.length > 0) {
    out.push('', 'path checks of this step:');
    for (const c of r.checks)
      out.push(`  ${c.status === 'met' ? '✔' : '✘'} ${c.description}`, ...(c.reason ? [`      ${c.reason}`] : []));
  }
  for (const file of r.pcap ?? []) out.push(`pcap: ${file}`);
  return `${out
    .map(clip)
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')}\n`;
}
