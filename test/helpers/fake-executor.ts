// The one fake executor of the unit tests (a mock, said so in each test's name): it records every
// argv it is given and answers from a script of rules, so code above the executor can be tested
// without root or a kernel. System tests use the real LocalExecutor.
import type { Executor, Process, RunOptions, RunResult, SpawnOptions } from '../../src/exec/types.ts';

export interface FakeCall {
  argv: string[];
  stdin?: string;
  spawned?: boolean;
}

/** A rule: when `match` returns true for an argv, answer with `result` (default: exit 0, no output). */
export interface FakeRule {
  match: (argv: string[], stdin?: string) => boolean;
  result: Partial<RunResult>;
}

export class FakeExecutor implements Executor {
  readonly name = 'fake executor';
  readonly calls: FakeCall[] = [];

  constructor(private readonly rules: FakeRule[] = []) {}

  async run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
    this.calls.push({ argv, ...(options.stdin !== undefined ? { stdin: options.stdin } : {}) });
    const rule = this.rules.find((r) => r.match(argv, options.stdin));
    return { code: 0, stdout: '', stderr: '', ...rule?.result };
  }

  spawn(argv: string[], _options?: SpawnOptions): Process {
    this.calls.push({ argv, spawned: true });
    const exited = Promise.resolve({ code: 0, stdout: '', stderr: '' });
    return { pid: undefined, onStdoutLine: () => {}, onStderrLine: () => {}, kill: () => {}, exited };
  }

  async close(): Promise<void> {}

  /** The calls whose argv contains every one of `words`, in order of appearance. */
  callsWith(...words: string[]): FakeCall[] {
    return this.calls.filter((c) => words.every((w) => c.argv.includes(w) || (c.stdin ?? '').includes(w)));
  }
}
