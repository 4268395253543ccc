// One run's private world: a namespace per host/outside node, a namespace or container per
// container node, the links between them, and teardown that always happens. It executes the
// lab's one build plan (src/resolve/build-plan.ts) phase by phase and logs every item as a person
// would type it (`log`), the same lines `nflab show` prints.
//
// The states of a run: planned (`new Sandbox`, nothing created) → built (`build()`, or `attach()`
// for a run that a kept `nflab up` left) → kept (`keep()`: `nflab up`) or torn down (`teardown()`).
import type { Command } from '../lab/types.ts';
import type { Executor, RunResult } from '../exec/types.ts';
import type { NodeDriver } from '../drivers/types.ts';
import { NetnsDriver, netnsName } from '../drivers/netns.ts';
import { callerOwner } from './owner.ts';
import { newRunId, processStartTime, removeRecord, writeRecord, type RunRecord } from './journal.ts';
import { startWatchdog, type Watchdog } from './watchdog.ts';
import { removeRun } from './cleanup.ts';
import { LocalExecutor } from '../exec/local.ts';
import { shellQuote } from '../exec/quote.ts';
import { defaultParallelism, mapLimit } from '../exec/pool.ts';
import { sysctlFile } from './sysctl-file.ts';
import { assertVirtualMachine, labSubnets, restoreRoot, snapshotRoot } from './root-namespace.ts';
import type { DriverKind, Lab } from '../lab/types.ts';
import type { ResolvedLab } from '../resolve/resolve-lab.ts';
import { renameLines, type BuildPlan, type NodeConfig } from '../resolve/build-plan.ts';
import { limitsOf } from '../resolve/bounds.ts';
import {
  configureLines,
  createLine,
  probeLine,
  responderLine,
  setupLine,
  vethLine,
  WAIT_LINE,
  type Phase,
  type PlanLine,
} from '../resolve/plan-display.ts';
import { missingFeature } from '../observe/feature-probe.ts';
import { BuildFailed, CommandFailed, EnvError, Interrupted, LabSkipped } from '../errors.ts';
import { nodeHandle, type NodeHandle } from './node-handle.ts';
import type { IptablesBackend } from './iptables-backend.ts';

export interface SandboxOptions {
  image?: string;
  /** Keep the sandbox after nflab exits (nflab up). */
  kept?: boolean;
  runId?: string;
  /** Start a watchdog that cleans up if nflab dies without tearing down (default: on for this machine). */
  watchdog?: boolean;
  /** The iptables every command in a node runs: iptables-nft (default) or iptables-legacy (--iptables). */
  iptables?: IptablesBackend;
}

export class Sandbox {
  readonly runId: string;
  readonly lab: Lab;
  readonly plan: BuildPlan;
  /** The build plan's items as executed, as a person types them (test/build-plan.test.ts). */
  readonly log: PlanLine[] = [];
  private readonly netns: NetnsDriver;
  private docker?: NodeDriver;
  private record: RunRecord;
  private tornDown = false;
  private watchdog?: Watchdog;
  private readonly handles = new Map<string, NodeHandle>();
  /** Milliseconds spent in each phase of build and teardown, for profiles (scripts/bench). */
  readonly timings: Record<string, number> = {};

  constructor(
    readonly resolved: ResolvedLab,
    readonly exec: Executor,
    readonly options: SandboxOptions,
  ) {
    this.runId = options.runId ?? newRunId();
    this.lab = resolved.lab;
    this.plan = resolved.plan;
    this.netns = new NetnsDriver({ runId: this.runId, exec, rootNode: resolved.rootNode });
    const nodes = Object.keys(this.lab.topology.nodes);
    this.record = {
      runId: this.runId,
      pid: process.pid,
      pidStartTime: processStartTime(process.pid),
      labId: this.lab.id,
      target: exec.name,
      labFile: this.lab.file,
      driver: resolved.driver,
      kept: options.kept ?? false,
      building: true,
      netns: this.plan.create.filter((c) => c.realisation === 'netns').map((c) => netnsName(this.runId, c.node)),
      containers: nodes.some((n) => resolved.realisationOf(n) === 'docker'),
      processes: [],
      owner: callerOwner(),
      createdAt: new Date().toISOString(),
      ...(options.iptables ? { iptables: options.iptables } : {}),
      ...(this.lab.kubeProxy ? { kubeProxy: this.lab.kubeProxy.options.era } : {}),
    };
  }

