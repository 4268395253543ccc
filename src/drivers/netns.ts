// Nodes as plain network namespaces named nfl-<run>-<node>. Nothing lives in the root namespace:
// deleting a namespace removes every veth end and bridge inside it. The one exception is the node
// run as the root namespace itself (--root-namespace, engine/root-namespace.ts): never created or
// deleted here, its commands run without a prefix.
import type { NodeDriver, DriverContext } from './types.ts';
import { shellQuote } from '../exec/quote.ts';
import { EnvError } from '../errors.ts';

export const NETNS_PREFIX = 'nfl-';

export function netnsName(runId: string, node: string): string {
  return `${NETNS_PREFIX}${runId}-${node}`;
}

export class NetnsDriver implements NodeDriver {
  readonly kind = 'netns' as const;
  private readonly created = new Set<string>();

  constructor(private readonly ctx: DriverContext) {}

  private isRoot(node: string): boolean {
    return node === this.ctx.rootNode;
  }

  async create(all: string[]): Promise<void> {
    const nodes = all.filter((n) => !this.isRoot(n));
    if (nodes.length === 0) return;
    // Recorded before creation so teardown covers a half-finished create.
    for (const node of nodes) this.created.add(node);
    // One `ip -batch` for every namespace: `ip netns add` in a process of its own costs ~4 ms per
    // namespace, in a batch ~0.7 ms (scripts/bench). The batch stops at the first failure.
    const result = await this.ctx.exec.run(['ip', '-batch', '-'], {
      stdin: nodes.map((node) => `netns add ${netnsName(this.ctx.runId, node)}\n`).join(''),
    });
    if (result.code !== 0)
      throw new Error(`could not create the namespaces of nodes ${nodes.join(', ')}: ${result.stderr.trim()}`);
  }

  async attach(nodes: string[]): Promise<void> {
    const wanted = nodes.filter((n) => !this.isRoot(n));
    const present = new Set(
      (await this.ctx.exec.run(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!),
    );
    const gone = wanted.filter((n) => !present.has(netnsName(this.ctx.runId, n)));
    if (gone.length > 0)
      throw new EnvError(
        `run ${this.ctx.runId} has no namespace for node${gone.length > 1 ? 's' : ''} ${gone.join(', ')} any more`,
        `nflab down ${this.ctx.runId}, then bring the lab up again`,
      );
    for (const node of wanted) this.created.add(node);
  }

  netnsPath(node: string): string {
    if (this.isRoot(node)) return '/proc/self/ns/net';
    return `${NETNS_DIR}/${netnsName(this.ctx.runId, node)}`;
  }

  observerWrap(node: string, argv: string[]): string[] {
    return this.wrap(node, argv);
  }

  enter(node: string, argv: string[]): string[] {
    if (this.isRoot(node)) return argv;
    return ['nsenter', `--net=${this.netnsPath(node)}`, ...argv];
  }

  netnsRef(node: string): string {
    // ip opens a netns argument with a '/' as a file: its own namespace, the root one.
    if (this.isRoot(node)) return '/proc/self/ns/net';
    return netnsName(this.ctx.runId, node);
  }

  wrap(node: string, argv: string[]): string[] {
    if (this.isRoot(node)) return argv;
    return ['ip', 'netns', 'exec', netnsName(this.ctx.runId, node), ...argv];
  }

  display(node: string, argv: string[]): string {
    if (this.isRoot(node)) return shellQuote(argv);
    return `ip netns exec ${node} ${shellQuote(argv)}`;
  }

  enterHint(node: string): string {
    if (this.isRoot(node)) return '(the root namespace: type commands without a prefix)';
    return `ip netns exec ${netnsName(this.ctx.runId, node)} bash`;
  }

  async destroy(): Promise<void> {
    const nodes = [...this.created];
    if (nodes.length === 0) return;
    const names = nodes.map((node) => netnsName(this.ctx.runId, node));
    // Three processes whatever the size (before: two per namespace): the processes of every
    // namespace, one kill, one batch of deletions. -force goes on past a namespace already gone.
    await killPidsIn(this.ctx.exec, names);
    await this.ctx.exec.run(['ip', '-force', '-batch', '-'], {
      stdin: names.map((name) => `netns del ${name}\n`).join(''),
    });
    for (const node of nodes) this.created.delete(node);
  }
}

/** Where `ip netns add` puts the namespaces' bind mounts. */
export const NETNS_DIR = '/run/netns';

// The namespaces' inodes, then every process's network namespace: one pass over /proc whatever the
// number of namespaces (`ip netns pids` scans all of /proc once per namespace).
const PIDS_IN =
  'cd /run/netns && stat -L -c "ns %i" "$@" 2>/dev/null; find /proc/[0-9]*/ns/net -maxdepth 0 -printf "%p %l\\n" 2>/dev/null; true';

/** Processes still inside any of these namespaces, killed. */
export async function killPidsIn(exec: DriverContext['exec'], names: string[]): Promise<void> {
  // Again until none is left: a responder may fork a child for a connection between the listing
  // and the kill, and that child would keep the namespace alive once its name is gone.
  for (let round = 0; round < 5; round++) {
    const listed = (await exec.run(['sh', '-c', PIDS_IN, 'sh', ...names])).stdout.split('\n');
    const inodes = new Set(listed.flatMap((l) => (l.startsWith('ns ') ? [`net:[${l.slice(3)}]`] : [])));
    const pids = listed.flatMap((l) => {
      const m = /^\/proc\/(\d+)\/ns\/net (\S+)$/.exec(l);
      return m && inodes.has(m[2]!) ? [m[1]!] : [];
    });
    if (pids.length === 0) return;
    await exec.run(['kill', '-KILL', ...pids]);
  }
}
