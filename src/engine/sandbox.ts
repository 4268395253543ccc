// One run's private world: a namespace per host/outside node, a namespace or container per
// container node, the links between them, and teardown that always happens.
import type { Command, DriverKind, Lab } from '../lab/types.ts';
import type { Executor, RunResult } from '../exec/types.ts';
import type { NodeDriver } from '../drivers/types.ts';
import { NetnsDriver } from '../drivers/netns.ts';
import { planTopology, rootNodeSysctls, type TopologyPlan } from '../topology/plan.ts';
import { newRunId, processStartTime, removeRecord, writeRecord, type RunRecord } from './journal.ts';
import { startWatchdog, type Watchdog } from './watchdog.ts';
import { removeRun } from './cleanup.ts';
import { LocalExecutor } from '../exec/local.ts';
import { NETNS_DIR, netnsName } from '../drivers/netns.ts';
import { responderArgv } from '../observe/parse-tcp-client.ts';
import { shellQuote } from '../exec/quote.ts';
import { commandDisplay } from '../exec/display.ts';
import { defaultParallelism, mapLimit } from '../exec/pool.ts';
import { sysctlFile } from './sysctl-file.ts';
import { assertVirtualMachine, labSubnets, restoreRoot, snapshotRoot } from './root-namespace.ts';
import { backendArgv, type IptablesBackend } from './iptables-backend.ts';

export interface SandboxOptions {
  /** Driver for container nodes (host and outside nodes are always namespaces). */
  driver: DriverKind;
  image?: string;
  /** Keep the sandbox after nflab exits (nflab up). */
  kept?: boolean;
  runId?: string;
  /** Start a watchdog that cleans up if nflab dies without tearing down (default: on for this machine). */
  watchdog?: boolean;
  /** The lab's host node runs as the target's own root namespace (--root-namespace; root-namespace.ts). */
  rootNode?: string;
  /** The iptables every command in a node runs: iptables-nft (default) or iptables-legacy (--iptables). */
  iptables?: IptablesBackend;
}

export class Sandbox {
  readonly runId: string;
  readonly plan: TopologyPlan;
  private readonly netns: NetnsDriver;
  private docker?: NodeDriver;
  private record: RunRecord;
  private tornDown = false;
  private watchdog?: Watchdog;
  /** Milliseconds spent in each phase of build and teardown, for profiles (scripts/bench). */
  readonly timings: Record<string, number> = {};

  constructor(readonly lab: Lab, readonly exec: Executor, readonly options: SandboxOptions) {
    this.runId = options.runId ?? newRunId();
    this.plan = planTopology(lab.topology);
    this.netns = new NetnsDriver({ runId: this.runId, exec, rootNode: options.rootNode });
    const netnsNodes = this.plan.nodes.filter((n) => this.kindOf(n) === 'netns' && n !== options.rootNode);
    this.record = {
      runId: this.runId, pid: process.pid, pidStartTime: processStartTime(process.pid), labId: lab.id, target: exec.name, labFile: lab.file, driver: options.driver,
      kept: options.kept ?? false, netns: netnsNodes.map((n) => netnsName(this.runId, n)),
      containers: this.plan.nodes.some((n) => this.kindOf(n) === 'docker'), processes: [], createdAt: new Date().toISOString(),
      ...(options.iptables ? { iptables: options.iptables } : {}),
    };
  }

  /** Host and outside nodes are namespaces; container nodes follow the node's own choice, then the run's. */
  kindOf(node: string): DriverKind {
    const spec = this.lab.topology.nodes[node]!;
    if (spec.role !== 'container') return 'netns';
    return spec.driver ?? this.options.driver;
  }

  driverOf(node: string): NodeDriver {
    if (this.kindOf(node) === 'netns') return this.netns;
    if (!this.docker) throw new Error('the Docker driver is not ready');
    return this.docker;
  }

  wrap(node: string, argv: string[], stdin = false): string[] {
    return this.driverOf(node).wrap(node, backendArgv(argv, this.options.iptables), { stdin });
  }