  /** A built run of a lab that `nflab up` kept: its nodes found again from its record, for check,
   * trace and what comes next. Throws EnvError when a node is gone. */
  static async attach(resolved: ResolvedLab, exec: Executor, record: RunRecord): Promise<Sandbox> {
    const run = new Sandbox(resolved, exec, {
      runId: record.runId,
      kept: true,
      image: undefined,
      iptables: record.iptables,
    });
    run.record = record;
    run.tornDown = true; // teardown of a kept run is `nflab down`'s: never by an attached copy
    const nodes = Object.keys(resolved.lab.topology.nodes);
    await run.netns.attach(nodes.filter((n) => resolved.driverOf(n) === 'netns'));
    const containers = nodes.filter((n) => resolved.realisationOf(n) === 'docker');
    if (containers.length > 0) {
      await run.dockerDriver();
      await run.docker!.attach(containers);
    }
    return run;
  }

  /** The node that is the machine's own root namespace (--root-namespace), if any. */
  get rootNode(): string | undefined {
    return this.resolved.rootNode;
  }

  /** How container nodes are realised by default in this run. */
  get driver(): DriverKind {
    return this.resolved.driver;
  }

  kindOf(node: string): DriverKind {
    return this.resolved.driverOf(node);
  }

  driverOf(node: string): NodeDriver {
    if (this.kindOf(node) === 'netns') return this.netns;
    if (!this.docker) throw new Error('the Docker driver is not ready');
    return this.docker;
  }

  /** The handle through which everything done in a node goes. */
  node(name: string): NodeHandle {
    let handle = this.handles.get(name);
    if (!handle) {
      handle = nodeHandle(
        name,
        this.resolved.realisationOf(name),
        this.driverOf(name),
        this.exec,
        this.resolved.show,
        this.options.iptables,
      );
      this.handles.set(name, handle);
    }
    return handle;
  }

  /** With --root-namespace: that node and the lab's networks (what of the machine's traffic is the lab's). */
  rootNetworks(): { node: string; networks: string[] } | undefined {
    return this.rootNode ? { node: this.rootNode, networks: labSubnets(this.lab) } : undefined;
  }

  /** A lab command as a person types it for this run's drivers. */
  display(command: Command): string {
    return this.resolved.display(command);
  }

  async run(command: Command, options: { timeoutMs?: number } = {}): Promise<RunResult> {
    return this.node(command.node).run(command.argv, { stdin: command.stdin, ...options });
  }

