// Nodes as plain network namespaces named nfl-<run>-<node>. Nothing lives in the root namespace:
// deleting a namespace removes every veth end and bridge inside it.
import type { NodeDriver, DriverContext } from './types.ts';
import { shellQuote } from '../exec/quote.ts';

export const NETNS_PREFIX = 'nfl-';

export function netnsName(runId: string, node: string): string {
  return `${NETNS_PREFIX}${runId}-${node}`;
}

export class NetnsDriver implements NodeDriver {
  readonly kind = 'netns' as const;
  private readonly created = new Set<string>();

  constructor(private readonly ctx: DriverContext) {}

  async create(nodes: string[]): Promise<void> {
    await Promise.all(nodes.map(async (node) => {
      const name = netnsName(this.ctx.runId, node);
      // Recorded before creation so teardown covers a half-finished create.
      this.created.add(node);
      const result = await this.ctx.exec.run(['ip', 'netns', 'add', name]);
      if (result.code !== 0) throw new Error(`could not create namespace ${name} for node ${node}: ${result.stderr.trim()}`);
    }));
  }

  netnsRef(node: string): string {
    return netnsName(this.ctx.runId, node);
  }

  wrap(node: string, argv: string[]): string[] {
    return ['ip', 'netns', 'exec', netnsName(this.ctx.runId, node), ...argv];
  }

  display(node: string, argv: string[]): string {
    return `ip netns exec ${node} ${shellQuote(argv)}`;
  }

  enterHint(node: string): string {
    return `ip netns exec ${netnsName(this.ctx.runId, node)} bash`;
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.created].map(async (node) => {
      const name = netnsName(this.ctx.runId, node);
      await killNamespacePids(this.ctx.exec, name);
      await this.ctx.exec.run(['ip', 'netns', 'del', name]);
      this.created.delete(node);
    }));
  }
}

/** Processes still inside a namespace (a responder, tcpdump) would keep it alive: end them first. */
export async function killNamespacePids(exec: DriverContext['exec'], name: string): Promise<void> {
  const pids = (await exec.run(['ip', 'netns', 'pids', name])).stdout.split(/\s+/).filter(Boolean);
  if (pids.length > 0) await exec.run(['kill', '-KILL', ...pids]);
}