  /** With --root-namespace: that node and the lab's networks (what of the machine's traffic is the lab's). */
  rootNetworks(): { node: string; networks: string[] } | undefined {
    return this.options.rootNode ? { node: this.options.rootNode, networks: labSubnets(this.lab) } : undefined;
  }

  /** A command as a person types it for this run's drivers. */
  display(command: Command): string {
    return commandDisplay(command, command.node === this.options.rootNode ? 'root' : this.kindOf(command.node));
  }

  /** Observers (tcpdump, the tracer) must be stoppable by signal: run them in the node's network
   * namespace directly, since a signal to a `docker exec` client does not reach the process. */
  observerWrap(node: string, argv: string[]): string[] {
    if (this.kindOf(node) === 'netns') return this.wrap(node, argv);
    return ['nsenter', '-t', this.driverOf(node).netnsRef(node), '-n', ...backendArgv(argv, this.options.iptables)];
  }

  async run(command: Command): Promise<RunResult> {
    return this.exec.run(this.wrap(command.node, command.argv, command.stdin !== undefined), { stdin: command.stdin });
  }

  /** Runs one phase and adds its wall time to `timings`. */
  private async timed<T>(phase: string, work: () => Promise<T> | T): Promise<T> {
    const started = performance.now();
    try {
      return await work();
    } finally {
      this.timings[phase] = (this.timings[phase] ?? 0) + performance.now() - started;
    }
  }

  /** `afterNodes` runs once the nodes exist and before anything is configured in them (kernel
   * feature probes: a lab's own sysctls may not exist on a kernel without the feature). */
  async build(afterNodes?: () => Promise<void>): Promise<void> {
    // Root mode: refused on bare metal or on a collision, and the state to put back goes into the
    // journal with the rest, before the first change.
    if (this.options.rootNode) {
      await assertVirtualMachine(this.exec, this.lab.id);
      this.record.root = await snapshotRoot(this.exec, this.lab, this.plan, this.options.rootNode, this.options.iptables);
    }
    // The watchdog first, the record second, then the objects: nflab may be killed between any two.
    if (this.options.watchdog ?? this.exec instanceof LocalExecutor) {
      this.watchdog = startWatchdog(this.runId);
      this.record.watchdog = this.watchdog.ref;
    }
    writeRecord(this.record);
    const containerNodes = this.plan.nodes.filter((n) => this.kindOf(n) === 'docker');
    if (containerNodes.length > 0) {
      const { DockerDriver } = await import('../drivers/docker.ts');
      this.docker = new DockerDriver({ runId: this.runId, exec: this.exec, image: this.options.image });
    }
    await this.timed('create nodes', () => Promise.all([
      this.netns.create(this.plan.nodes.filter((n) => this.kindOf(n) === 'netns')),
      containerNodes.length > 0 ? this.docker!.create(containerNodes) : undefined,
    ]));
    await afterNodes?.();
    if (this.options.rootNode) {
      // The lab's interfaces in the root namespace without IPv6 (no router solicitations in the
      // captures), the machine's own interfaces untouched: new links take the `default` setting.
      // (No such file on a kernel booted without IPv6: nothing to quiet then.)
      await this.exec.run(['sh', '-c', 'if [ -e "$1" ]; then printf "1\\n" > "$1"; fi', 'sh', '/proc/sys/net/ipv6/conf/default/disable_ipv6']);
    }
    await this.timed('create veths', () => this.createVeths());
    const snapshots = await this.timed('configure nodes', () => this.configureNodes());
    await this.timed('wait for links', () => this.waitForLinks(snapshots));
    for (const command of this.plan.setup) {
      const result = await this.run(command);
      if (result.code !== 0) throw new Error(`lab ${this.lab.id}: setup command failed: ${this.display(command)}\n${result.stderr.trim()}`);
    }
    await Promise.all(this.plan.listeners.map(({ node, port }) => this.startResponder(node, port)));
  }

  /** A veth end's name while it is created: unique to the run. Kernels before ~6.6 check the first
   * end's name in the caller's (root) namespace even when it is created straight into another one,
   * so `eth0` collides with the machine's own eth0; each node renames its ends first thing. */
  private vethTempName(index: number, side: 'a' | 'b'): string {
    return `nv${this.runId}${index.toString(36)}${side}`;
  }

