// How a lab node is realised. Host and outside nodes are always network namespaces; container
// nodes are namespaces or Docker containers. The bridge stays in the host node's namespace.
import type { DriverKind } from '../lab/types.ts';
import type { Executor } from '../exec/types.ts';

export interface NodeDriver {
  readonly kind: DriverKind;
  /** Create these nodes (in parallel where the driver can). `nodes` are the lab's node names. */
  create(nodes: string[]): Promise<void>;
  /** Finds the nodes of a run that already exists (a lab kept by `nflab up`): after this, every
   * method works as after create(). Throws EnvError naming a node that is gone. */
  attach(nodes: string[]): Promise<void>;
  /** What `ip link add ... netns <ref>` accepts for this node: a netns name or a PID. */
  netnsRef(node: string): string;
  /** The file of the node's network namespace, for `nsenter --net=` (the engine's own quick work). */
  netnsPath(node: string): string;
  /** The argv that runs `argv` in the node's network namespace only (nsenter), for the engine's own
   * work: building, readiness, reachability pings. Half the cost of `ip netns exec`, and for a
   * container no `docker exec` round trip (~126 ms). */
  enter(node: string, argv: string[]): string[];
  /** The argv that runs a lab command inside the node on the target. `stdin` keeps standard input open. */
  wrap(node: string, argv: string[], opts?: { stdin?: boolean }): string[];
  /** The argv of an observer (tcpdump, the tracer) in the node that a signal to it stops: a signal
   * to a `docker exec` client does not reach the process, so containers are entered by PID. */
  observerWrap(node: string, argv: string[]): string[];
  /** The command as a person types it (`ip netns exec c1 …`, `docker exec c1 …`), with the lab's own node name. */
  display(node: string, argv: string[]): string;
  /** How a person enters the node for hands-on work (real object names). */
  enterHint(node: string): string;
  /** Remove everything this driver created for the run. Safe to call twice. */
  destroy(): Promise<void>;
}

export interface DriverContext {
  runId: string;
  exec: Executor;
  /** The node that is the target's own root namespace (--root-namespace), if any. */
  rootNode?: string;
}
