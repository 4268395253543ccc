// Errors as types. Each has a stable `code` that `--json` shows, and maps to an exit code:
// 0 every check met, 1 a check not met, 2 bad usage or an invalid lab (nothing created),
// 3 the environment cannot run the lab, or the lab could not be built or run (status `error`).

/** Exit 2: bad usage or an invalid lab. Nothing has been created when this is thrown. */
export class LabError extends Error {
  readonly exitCode = 2;
  readonly code: string = 'usage';
  constructor(message: string) {
    super(message);
    this.name = 'LabError';
  }
}

/** Exit 3: the environment cannot run the lab; `fix` tells the user what to do. */
export class EnvError extends Error {
  readonly exitCode = 3;
  readonly code: string = 'environment';
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(`${message}\n  fix: ${fix}`);
    this.name = 'EnvError';
  }
}

/** A command the build needs failed: the node, the command as a person types it, its result. */
export class CommandFailed extends Error {
  readonly code = 'command-failed';
  constructor(
    readonly node: string,
    readonly display: string,
    readonly result: { code: number | null; stdout: string; stderr: string },
    what = 'command failed',
  ) {
    super(`node ${node}: ${what}: ${display}${result.stderr.trim() ? `\n${result.stderr.trim()}` : ''}`);
    this.name = 'CommandFailed';
  }
}

/** The lab could not be built (a phase of the build plan failed); the report's status is `error`. */
export class BuildFailed extends Error {
  readonly code = 'build-failed';
  constructor(
    readonly phase: string,
    message: string,
    readonly node?: string,
  ) {
    super(message);
    this.name = 'BuildFailed';
  }
}

/** The user stopped the run (SIGINT, SIGTERM): the lab it was in is `interrupted`, later ones `not-run`. */
export class Interrupted extends Error {
  readonly code = 'interrupted';
  constructor() {
    super('interrupted');
    this.name = 'Interrupted';
  }
}

/** The target's kernel lacks a feature the lab requires: a skip with the reason, never a failure. */
export class LabSkipped extends Error {
  readonly code = 'lab-skipped';
  constructor(message: string) {
    super(message);
    this.name = 'LabSkipped';
  }
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof LabError || err instanceof EnvError) return err.exitCode;
  if (err instanceof BuildFailed || err instanceof CommandFailed) return 3;
  return 1;
}

/** The stable code of an error for `--json` (`internal` for anything not raised on purpose). */
export function errorCode(err: unknown): string {
  if (
    err instanceof LabError ||
    err instanceof EnvError ||
    err instanceof CommandFailed ||
    err instanceof BuildFailed ||
    err instanceof Interrupted ||
    err instanceof LabSkipped
  )
    return err.code;
  return 'internal';
}