  private async createVeths(): Promise<void> {
    if (this.plan.veths.length === 0) return;
    // Both ends are created directly inside their namespaces: nothing appears in the root namespace.
    const lines = this.plan.veths.map((v, i) =>
      ['link', 'add', this.vethTempName(i, 'a'), 'netns', this.driverOf(v.a.node).netnsRef(v.a.node), 'type', 'veth', 'peer', 'name', this.vethTempName(i, 'b'), 'netns', this.driverOf(v.b.node).netnsRef(v.b.node)].join(' '));
    const result = await this.exec.run(['ip', '-batch', '-'], { stdin: lines.join('\n') + '\n' });
    if (result.code !== 0) throw new Error(`lab ${this.lab.id}: could not create veth pairs: ${result.stderr.trim()}`);
  }

  /** `ip` lines that give a node's veth ends their lab names (before anything refers to them). */
  private vethRenames(node: string): string[] {
    // Grouped by node once: scanning every veth for every node is quadratic (10⁶ steps at 1000 nodes).
    if (!this.renames) {
      this.renames = new Map();
      this.plan.veths.forEach((v, i) => (['a', 'b'] as const).forEach((side) => {
        const list = this.renames!.get(v[side].node) ?? [];
        list.push(`link set ${this.vethTempName(i, side)} name ${shellQuote([v[side].name])}`);
        this.renames!.set(v[side].node, list);
      }));
    }
    return this.renames.get(node) ?? [];
  }
  private renames?: Map<string, string[]>;


  /** argv that runs `argv` in the node's network namespace only (nsenter), for the engine's own work:
   * building, readiness, reachability pings. Half the cost of `ip netns exec`, and for a container
   * no `docker exec` round trip (~126 ms). The lab's own commands and traffic keep wrap(). */
  enter(node: string, argv: string[]): string[] {
    if (node === this.options.rootNode) return backendArgv(argv, this.options.iptables);
    return ['nsenter', `--net=${this.netnsPath(node)}`, ...backendArgv(argv, this.options.iptables)];
  }

  /** The file of the node's network namespace: its bind mount, or the container's /proc/PID/ns/net. */
  private netnsPath(node: string): string {
    if (node === this.options.rootNode) return '/proc/self/ns/net';
    return this.kindOf(node) === 'netns' ? `${NETNS_DIR}/${netnsName(this.runId, node)}` : `/proc/${this.driverOf(node).netnsRef(node)}/ns/net`;
  }

  /** Nodes that own a bridge first (a hub's ports are then up when the other ends come up, so those
   * are ready sooner), then the rest; at most defaultParallelism() processes at once (starting
   * hundreds together only thrashes). Returns each node's link states as they were just after. */
  private async configureNodes(): Promise<Map<string, string>> {
    const hubs = new Set(Object.values(this.lab.topology.bridges ?? {}).map((b) => b.node));
    const snapshots = new Map<string, string>();
    await mapLimit(this.plan.nodes.filter((n) => hubs.has(n)), defaultParallelism(), async (node) => snapshots.set(node, await this.configureNode(node)));
    // The other nodes have small batches: many per process. Starting a process from node costs
    // ~3× what it costs from a shell (scripts/bench), so one shell per chunk enters each namespace
    // in turn; a node's sysctls and batch travel as arguments (a few hundred bytes each).
    const rest = this.plan.nodes.filter((n) => !hubs.has(n));
    const args = new Map(rest.map((node) => [node, this.configureArgs(node)]));
    const big = rest.filter((n) => args.get(n)!.join('').length > 32_768);
    await mapLimit(big, defaultParallelism(), async (node) => snapshots.set(node, await this.configureNode(node)));
    const small = rest.filter((n) => !big.includes(n));
    await Promise.all(chunks(small, defaultParallelism(), (node) => args.get(node)!.join('').length, 262_144).map(async (chunk) => {
      const r = await this.exec.run(['sh', '-c', CONFIGURE_MANY, 'sh', CONFIGURE, ...chunk.flatMap((node) => [this.netnsPath(node), ...args.get(node)!])]);
      const out = sections(r.stdout);
      const err = sections(r.stderr);
      for (const node of chunk) {
        const text = out.get(this.netnsPath(node));
        const failed = text === undefined ? -1 : /^@@failed (\d+)$/m.exec(text)?.[1];
        if (failed !== undefined) this.configureFailed(node, Number(failed), text === undefined ? r.stderr : err.get(this.netnsPath(node)) ?? '');
        snapshots.set(node, text!);
      }
    }));
    return snapshots;
  }

