// Bounded runs, enforced: each lab command and each step under its limit (src/resolve/bounds.ts).
// Hitting a limit at run time ends the step as `error`, naming the command; the lab stops there
// (what the later steps would see depends on a step that did not finish).
import type { Executor, RunOptions, RunResult } from '../exec/types.ts';
import type { Limits } from '../resolve/bounds.ts';

/** A limit was hit: the step ends as `error` with this message. */
export class LimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LimitError';
  }
}

/** The time of one step: each command gets what is left of the step, at most the command limit. */
export class StepClock {
  private readonly deadline: number;
  constructor(readonly limits: Limits) {
    this.deadline = Date.now() + limits.stepSeconds * 1000;
  }

  private left(): number {
    return Math.max(1, this.deadline - Date.now());
  }

  /** Runs one lab command under the command limit (and the step's); throws LimitError when it is hit. */
  async command(run: (options: RunOptions) => Promise<RunResult>, shown: string, node: string): Promise<RunResult> {
    const byCommand = this.limits.commandSeconds * 1000;
    const timeoutMs = Math.min(byCommand, this.left());
    const started = Date.now();
    const r = await run({ timeoutMs });
    if (r.code === null && Date.now() - started >= timeoutMs - 20) {
      throw new LimitError(
        timeoutMs === byCommand
          ? `command \`${shown}\` on node ${node} did not end within its limit of ${this.limits.commandSeconds} s (limits.commandSeconds): stopped`
          : `the step reached its limit of ${this.limits.stepSeconds} s (limits.stepSeconds) while \`${shown}\` ran on node ${node}: stopped`,
      );
    }
    return r;
  }

  /** An executor whose commands (traffic, observers) all end by the step's deadline. */
  bound(exec: Executor, describe: (argv: string[]) => string = (argv) => argv.join(' ')): Executor {
    const clock = this;
    return {
      name: exec.name,
      spawn: (argv, options) => exec.spawn(argv, options),
      close: () => exec.close(),
      async run(argv, options = {}) {
        const byStep = clock.left();
        const timeoutMs = Math.min(options.timeoutMs ?? byStep, byStep);
        const started = Date.now();
        const r = await exec.run(argv, { ...options, timeoutMs });
        // The caller's own, shorter timeout is the caller's to handle.
        if (r.code === null && Date.now() - started >= timeoutMs - 20 && timeoutMs === byStep) {
          throw new LimitError(
            `the step reached its limit of ${clock.limits.stepSeconds} s (limits.stepSeconds) while \`${describe(argv)}\` ran: stopped`,
          );
        }
        return r;
      },
    };
  }
}
