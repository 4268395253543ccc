// `nflab completion`: yargs' bash/zsh completion script, completing commands and options as yargs
// knows them, and lab ids where a command takes a lab.
import { readdirSync } from 'node:fs';
import { basename } from 'node:path';
import type { Argv } from 'yargs';
import { LABS_DIR } from '../resolve/load.ts';

/** Commands whose first positional argument is a lab. */
const LAB_COMMANDS = new Set([
  'run',
  'show',
  'up',
  'down',
  'handout',
  'export',
  'check',
  'watch',
  'trace',
  'shell',
  'exec',
  'solve',
  'reset',
]);

/** Lab ids from the file names alone: completion must answer fast, without loading any lab. */
export function labIds(): string[] {
  try {
    return readdirSync(LABS_DIR)
      .filter((f) => /^\d+-.*\.ts$/.test(f))
      .map((f) => basename(f).split('-')[0]!)
      .sort();
  } catch {
    return [];
  }
}

type Fallback = (
  current: string,
  argv: { _?: unknown[] },
  filter: (onCompleted: (err: Error | null, defaults: string[]) => void) => void,
  done: (completions: string[]) => void,
) => void;

export function withCompletion<T>(y: Argv<T>): Argv<T> {
  const complete: Fallback = (current, argv, completionFilter, done) => {
    completionFilter((err, defaults) => {
      // The words typed so far; the shell script passes the program name first, yargs' own call does not.
      const words = (argv._ ?? []).map(String);
      if (words[0] === 'nflab' || words[0]?.endsWith('/nflab')) words.shift();
      const command = words[0] ?? '';
      const wantsLab = LAB_COMMANDS.has(command) && words.length >= 2 && !current.startsWith('-');
      const labs = wantsLab ? labIds().filter((id) => id.startsWith(current)) : [];
      done([...labs, ...(err ? [] : defaults)]);
    });
  };
  return y.completion(
    'completion',
    'print a bash/zsh completion script (nflab completion >> ~/.bashrc)',
    complete as never,
  );
}
