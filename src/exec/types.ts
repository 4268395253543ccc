// Where commands execute: this machine, or a remote one over SSH. Everything above this
// interface deals in argv arrays; only an executor knows how they reach a kernel.

export interface RunOptions {
  stdin?: string;
  /** Kill the command after this many milliseconds (it then resolves with code null). */
  timeoutMs?: number;
}

export interface RunResult {
  /** Exit status; null when the command was killed by a signal or the timeout. */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A long-running command (tcpdump, a responder) whose output is read while it runs. */
export interface Process {
  readonly pid: number | undefined;
  /** Called with each complete line of standard output / error. */
  onStdoutLine(fn: (line: string) => void): void;
  onStderrLine(fn: (line: string) => void): void;
  kill(signal?: NodeJS.Signals): void;
  /** Resolves when the process has exited. */
  exited: Promise<RunResult>;
}

export interface SpawnOptions {
  /** Leave the process running after nflab exits (nflab up). */
  detached?: boolean;
}

export interface Executor {
  /** Human name of the target, used in error messages ('this machine', 'ssh://vagrant@10.0.0.2'). */
  readonly name: string;
  run(argv: string[], options?: RunOptions): Promise<RunResult>;
  spawn(argv: string[], options?: SpawnOptions): Process;
  close(): Promise<void>;
}
