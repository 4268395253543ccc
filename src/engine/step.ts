// One step: start the observers its checks need, apply its commands, drive its traffic, read
// the evidence, and judge every check. What to observe comes from the checks' kinds as typed
// requests (src/check/observations.ts); this module only carries them out.
import type { Check, Step } from '../lab/types.ts';
import type { CheckReport, CommandReport, StepReport } from '../report/types.ts';
import type { Sandbox } from './sandbox.ts';
import { pcapName, preparePcapDir, startCapture, type Capture } from '../observe/capture.ts';
import { join } from 'node:path';
import { parseIptablesSave } from '../observe/parse-iptables-save.ts';
import { parseConntrack } from '../observe/parse-conntrack.ts';
import type { ConntrackEntry } from '../observe/types.ts';
import { runTraffic } from '../traffic/run.ts';
import { pingEvidence, tcpEvidence } from './evidence.ts';
import { parseNftList } from '../observe/parse-nft-list.ts';
import { runReach } from '../traffic/reach.ts';
import { evaluate, skipped, stepStatus } from '../check/evaluate.ts';
import {
  Observations,
  connectionKey,
  distinctRequests,
  plain,
  traceKey,
  type RequestOf,
} from '../check/observations.ts';
import { stepRequests, stepTraffic } from '../check/step-needs.ts';
import { parseNftSetElements, parseXtRecent } from '../observe/parse-xt-recent.ts';
import { isNftSet } from '../check/kinds/recent.ts';
import { startPathTraces } from './path-traces.ts';
import { LimitError, StepClock } from './limits.ts';
import { limitsOf } from '../resolve/bounds.ts';
import type { SavedRuleset } from '../observe/types.ts';
import { Interrupted } from '../errors.ts';

export interface RunStepOptions {
  /** false: leave the step's commands out and only observe and judge (nflab check on a lab that is up). */
  applyCommands?: boolean;
  /** Keep the raw observations in the report (nflab run --record). */
  keepObservations?: boolean;
  /** --pcap DIR: keep each capture as DIR/<prefix>-<node>-<iface>.pcap as well. */
  pcap?: { dir: string; prefix: string };
  /** Judge as nflab check does: a step whose behaviour checks are met and only reference checks are
   * not is `differs` (nflab run stays strict). */
  lenient?: boolean;
}

/** One step within its time limits (limits.ts): a limit hit ends it as `error`, naming the command. */
export async function runStep(
  sandbox: Sandbox,
  step: Step,
  aborted: () => boolean,
  options: RunStepOptions = {},
): Promise<StepReport> {
  const started = Date.now();
  const clock = new StepClock(limitsOf(sandbox.lab, step));
  // Shared with the step's run, so that a step stopped by a limit still reports what it ran.
  const commands: CommandReport[] = [];
  try {
    return await runStepWithin(clock, commands, sandbox, step, aborted, options);
  } catch (err) {
    if (!(err instanceof LimitError)) throw err;
    return {
      title: step.title,
      ...(step.teaches ? { teaches: step.teaches } : {}),
      status: 'error',
      reason: err.message,
      commands,
      checks: [],
      durationMs: Date.now() - started,
    };
  }
}

