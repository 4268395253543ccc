// One run's private world: a namespace per host/outside node, a namespace or container per
// container node, the links between them, and teardown that always happens.
import type { Command, DriverKind, Lab } from '../lab/types.ts';
import type { Executor, RunResult } from '../exec/types.ts';
import type { NodeDriver } from '../drivers/types.ts';
import { NetnsDriver } from '../drivers/netns.ts';
import { planTopology, type TopologyPlan } from '../topology/plan.ts';
import { newRunId, removeRecord, writeRecord, type RunRecord } from './journal.ts';
import { netnsName } from '../drivers/netns.ts';
import { responderArgv } from '../observe/parse-tcp-client.ts';
import { shellQuote } from '../exec/quote.ts';
import { commandDisplay } from '../exec/display.ts';

export interface SandboxOptions {
  /** Driver for container nodes (host and outside nodes are always namespaces). */
  driver: DriverKind;
  image?: string;
  /** Keep the sandbox after nflab exits (nflab up). */
  kept?: boolean;
  runId?: string;
}

export class Sandbox {
  readonly runId: string;
  readonly plan: TopologyPlan;
  private readonly netns: NetnsDriver;
  private docker?: NodeDriver;
  private record: RunRecord;
  private tornDown = false;

  constructor(readonly lab: Lab, readonly exec: Executor, readonly options: SandboxOptions) {
    this.runId = options.runId ?? newRunId();
    this.plan = planTopology(lab.topology);
    this.netns = new NetnsDriver({ runId: this.runId, exec });
    const netnsNodes = this.plan.nodes.filter((n) => this.kindOf(n) === 'netns');
    this.record = {
      runId: this.runId, pid: process.pid, labId: lab.id, labFile: lab.file, driver: options.driver,
      kept: options.kept ?? false, netns: netnsNodes.map((n) => netnsName(this.runId, n)),
      containers: netnsNodes.length < this.plan.nodes.length, pids: [], createdAt: new Date().toISOString(),
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
    return this.driverOf(node).wrap(node, argv, { stdin });
  }

  /** A command as a person types it for this run's drivers. */
  display(command: Command): string {
    return commandDisplay(command, this.kindOf(command.node));
  }

  /** Observers (tcpdump, the tracer) must be stoppable by signal: run them in the node's network
   * namespace directly, since a signal to a `docker exec` client does not reach the process. */
  observerWrap(node: string, argv: string[]): string[] {
    if (this.kindOf(node) === 'netns') return this.wrap(node, argv);
    return ['nsenter', '-t', this.driverOf(node).netnsRef(node), '-n', ...argv];
  }

  async run(command: Command): Promise<RunResult> {
    return this.exec.run(this.wrap(command.node, command.argv, command.stdin !== undefined), { stdin: command.stdin });
  }

  async build(): Promise<void> {
    writeRecord(this.record);
    const containerNodes = this.plan.nodes.filter((n) => this.kindOf(n) === 'docker');
    if (containerNodes.length > 0) {
      const { DockerDriver } = await import('../drivers/docker.ts');
      this.docker = new DockerDriver({ runId: this.runId, exec: this.exec, image: this.options.image });
    }
    await Promise.all([
      this.netns.create(this.plan.nodes.filter((n) => this.kindOf(n) === 'netns')),
      containerNodes.length > 0 ? this.docker!.create(containerNodes) : undefined,
    ]);
    await this.createVeths();
    await Promise.all(this.plan.nodes.map((node) => this.configureNode(node)));
    await this.waitForLinks();
    for (const command of this.plan.setup) {
      const result = await this.run(command);
      if (result.code !== 0) throw new Error(`lab ${this.lab.id}: setup command failed: ${this.display(command)}\n${result.stderr.trim()}`);
    }
    await Promise.all(this.plan.listeners.map(({ node, port }) => this.startResponder(node, port)));
  }

  private async createVeths(): Promise<void> {
    if (this.plan.veths.length === 0) return;
    // Both ends are created directly inside their namespaces: nothing appears in the root namespace.
    const lines = this.plan.veths.map((v) =>
      ['link', 'add', v.a.name, 'netns', this.driverOf(v.a.node).netnsRef(v.a.node), 'type', 'veth', 'peer', 'name', v.b.name, 'netns', this.driverOf(v.b.node).netnsRef(v.b.node)].join(' '));
    const result = await this.exec.run(['ip', '-batch', '-'], { stdin: lines.join('\n') + '\n' });
    if (result.code !== 0) throw new Error(`lab ${this.lab.id}: could not create veth pairs: ${result.stderr.trim()}`);
  }

  private async configureNode(node: string): Promise<void> {
    const { sysctls, ip } = this.plan.perNode.get(node)!;
    if (sysctls.length > 0) {
      const r = await this.exec.run(this.wrap(node, ['sysctl', '-q', '-w', ...sysctls]));
      if (r.code !== 0) throw new Error(`lab ${this.lab.id}: node ${node}: sysctl failed: ${r.stderr.trim()}`);
    }
    const batch = ip.map((argv) => shellQuote(argv)).join('\n') + '\n';
    const r = await this.exec.run(this.wrap(node, ['ip', '-batch', '-'], true), { stdin: batch });
    if (r.code !== 0) throw new Error(`lab ${this.lab.id}: node ${node}: ip -batch failed: ${r.stderr.trim()}`);
  }

  /** `ip link set up` returns before the kernel has processed the carrier change (linkwatch runs
   * asynchronously and is rate-limited), and until then a bridge port does not forward: the first
   * ARP request of a step can vanish. Wait until every veth end is UP and every bridge port forwards. */
  private async waitForLinks(): Promise<void> {
    const ends = new Map<string, { iface: string; bridged: boolean }[]>();
    for (const link of this.lab.topology.links) {
      for (const end of [link.a, link.b]) ends.set(end.node, [...(ends.get(end.node) ?? []), { iface: end.name, bridged: end.bridge !== undefined }]);
    }
    await Promise.all([...ends].map(async ([node, list]) => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const links = (await this.exec.run(this.wrap(node, ['ip', '-o', 'link', 'show']))).stdout;
        const ports = list.some((e) => e.bridged) ? (await this.exec.run(this.wrap(node, ['bridge', '-o', 'link', 'show']))).stdout : '';
        const ready = list.every((e) => lineOf(links, e.iface)?.includes(' state UP ') && (!e.bridged || lineOf(ports, e.iface)?.includes(' state forwarding ')));
        if (ready) return;
        if (Date.now() > deadline) throw new Error(`lab ${this.lab.id}: the links of node ${node} did not come up within 10 s:\n${links}${ports}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }));
  }

  /** Starts the TCP responder detached (it must outlive `nflab up`) and waits until it listens. */
  private async startResponder(node: string, port: number): Promise<void> {
    this.exec.spawn(this.wrap(node, responderArgv(node, port)), { detached: true });
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
    await Promise.allSettled([this.netns.destroy(), this.docker?.destroy()]);
    removeRecord(this.runId);
  }

  /** Hands the run over to a later `nflab down`: the record stays, marked kept. */
  keep(step?: number): RunRecord {
    this.tornDown = true;
    this.record = { ...this.record, kept: true, step };
    writeRecord(this.record);
    return this.record;
  }
}

/** The `ip -o link` / `bridge -o link` line of an interface (`5: veth0@if2: <...> ... state UP ...`). */
function lineOf(output: string, iface: string): string | undefined {
  return output.split('\n').find((l) => new RegExp(`^\\d+: ${iface.replace(/[.]/g, '\\.')}[@:]`).test(l));
}
