// A journal directory of the test's own (NFLAB_RUNTIME_DIR): `nflab clean`, `down` and the
// watchdogs of the test's runs then see only those runs, never a run someone else has on this
// machine at the same time.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { nflab, type CliResult } from './system.ts';
import type { ChildProcess } from 'node:child_process';
import type { RunRecord } from '../../src/engine/journal.ts';

export interface PrivateJournal {
  dir: string;
  env: Record<string, string>;
  /** nflab with this journal directory. */
  nflab(args: string[], onStdout?: (all: string, child: ChildProcess) => void): Promise<CliResult>;
  record(runId: string): RunRecord | undefined;
  hasRecord(runId: string): boolean;
  /** Record files present (run ids), damaged ones included. */
  files(): string[];
  remove(): void;
}

export function privateJournal(label: string): PrivateJournal {
  // Under /run (a tmpfs, as the default /run/nflab is): the records vanish with a reboot too.
  const dir = mkdtempSync(`/run/nflab-test-${label}-`);
  const env = { NFLAB_RUNTIME_DIR: dir };
  const file = (runId: string) => `${dir}/runs/${runId}.json`;
  return {
    dir,
    env,
    nflab: (args, onStdout) => nflab(args, { env, onStdout }),
    record(runId) {
      try {
        return JSON.parse(readFileSync(file(runId), 'utf8')) as RunRecord;
      } catch {
        return undefined;
      }
    },
    hasRecord(runId) {
      try {
        readFileSync(file(runId));
        return true;
      } catch {
        return false;
      }
    },
    files() {
      try {
        return readdirSync(`${dir}/runs`)
          .filter((f) => f.endsWith('.json'))
          .map((f) => f.replace(/\.json$/, ''));
      } catch {
        return [];
      }
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