  /** A node's bridge flag, sysctls ("file value" lines) and `ip -batch` lines (with `link show` last). */
  private configureArgs(node: string): [string, string, string] {
    const { ip, sysctls: planned } = this.plan.perNode.get(node)!;
    const sysctls = node === this.options.rootNode ? rootNodeSysctls(planned, this.lab.topology.nodes[node]) : planned;
    return [
      this.hasBridgePorts(node) ? '1' : '0',
      sysctls.map((a) => sysctlFile(a).join(' ')).join('\n'),
      // `link show` last: a first look at readiness, for the nodes whose links are checked at all.
      [...this.vethRenames(node), ...ip.map((argv) => shellQuote(argv)), ...(this.checkedEnds().has(node) ? ['link show'] : [])].join('\n'),
    ];
  }

  private configureFailed(node: string, code: number, stderr: string): never {
    if (code === 101) throw new Error(`lab ${this.lab.id}: node ${node}: sysctl failed: ${stderr.trim()}`);
    throw new Error(`lab ${this.lab.id}: node ${node}: ip -batch failed: ${stderr.trim()}`);
  }

  /** One process per node (before: two through `ip netns exec` or `docker exec`, and one more per
   * readiness poll): sysctls, the node's `ip -batch`, then `link show` (and `bridge link show` on a
   * node with bridge ports) as a first look at readiness. */
  private async configureNode(node: string): Promise<string> {
    const [bridged, sysctls, batch] = this.configureArgs(node);
    const r = await this.exec.run(this.enter(node, ['sh', '-c', CONFIGURE, 'sh', bridged, sysctls]), { stdin: `${batch}\n` });
    if (r.code !== 0) this.configureFailed(node, r.code ?? -1, r.stderr);
    return r.stdout;
  }

  private hasBridgePorts(node: string): boolean {
    return this.lab.topology.links.some((l) => (l.a.node === node && l.a.bridge) || (l.b.node === node && l.b.bridge));
  }

  /** The link ends whose readiness is checked in their own node, by node (see waitForLinks). */
  private checkedEnds(): Map<string, { iface: string; bridged: boolean }[]> {
    if (this.checked) return this.checked;
    const hubs = new Set(Object.values(this.lab.topology.bridges ?? {}).map((b) => b.node));
    const ends = new Map<string, { iface: string; bridged: boolean }[]>();
    for (const link of this.lab.topology.links) {
      for (const [end, peer] of [[link.a, link.b], [link.b, link.a]] as const) {
        // An end whose peer is on a hub is vouched for by the peer: hubs are configured first, so
        // this end comes up second, and veth_open() (drivers/net/veth.c) queues the carrier event of
        // the end being opened before its peer's; linkwatch (net/core/link_watch.c) handles its
        // queue in order. So once the hub shows the peer UP, this end was processed too, and only
        // the hub (one process) is polled, not each of its hundreds of neighbours.
        if (!hubs.has(end.node) && hubs.has(peer.node)) continue;
        if (!ends.has(end.node)) ends.set(end.node, []);
        ends.get(end.node)!.push({ iface: end.name, bridged: end.bridge !== undefined });
      }
    }
    this.checked = ends;
    return ends;
  }
  private checked?: Map<string, { iface: string; bridged: boolean }[]>;

