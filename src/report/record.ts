// `nflab run --record FILE`: the run's evidence kept for later comparison (--compare, the kernel
// matrix): the JSON report, plus each step's raw observations (traffic results, captured packets,
// counters before and after, conntrack, outputs, traces) and where the run happened.
import { readFileSync, writeFileSync } from 'node:fs';
import type { LabReport } from './types.ts';
import { LabError } from '../errors.ts';

export const RECORD_FORMAT = 'nflab-record/1';

export interface RunRecordFile {
  format: typeof RECORD_FORMAT;
  recordedAt: string;
  /** Where the labs ran ('this machine' or the SSH target), its kernel and the iptables backend. */
  target: string;
  kernel?: string;
  iptables: 'nft' | 'legacy';
  labs: LabReport[];
}

export function writeRecord(file: string, labs: LabReport[], target: string, iptables: 'nft' | 'legacy'): void {
  const record: RunRecordFile = {
    format: RECORD_FORMAT,
    recordedAt: new Date().toISOString(),
    target,
    kernel: labs.find((l) => l.kernel)?.kernel,
    iptables,
    labs,
  };
  writeFileSync(file, JSON.stringify(record, null, 1) + '\n');
}

/** A record file, or a plain `nflab run --json` report (no raw observations then). */
export function readRecord(file: string): RunRecordFile {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new LabError(`--compare ${file}: not a readable JSON record (${(err as Error).message})`);
  }
  const d = data as Partial<RunRecordFile> & { labs?: LabReport[] };
  if (!d || !Array.isArray(d.labs))
    throw new LabError(
      `--compare ${file}: neither an nflab record (nflab run --record) nor an nflab run --json report (no "labs" list)`,
    );
  const first = d.labs[0];
  return {
    format: RECORD_FORMAT,
    recordedAt: d.recordedAt ?? '',
    target: d.target ?? first?.target ?? '?',
    kernel: d.kernel ?? first?.kernel,
    iptables: d.iptables ?? first?.iptables ?? 'nft',
    labs: d.labs,
  };
}

/** The report without the raw observations (what --json prints). */
export function withoutObservations(labs: LabReport[]): LabReport[] {
  return labs.map((l) => ({ ...l, steps: l.steps.map(({ observations: _o, ...s }) => s) }));
}
