// A node of a built run: everything a caller does in a node goes through its handle, and the
// handle through the node's driver, which alone decides between `ip netns exec`, `docker exec`
// and `nsenter`.
import type { Executor, Process, RunResult, SpawnOptions } from '../exec/types.ts';
import type { NodeDriver } from '../drivers/types.ts';
import type { Realisation } from '../resolve/build-plan.ts';

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

export function nodeHandle(name: string, realisation: Realisation, driver: NodeDriver, exec: Executor, show: (node: string, argv: string[]) => string): NodeHandle {
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