  /** `ip link set up` returns before the kernel has processed the carrier change (linkwatch runs
   * asynchronously and is rate-limited), and until then a bridge port does not forward: the first
   * ARP request of a step can vanish. Wait until every veth end is UP and every bridge port forwards. */
  private async waitForLinks(snapshots: Map<string, string>): Promise<void> {
    const ends = this.checkedEnds();
    const ready = (list: { iface: string; bridged: boolean }[], states: string) => {
      const lines = linesByIface(states);
      return list.every((e) => (e.bridged ? lines.ports.get(e.iface)?.includes(' state forwarding ') : true) && lines.links.get(e.iface)?.includes(' state UP '));
    };
    // Only the nodes whose first look (taken right after configuring them) was not ready are polled,
    // many namespaces per process (one shell visits each in turn), a few processes at once.
    let waiting = [...ends].filter(([node, list]) => !ready(list, snapshots.get(node) ?? ''));
    const deadline = Date.now() + 10_000;
    while (waiting.length > 0) {
      const args = waiting.map(([node, list]) => `${list.some((e) => e.bridged) ? '+' : ''}${this.netnsPath(node)}`);
      const chunk = Math.ceil(args.length / defaultParallelism());
      const outputs = await Promise.all(Array.from({ length: Math.ceil(args.length / chunk) }, (_, i) =>
        this.exec.run(['sh', '-c', LINK_STATES, 'sh', ...args.slice(i * chunk, (i + 1) * chunk)])));
      const states = sections(outputs.map((o) => o.stdout).join(''));
      waiting = waiting.filter(([node, list]) => !ready(list, states.get(this.netnsPath(node)) ?? ''));
      if (waiting.length === 0) return;
      if (Date.now() > deadline) {
        const [node] = waiting[0]!;
        throw new Error(`lab ${this.lab.id}: the links of node ${node}${waiting.length > 1 ? ` (and ${waiting.length - 1} more)` : ''} did not come up within 10 s:\n${states.get(this.netnsPath(node)) ?? ''}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Starts the TCP responder detached (it must outlive `nflab up`) and waits until it listens. */
  private async startResponder(node: string, port: number): Promise<void> {
    const responder = this.exec.spawn(this.wrap(node, responderArgv(node, port)), { detached: true });
    // Recorded for `nflab clean` and the watchdog (it also dies with its namespace, but a container
    // node's responder is a `docker exec` client outside any namespace of the run).
    if (responder.pid !== undefined && !this.tornDown && this.exec instanceof LocalExecutor) {
      this.record.processes = [...(this.record.processes ?? []), { pid: responder.pid, startTime: processStartTime(responder.pid), what: `responder ${node}:${port}` }];
      writeRecord(this.record);
    }
    const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
    for (let attempt = 0; attempt < 200; attempt++) {
      const tcp = await this.exec.run(this.wrap(node, ['cat', '/proc/net/tcp']));
      // State 0A is LISTEN; local address column is hexIP:hexPORT.
      if (tcp.stdout.split('\n').some((l) => l.includes(hexPort) && / 0A /.test(l))) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`lab ${this.lab.id}: the responder on ${node}:${port} did not start listening`);
  }

  /** Removes every object of the run. Idempotent; never throws (teardown must always finish). */
  async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    await this.timed('teardown', () => Promise.allSettled([this.netns.destroy(), this.docker?.destroy()]));
    for (const p of this.record.processes ?? []) {
      if (p.startTime !== undefined && processStartTime(p.pid) === p.startTime) {
        try { process.kill(p.pid, 'SIGKILL'); } catch { /* ended meanwhile */ }
      }
    }
    // A signal during teardown ends teardown's own commands too (the CLI kills every running
    // child): replay the journal until none of the run's namespaces is left. Should some remain,
    // the journal stays and the watchdog is not told "done": it removes them once nflab exits.
    let left = await this.namespacesLeft();
    for (let attempt = 0; left.length > 0 && attempt < 3; attempt++) {
      // Without the root namespace's state: restored once, below, when the namespaces are gone.
      await removeRun(this.exec, { ...this.record, root: undefined }, { keepRecord: true }).catch(() => []);
      left = await this.namespacesLeft();
    }
    if (left.length > 0) return;
    if (this.record.root) {
      const problems = await restoreRoot(this.exec, this.record.root);
      if (problems.length > 0) {
        // The journal stays, so `nflab clean` (or the watchdog, once nflab exits) tries again.
        process.stderr.write(`nflab: run ${this.runId}: the root namespace of ${this.exec.name} could not be fully restored:\n${problems.map((p) => `  - ${p}`).join('\n')}\n  fix: nflab clean${this.exec.name === 'this machine' ? '' : ` --target ${this.exec.name}`}\n`);
        return;
      }
    }
    removeRecord(this.runId);
    this.watchdog?.done();
  }

  /** The run's namespaces that still exist (a failed listing counts as all of them). */
  private async namespacesLeft(): Promise<string[]> {
    if (this.record.netns.length === 0) return [];
    const r = await this.exec.run(['ip', 'netns', 'list']);
    if (r.code !== 0) return this.record.netns;
    const present = new Set(r.stdout.split('\n').map((l) => l.split(' ')[0]));
    return this.record.netns.filter((ns) => present.has(ns));
  }

  /** Hands the run over to a later `nflab down`: the record stays, marked kept. */
  keep(step?: number): RunRecord {
    this.tornDown = true;
    this.record = { ...this.record, kept: true, step };
    writeRecord(this.record);
    this.watchdog?.done();
    return this.record;
  }
}

// Inside a node: $1 = 1 when it has bridge ports, $2 "file value" lines of sysctls, the ip batch on
// stdin. The sysctls are written by the shell itself (what `sysctl -w` does: the value and a newline
// into the file), one process fewer per node. Exit 101: a sysctl could not be written; otherwise
// ip's or bridge's status.
// The batch comes as $3 when it is small (no pipe from the caller), else on stdin.
const CONFIGURE = 'set -f; b=$1; IFS="\n"; for l in $2; do printf "%s\\n" "${l#* }" > "${l%% *}" || exit 101; done; unset IFS; '
  + 'if [ $# -ge 3 ]; then printf "%s\\n" "$3" | ip -o -batch - || exit; else ip -o -batch - || exit; fi; echo @@ports; if [ "$b" = 1 ]; then bridge -o link show; fi';
// Many nodes in turn: $1 the script above, then per node its namespace file, bridge flag, sysctls and
// batch. Each node's output (and error output) is a section "@@node FILE"; a failure adds "@@failed CODE".
const CONFIGURE_MANY = 'c=$1; shift; while [ $# -ge 4 ]; do echo "@@node $1"; echo "@@node $1" >&2; nsenter --net="$1" sh -c "$c" sh "$2" "$3" "$4" </dev/null || echo "@@failed $?"; shift 4; done';

/** Output cut into the "@@node FILE" sections of CONFIGURE_MANY and LINK_STATES, by file. */
function sections(output: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const section of output.split('@@node ').slice(1)) {
    const nl = section.indexOf('\n');
    out.set(nl < 0 ? section : section.slice(0, nl), nl < 0 ? '' : section.slice(nl + 1));
  }
  return out;
}

/** Items split into at most `count` chunks of similar size, none over `budget` (by `size`). */
function chunks<T>(items: T[], count: number, size: (item: T) => number, budget: number): T[][] {
  const target = Math.ceil(items.length / Math.max(1, count));
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    if (current.length > 0 && (current.length >= target || bytes + size(item) > budget)) { out.push(current); current = []; bytes = 0; }
    current.push(item);
    bytes += size(item);
  }
  if (current.length > 0) out.push(current);
  return out;
}

// Arguments: namespace files, '+' in front for a node with bridge ports; one "@@node FILE" section each.
const LINK_STATES = 'for a; do p=${a#+}; echo "@@node $p"; nsenter --net="$p" ip -o link show; echo @@ports; if [ "$p" != "$a" ]; then nsenter --net="$p" bridge -o link show; fi; done';

/** The `ip -o link` lines (before @@ports) and `bridge -o link` lines (after) of each interface,
 * by name (`5: veth0@if2: <...> ... state UP ...`); one pass, since a hub can have 1000 ports. */
function linesByIface(output: string): { links: Map<string, string>; ports: Map<string, string> } {
  const links = new Map<string, string>();
  const ports = new Map<string, string>();
  let into = links;
  for (const line of output.split('\n')) {
    if (line === '@@ports') { into = ports; continue; }
    const m = /^\d+: ([^\s:@]+)[@:]/.exec(line);
    if (m) into.set(m[1]!, line);
  }
  return { links, ports };
}