async function runStepWithin(
  clock: StepClock,
  commands: CommandReport[],
  sandbox: Sandbox,
  step: Step,
  aborted: () => boolean,
  options: RunStepOptions,
): Promise<StepReport> {
  const started = Date.now();
  const checks = step.expect ?? [];
  const requests = stepRequests(step);
  const obs = new Observations();
  const failures: CheckReport[] = [];

  // The checks' counters, and (for hints: the drop that stopped a packet) those of every host node
  // when the step sends traffic.
  const hostCounters: RequestOf<'counters'>[] =
    stepTraffic(step).length > 0 || requests.some((r) => r.type === 'reach')
      ? Object.entries(sandbox.lab.topology.nodes)
          .filter(([, spec]) => spec.role === 'host')
          .map(([node]) => ({ type: 'counters', node }))
      : [];
  const counterRequests = distinctRequests([...requests, ...hostCounters], 'counters');
  const readCounters = () =>
    Promise.all(
      counterRequests.map(async (r) => {
        if (r.nft) {
          const out = await sandbox.node(r.node).run(['nft', 'list', 'table', ...r.nft.split(' ')]);
          return [r, parseNftList(out.stdout, r.nft)] as const;
        }
        const out = await sandbox
          .node(r.node)
          .run(r.family === 'bridge' ? ['ebtables-save', '-c'] : ['iptables-save', '-c']);
        return [r, parseIptablesSave(out.stdout)] as const;
      }),
    );
  // Conntrack entries and xt_recent lists as they were when the check started: its own flows are what is new.
  const conntrackRequests = distinctRequests(requests, 'conntrack');
  // Read twice and merged by entry id: a netlink dump of a table that changes meanwhile (other
  // namespaces' connections share the kernel's hash table) can miss entries, and one missed in the
  // baseline counts as the check's own, one missed after as not made (lab 04's 150 under CI's load).
  const dumpConntrack = async (node: string) => {
    const seen = new Map<string, ConntrackEntry>();
    for (let i = 0; i < 2; i++) {
      for (const e of parseConntrack((await sandbox.node(node).run(['conntrack', '-L', '-o', 'id'])).stdout))
        seen.set(e.entryId !== undefined ? String(e.entryId) : e.line, e);
    }
    return [...seen.values()];
  };
  const readConntrack = () =>
    Promise.all(conntrackRequests.map(async (r) => [r, await dumpConntrack(r.node)] as const));
  const recentRequests = distinctRequests(requests, 'recent');

  // Commands first: observers measure the step's traffic. (Commands can also reset counters:
  // `iptables -P` on the nf_tables backend zeroes the chain's policy counter.)
  for (const command of options.applyCommands === false ? [] : (step.run ?? [])) {
    if (aborted()) throw new Interrupted();
    const r = await clock.command((o) => sandbox.run(command, o), sandbox.display(command), command.node);
    const report: CommandReport = {
      node: command.node,
      display: sandbox.display(command),
      exitCode: r.code,
      ...(r.stdout.trim() || r.stderr.trim() ? { output: (r.stdout + r.stderr).trim() } : {}),
    };
    commands.push(report);
    const failed = r.code !== 0;
    if (failed !== (command.expectFailure ?? false)) {
      failures.push({
        description: `command ${command.expectFailure ? 'is refused' : 'succeeds'}: ${report.display}`,
        kind: 'command',
        status: 'not-met',
        expected: { exitCode: command.expectFailure ? 'non-zero' : 0 },
        observed: { exitCode: r.code, output: report.output },
      });
    }
  }
  const countersBefore = new Map<RequestOf<'counters'>, SavedRuleset>(await readCounters());
  const conntrackBefore = new Map(await readConntrack());
  // Each of the step's TCP connections, by destination and the client its responder saw: the
  // conntrack check knows its own entries by them (see ownEntries).
  const ownClients: string[] = [];
  const recentBefore = new Observations();
  await readRecentLists(sandbox, recentRequests, recentBefore);
  // Tracing is on only from here to the end of the traffic (path checks).
  // Under iptables-legacy no path check is judged (legacySkip): no tracer either.
  const traceRequests = sandbox.options.iptables === 'legacy' ? [] : distinctRequests(requests, 'trace');
  const traces = await startPathTraces(sandbox, traceRequests, sandbox.rootNetworks());
  const captureRequests = distinctRequests(requests, 'capture');
  let captures: Capture[] = [];
  try {
    const pcap = options.pcap;
    if (pcap && captureRequests.length > 0) await preparePcapDir(sandbox.exec, pcap.dir);
    captures = await Promise.all(
      captureRequests.map((c) =>
        startCapture(
          sandbox.exec,
          (argv) => sandbox.node(c.node).observerArgv(argv),
          c.node,
          c.iface,
          pcap ? { file: join(pcap.dir, pcapName(pcap.prefix, c.node, c.iface)) } : undefined,
        ),
      ),
    );
    for (const t of stepTraffic(step)) {
      if (aborted()) throw new Interrupted();
      // A failure the kernel has already explained need not wait for its timeout (engine/evidence.ts).
      const counterNodes = counterRequests.map((r) => r.node);
      const stopEarly =
        t.kind === 'ping'
          ? await pingEvidence(sandbox, checks, counterNodes, t)
          : t.kind === 'tcp'
            ? await tcpEvidence(sandbox, checks, counterNodes, t)
            : undefined;
      const result = await runTraffic(
        clock.bound(sandbox.exec),
        (node, argv) => sandbox.node(node).wrap(argv),
        (node, argv) => sandbox.node(node).display(argv),
        t,
        { stopEarly },
      );
      obs.set({ type: 'traffic', traffic: t }, result);
      for (const o of result.tcp ?? [])
        if (o.clientSeen && o.clientPort) ownClients.push(connectionKey(t.to, o.clientSeen, o.clientPort));
      commands.push({ node: t.from, display: result.display, exitCode: null, output: summarizeTraffic(result) });
    }
    // Reachability at scale: many pings, a bounded number of source nodes at a time.
    for (const r of distinctRequests(requests, 'reach')) {
      if (aborted()) throw new Interrupted();
      const c = r.check;
      // enter: the pings need only the node's network namespace (nsenter costs half of `ip netns exec`).
      const result = await runReach(
        clock.bound(sandbox.exec),
        (node, argv) => sandbox.node(node).enter(argv),
        (node, argv) => sandbox.node(node).display(argv),
        c,
      );
      obs.set(r, result);
      const replies = result.outcomes.filter((o) => o.code === 0).length;
      commands.push({
        node: c.kind === 'all-reach' ? c.from[0]! : Object.keys(c.nodes)[0]!,
        display: `${result.display}   # one of ${result.outcomes.length} pings, ${result.parallel} nodes at a time`,
        exitCode: null,
        output: `${replies} of ${result.outcomes.length} pings answered in ${(result.ms / 1000).toFixed(2)} s`,
      });
    }
  } finally {
    await Promise.all(captures.map(async (c, i) => obs.set(captureRequests[i]!, await c.stop())));
    const traced = await traces.stop();
    for (const r of traceRequests) {
      const t = traced.get(traceKey(r.node, r.filter));
      if (t) obs.set(r, t);
    }
  }
  for (const [r, after] of await readCounters()) obs.set(r, { before: countersBefore.get(r)!, after });
  for (const [r, after] of await readConntrack()) obs.set(r, { before: conntrackBefore.get(r)!, after, ownClients });
  await readRecentLists(sandbox, recentRequests, obs);
  for (const r of recentRequests) {
    const [b, a] = [recentBefore.get(r), obs.get(r)];
    if (b && a && 'entries' in b && 'entries' in a) obs.set(r, { ...a, before: b.entries });
  }
  for (const r of distinctRequests(requests, 'output'))
    obs.set(r, await clock.command((o) => sandbox.run(r.command, o), sandbox.display(r.command), r.command.node));

  const reports = [
    ...failures,
    ...checks.map((c) =>
      sandbox.rootNode && c.sandboxOnly
        ? skipped(c, `holds only in the sandbox: ${c.sandboxOnly}`)
        : legacySkip(sandbox, c)
          ? skipped(c, LEGACY_PATH_REASON)
          : evaluate(c, obs),
    ),
  ];
  return {
    title: step.title,
    ...(step.teaches ? { teaches: step.teaches } : {}),
    status: stepStatus(reports, options.lenient === true),
    commands,
    checks: reports,
    durationMs: Date.now() - started,
    ...(options.keepObservations ? { observations: plain(obs.byType()) as Record<string, unknown> } : {}),
  };
}

