// A node of a built run: everything a caller does in a node goes through its handle, and the
// handle through the node's driver, which alone decides between `ip netns exec`, `docker exec`
// and `nsenter`.
import type { Executor, Process, RunResult, SpawnOptions } from '../exec/types.ts';
import type { NodeDriver } from '../drivers/types.ts';
import type { Realisation } from '../resolve/build-plan.ts';
import { backendArgv, type IptablesBackend } from './iptables-backend.ts';

export interface NodeHandle {
  readonly name: string;
  readonly realisation: Realisation;
  /** Runs a command in the node as a lab command (its standard input, if any, fed to it). */
  run(argv: string[], options?: { stdin?: string; timeoutMs?: number }): Promise<RunResult>;
  /** Starts a long-running command in the node (a responder). */
  spawn(argv: string[], options?: SpawnOptions): Process;
  /** Starts an observer that a signal stops (tcpdump, the tracer). */
  observe(argv: string[]): Process;
  /** The argv of a lab command in this node, for callers that run it themselves (traffic). */
  wrap(argv: string[], stdin?: boolean): string[];
  /** The argv of an observer in this node. */
  observerArgv(argv: string[]): string[];
  /** The argv that runs `argv` in the node's network namespace only (the engine's own work). */
  enter(argv: string[]): string[];
  /** The command as a person types it for this run. */
  display(argv: string[]): string;
}

export function nodeHandle(
  name: string,
  realisation: Realisation,
  rawDriver: NodeDriver,
  exec: Executor,
  show: (node: string, argv: string[]) => string,
  iptables?: IptablesBackend,
): NodeHandle {
  // Every argv entering the node names the run's iptables backend (iptables-backend.ts).
  const driver = withBackend(rawDriver, iptables);
  return {
    name,
    realisation,
    run: (argv, options = {}) => exec.run(driver.wrap(name, argv, { stdin: options.stdin !== undefined }), options),
    spawn: (argv, options) => exec.spawn(driver.wrap(name, argv), options),
    observe: (argv) => exec.spawn(driver.observerWrap(name, argv)),
    wrap: (argv, stdin = false) => driver.wrap(name, argv, { stdin }),
    observerArgv: (argv) => driver.observerWrap(name, argv),
    enter: (argv) => driver.enter(name, argv),
    display: (argv) => show(name, argv),
  };
}

/** The driver with each argv's iptables program named for the backend (display is not touched:
 * people read and type `iptables`). */
function withBackend(
  driver: NodeDriver,
  iptables?: IptablesBackend,
): Pick<NodeDriver, 'wrap' | 'observerWrap' | 'enter'> {
  return {
    wrap: (node, argv, options) => driver.wrap(node, backendArgv(argv, iptables), options),
    observerWrap: (node, argv) => driver.observerWrap(node, backendArgv(argv, iptables)),
    enter: (node, argv) => driver.enter(node, backendArgv(argv, iptables)),
  };
}
