// Errors that map to the CLI's exit codes (DESIGN.md conventions).

/** Exit 2: bad usage or an invalid lab. Nothing has been created when this is thrown. */
export class LabError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'LabError';
  }
}

/** Exit 3: the environment cannot run the lab; `fix` tells the user what to do. */
export class EnvError extends Error {
  readonly exitCode = 3;
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(`${message}\n  fix: ${fix}`);
    this.name = 'EnvError';
  }
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof LabError || err instanceof EnvError) return err.exitCode;
  return 1;
}