  private async dockerDriver(): Promise<void> {
    if (this.docker) return;
    const { DockerDriver } = await import('../drivers/docker.ts');
    this.docker = new DockerDriver({ runId: this.runId, exec: this.exec, image: this.options.image });
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

  /** Runs a phase of the plan: its wall time goes to `timings`, and an unexpected failure becomes
   * BuildFailed naming the phase (typed errors pass through as they are). */
  private async phase<T>(name: Phase, work: () => Promise<T>): Promise<T> {
    try {
      return await this.timed(name, work);
    } catch (err) {
      if (
        err instanceof EnvError ||
        err instanceof LabSkipped ||
        err instanceof CommandFailed ||
        err instanceof BuildFailed ||
        err instanceof Interrupted
      )
        throw err;
      throw new BuildFailed(name, `lab ${this.lab.id}: ${name}: ${(err as Error).message}`);
    }
  }

  private logged(phase: Phase, lines: string[]): void {
    for (const text of lines) this.log.push({ phase, text });
  }

  /** Executes the build plan, phase by phase (src/resolve/build-plan.ts). */
  async build(): Promise<void> {
    const r = this.resolved;
    // Root mode: refused on bare metal or on a collision, and the state to put back goes into the
    // journal with the rest, before the first change.
    if (this.rootNode) {
      await assertVirtualMachine(this.exec, this.lab.id);
      this.record.root = await snapshotRoot(this.exec, this.lab, this.rootNode, this.options.iptables);
    }
    // The watchdog first, the record second, then the objects: nflab may be killed between any two.
    if (this.options.watchdog ?? this.exec instanceof LocalExecutor) {
      this.watchdog = startWatchdog(this.runId);
      this.record.watchdog = this.watchdog.ref;
    }
    writeRecord(this.record);
    const containerNodes = this.plan.create.filter((c) => c.realisation === 'docker').map((c) => c.node);
    if (containerNodes.length > 0) await this.dockerDriver();
    await this.phase('create nodes', async () => {
      this.logged(
        'create nodes',
        this.plan.create.map((c) => createLine(r, c.node)),
      );
      await Promise.all([
        this.netns.create(this.plan.create.filter((c) => c.realisation === 'netns').map((c) => c.node)),
        containerNodes.length > 0 ? this.docker!.create(containerNodes) : undefined,
      ]);
    });
    // Before anything is configured: a lab's own sysctls may not exist on a kernel without the feature.
    await this.phase('probe features', async () => {
      for (const p of this.plan.probes) {
        this.logged('probe features', [probeLine(r, p)]);
        const reason = await missingFeature(this.exec, (argv) => this.node(p.node).wrap(argv), p.probe);
        if (reason) throw new LabSkipped(reason);
      }
    });
    if (this.rootNode) {
      // The lab's interfaces in the root namespace without IPv6 (no router solicitations in the
      // captures), the machine's own interfaces untouched: new links take the `default` setting.
      // (No such file on a kernel booted without IPv6: nothing to quiet then.)
      await this.exec.run([
        'sh',
        '-c',
        'if [ -e "$1" ]; then printf "1\\n" > "$1"; fi',
        'sh',
        '/proc/sys/net/ipv6/conf/default/disable_ipv6',
      ]);
    }
    await this.phase('create veths', () => this.createVeths());
    const snapshots = await this.phase('configure nodes', () => this.configureNodes());
    await this.phase('wait for links', () => this.waitForLinks(snapshots));
    await this.phase('setup', async () => {
      const { commandSeconds } = limitsOf(this.lab);
      for (const command of this.plan.setup) {
        this.logged('setup', [setupLine(r, command)]);
        const result = await this.run(command, { timeoutMs: commandSeconds * 1000 });
        if (result.code === null)
          throw new CommandFailed(
            command.node,
            this.display(command),
            result,
            `setup command did not end within its limit of ${commandSeconds} s (limits.commandSeconds)`,
          );
        if (result.code !== 0)
          throw new CommandFailed(command.node, this.display(command), result, 'setup command failed');
      }
    });
    await this.phase('responders', async () => {
      this.logged(
        'responders',
        this.plan.responders.map((x) => responderLine(r, x)),
      );
      await Promise.all(this.plan.responders.map(({ node, port, argv }) => this.startResponder(node, port, argv)));
    });
  }

  /** The first end of a veth while it is created: unique to the run. Kernels before ~6.6 check
   * that name in the caller's (root) namespace even when it is created straight into another
   * one, so `eth0` would collide with the machine's own eth0; its node renames it first thing.
   * (The peer's name is checked in its own namespace.) */
  private vethTempName(index: number): string {
    return `nv${this.runId}${index.toString(36)}`;
  }

  private async createVeths(): Promise<void> {
    if (this.plan.veths.length === 0) return;
    this.logged(
      'create veths',
      this.plan.veths.map((v, i) => vethLine(this.resolved, v, i)),
    );
    // Both ends are created directly inside their namespaces: nothing appears in the root namespace.
    const lines = this.plan.veths.map((v, i) =>
      [
        'link',
        'add',
        this.vethTempName(i),
        'netns',
        this.driverOf(v.a.node).netnsRef(v.a.node),
        'type',
        'veth',
        'peer',
        'name',
        shellQuote([v.b.name]),
        'netns',
        this.driverOf(v.b.node).netnsRef(v.b.node),
      ].join(' '),
    );
    const result = await this.exec.run(['ip', '-batch', '-'], { stdin: lines.join('\n') + '\n' });
    if (result.code !== 0)
      throw new BuildFailed('create veths', `lab ${this.lab.id}: could not create veth pairs: ${result.stderr.trim()}`);
  }

  /** The file of the node's network namespace: its bind mount, or the container's /proc/PID/ns/net. */
  private netnsPath(node: string): string {
    return this.driverOf(node).netnsPath(node);
  }

  /** Nodes that own a bridge first (a hub's ports are then up when the other ends come up, so those
   * are ready sooner), then the rest; at most defaultParallelism() processes at once (starting
   * hundreds together only thrashes). Returns each node's link states as they were just after. */
  private async configureNodes(): Promise<Map<string, string>> {
    for (const c of this.plan.configure) this.logged('configure nodes', configureLines(this.resolved, c));
    const hubs = new Set(Object.values(this.lab.topology.bridges ?? {}).map((b) => b.node));
    const snapshots = new Map<string, string>();
    const nodes = this.plan.configure.map((c) => c.node);
    await mapLimit(
      nodes.filter((n) => hubs.has(n)),
      defaultParallelism(),
      async (node) => snapshots.set(node, await this.configureNode(node)),
    );
    // The other nodes have small batches: many per process. Starting a process from node costs
    // ~3× what it costs from a shell (scripts/bench), so one shell per chunk enters each namespace
    // in turn; a node's sysctls and batch travel as arguments (a few hundred bytes each).
    const rest = nodes.filter((n) => !hubs.has(n));
    const args = new Map(rest.map((node) => [node, this.configureArgs(node)]));
    const big = rest.filter((n) => args.get(n)!.join('').length > 32_768);
    await mapLimit(big, defaultParallelism(), async (node) => snapshots.set(node, await this.configureNode(node)));
    const small = rest.filter((n) => !big.includes(n));
    await Promise.all(
      chunks(small, defaultParallelism(), (node) => args.get(node)!.join('').length, 262_144).map(async (chunk) => {
        const r = await this.exec.run([
          'sh',
          '-c',
          CONFIGURE_MANY,
          'sh',
          CONFIGURE,
          ...chunk.flatMap((node) => [this.netnsPath(node), ...args.get(node)!]),
        ]);
        const out = sections(r.stdout);
        const err = sections(r.stderr);
        for (const node of chunk) {
          const text = out.get(this.netnsPath(node));
          const failed = text === undefined ? -1 : /^@@failed (\d+)$/m.exec(text)?.[1];
          if (failed !== undefined)
            this.configureFailed(
              node,
              Number(failed),
              text === undefined ? r.stderr : (err.get(this.netnsPath(node)) ?? ''),
            );
          snapshots.set(node, text!);
        }
      }),
    );
    return snapshots;
  }

  /** A node's bridge flag, sysctls ("file value" lines) and `ip -batch` lines (with `link show` last). */
  private configureArgs(node: string): [string, string, string] {
    const config = this.configOf(node);
    return [
      this.hasBridgePorts(node) ? '1' : '0',
      config.sysctls.map((a) => sysctlFile(a).join(' ')).join('\n'),
      // Renames first; `link show` last: a first look at readiness, for the nodes whose links are checked at all.
      [...renameLines(config, (i) => this.vethTempName(i)), ...config.ip]
        .map((argv) => shellQuote(argv))
        .concat(this.checkedEnds().has(node) ? ['link show'] : [])
        .join('\n'),
    ];
  }

  private configOf(node: string): NodeConfig {
    if (!this.configs) this.configs = new Map(this.plan.configure.map((c) => [c.node, c]));
    return this.configs.get(node)!;
  }
  private configs?: Map<string, NodeConfig>;

  private configureFailed(node: string, code: number, stderr: string): never {
    if (code === 101)
      throw new BuildFailed(
        'configure nodes',
        `lab ${this.lab.id}: node ${node}: sysctl failed: ${stderr.trim()}`,
        node,
      );
    throw new BuildFailed(
      'configure nodes',
      `lab ${this.lab.id}: node ${node}: ip -batch failed: ${stderr.trim()}`,
      node,
    );
  }

  /** One process per node (before: two through `ip netns exec` or `docker exec`, and one more per
   * readiness poll): sysctls, the node's `ip -batch`, then `link show` (and `bridge link show` on a
   * node with bridge ports) as a first look at readiness. */
  private async configureNode(node: string): Promise<string> {
    const [bridged, sysctls, batch] = this.configureArgs(node);
    const r = await this.exec.run(this.node(node).enter(['sh', '-c', CONFIGURE, 'sh', bridged, sysctls]), {
      stdin: `${batch}\n`,
    });
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
      for (const [end, peer] of [
        [link.a, link.b],
        [link.b, link.a],
      ] as const) {
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
    if (this.plan.waitLinks.length > 0) this.logged('wait for links', [WAIT_LINE]);
    const ends = this.checkedEnds();
    const ready = (list: { iface: string; bridged: boolean }[], states: string) => {
      const lines = linesByIface(states);
      return list.every(
        (e) =>
          (e.bridged ? lines.ports.get(e.iface)?.includes(' state forwarding ') : true) &&
          lines.links.get(e.iface)?.includes(' state UP '),
      );
    };
    // Only the nodes whose first look (taken right after configuring them) was not ready are polled,
    // many namespaces per process (one shell visits each in turn), a few processes at once.
    let waiting = [...ends].filter(([node, list]) => !ready(list, snapshots.get(node) ?? ''));
    const deadline = Date.now() + 10_000;
    while (waiting.length > 0) {
      const args = waiting.map(([node, list]) => `${list.some((e) => e.bridged) ? '+' : ''}${this.netnsPath(node)}`);
      const chunk = Math.ceil(args.length / defaultParallelism());
      const outputs = await Promise.all(
        Array.from({ length: Math.ceil(args.length / chunk) }, (_, i) =>
          this.exec.run(['sh', '-c', LINK_STATES, 'sh', ...args.slice(i * chunk, (i + 1) * chunk)]),
        ),
      );
      const states = sections(outputs.map((o) => o.stdout).join(''));
      waiting = waiting.filter(([node, list]) => !ready(list, states.get(this.netnsPath(node)) ?? ''));
      if (waiting.length === 0) return;
      if (Date.now() > deadline) {
        const [node] = waiting[0]!;
        throw new BuildFailed(
          'wait for links',
          `lab ${this.lab.id}: the links of node ${node}${waiting.length > 1 ? ` (and ${waiting.length - 1} more)` : ''} did not come up within 10 s:\n${states.get(this.netnsPath(node)) ?? ''}`,
          node,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Starts the TCP responder detached (it must outlive `nflab up`) and waits until it listens. */
  private async startResponder(node: string, port: number, argv: string[]): Promise<void> {
    const responder = this.node(node).spawn(argv, { detached: true });
    // Recorded for `nflab clean` and the watchdog (it also dies with its namespace, but a container
    // node's responder is a `docker exec` client outside any namespace of the run).
    if (responder.pid !== undefined && !this.tornDown && this.exec instanceof LocalExecutor) {
      this.record.processes = [
        ...(this.record.processes ?? []),
        { pid: responder.pid, startTime: processStartTime(responder.pid), what: `responder ${node}:${port}` },
      ];
      writeRecord(this.record);
    }
    const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
    for (let attempt = 0; attempt < 200; attempt++) {
      const tcp = await this.node(node).run(['cat', '/proc/net/tcp']);
      // State 0A is LISTEN; local address column is hexIP:hexPORT.
      if (tcp.stdout.split('\n').some((l) => l.includes(hexPort) && / 0A /.test(l))) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new BuildFailed(
      'responders',
      `lab ${this.lab.id}: the responder on ${node}:${port} did not start listening`,
      node,
    );
  }

  /** Removes every object of the run. Idempotent; never throws (teardown must always finish). */
  async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    await this.timed('teardown', () => Promise.allSettled([this.netns.destroy(), this.docker?.destroy()]));
    for (const p of this.record.processes ?? []) {
      if (p.startTime !== undefined && processStartTime(p.pid) === p.startTime) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          /* ended meanwhile */
        }
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
        process.stderr.write(
          `nflab: run ${this.runId}: the root namespace of ${this.exec.name} could not be fully restored:\n${problems.map((p) => `  - ${p}`).join('\n')}\n  fix: nflab clean${this.exec.name === 'this machine' ? '' : ` --target ${this.exec.name}`}\n`,
        );
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
    this.record = { ...this.record, kept: true, building: false, step };
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
const CONFIGURE =
  'set -f; b=$1; IFS="\n"; for l in $2; do printf "%s\\n" "${l#* }" > "${l%% *}" || exit 101; done; unset IFS; ' +
  'if [ $# -ge 3 ]; then printf "%s\\n" "$3" | ip -o -batch - || exit; else ip -o -batch - || exit; fi; echo @@ports; if [ "$b" = 1 ]; then bridge -o link show; fi';
// Many nodes in turn: $1 the script above, then per node its namespace file, bridge flag, sysctls and
// batch. Each node's output (and error output) is a section "@@node FILE"; a failure adds "@@failed CODE".
const CONFIGURE_MANY =
  'c=$1; shift; while [ $# -ge 4 ]; do echo "@@node $1"; echo "@@node $1" >&2; nsenter --net="$1" sh -c "$c" sh "$2" "$3" "$4" </dev/null || echo "@@failed $?"; shift 4; done';

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
    if (current.length > 0 && (current.length >= target || bytes + size(item) > budget)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size(item);
  }
  if (current.length > 0) out.push(current);
  return out;
}

// Arguments: namespace files, '+' in front for a node with bridge ports; one "@@node FILE" section each.
const LINK_STATES =
  'for a; do p=${a#+}; echo "@@node $p"; nsenter --net="$p" ip -o link show; echo @@ports; if [ "$p" != "$a" ]; then nsenter --net="$p" bridge -o link show; fi; done';

/** The `ip -o link` lines (before @@ports) and `bridge -o link` lines (after) of each interface,
 * by name (`5: veth0@if2: <...> ... state UP ...`); one pass, since a hub can have 1000 ports. */
function linesByIface(output: string): { links: Map<string, string>; ports: Map<string, string> } {
  const links = new Map<string, string>();
  const ports = new Map<string, string>();
  let into = links;
  for (const line of output.split('\n')) {
    if (line === '@@ports') {
      into = ports;
      continue;
    }
    const m = /^\d+: ([^\s:@]+)[@:]/.exec(line);
    if (m) into.set(m[1]!, line);
  }
  return { links, ports };
}