/** Path checks read the nftables trace (`meta nftrace`, xtables-monitor --trace): rules of
 * iptables-legacy never appear in it, so under --iptables legacy they are skipped with this reason. */
const LEGACY_PATH_REASON =
  'needs the nftables trace: iptables-legacy rules are x_tables rules, which never appear in it (run with --iptables nft to trace the path)';
function legacySkip(sandbox: Sandbox, c: Check): boolean {
  return c.kind === 'path' && sandbox.options.iptables === 'legacy';
}

/** xt_recent lists the checks ask about, read from /proc/net/xt_recent inside the node's namespace. */
async function readRecentLists(sandbox: Sandbox, wanted: RequestOf<'recent'>[], obs: Observations): Promise<void> {
  await Promise.all(
    wanted.map(async (key) => {
      const { node, list } = key;
      if (isNftSet(list)) {
        const r = await sandbox.node(node).run(['nft', 'list', 'set', ...list.split(' ')]);
        obs.set(
          key,
          r.code !== 0
            ? { error: `no nft set ${list}: ${r.stderr.trim()}` }
            : { entries: parseNftSetElements(r.stdout) },
        );
        return;
      }
      const r = await sandbox.node(node).run(['cat', `/proc/net/xt_recent/${list}`]);
      if (r.code !== 0) {
        const missing = /No such file/.test(r.stderr);
        obs.set(key, {
          error: missing ? `no list ${list} (no -m recent rule with --name ${list} exists)` : r.stderr.trim(),
        });
        return;
      }
      try {
        obs.set(key, { entries: parseXtRecent(r.stdout) });
      } catch (err) {
        obs.set(key, { error: (err as Error).message });
      }
    }),
  );
}

function summarizeTraffic(result: Awaited<ReturnType<typeof runTraffic>>): string {
  if (result.ping) return result.ping.output.trim();
  if (result.udp)
    return result.udp.map((u) => `${u.output || 'sent'}${u.exitCode !== 0 ? ` (exit ${u.exitCode})` : ''}`).join('\n');
  const outcomes = result.tcp ?? [];
  if (outcomes.length === 1) return outcomes[0]!.output.trim();
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const key = o.result === 'connects' ? `${o.answeredBy ?? '?'} (client ${o.clientSeen ?? '?'})` : o.result;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, v]) => `${v}× ${k}`).join(', ');
}
