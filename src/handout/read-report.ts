// Reads what `nflab run --json` printed, as evidence for handouts.
import { readFileSync } from 'node:fs';
import { LabError } from '../errors.ts';
import type { LabReport } from '../report/types.ts';

export function readRunReport(path: string): LabReport[] {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new LabError(
      `--from-run ${path}: not a readable JSON report (${(err as Error).message.split('\n')[0]}); make one with: nflab run <lab> --json > ${path}`,
    );
  }
  const labs = (data as { labs?: unknown }).labs ?? [data];
  if (!Array.isArray(labs) || !labs.every(isLabReport)) {
    throw new LabError(
      `--from-run ${path}: not the output of \`nflab run --json\` (expected {"labs": [{"id", "status", "steps": [...]}, ...]})`,
    );
  }
  return labs;
}

function isLabReport(x: unknown): x is LabReport {
  const r = x as LabReport;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.id === 'string' &&
    typeof r.status === 'string' &&
    Array.isArray(r.steps) &&
    r.steps.every((s) => typeof s?.title === 'string' && Array.isArray(s.checks) && Array.isArray(s.commands))
  );
}

/** The last report of each lab (a file may hold several runs of one lab). */
export function reportsById(reports: LabReport[]): Map<string, LabReport> {
  const byId = new Map<string, LabReport>();
  for (const r of reports) byId.set(r.id, r);
  return byId;
}
