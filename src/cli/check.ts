// `nflab check <lab> --step N`: judges a lab left up by `nflab up` against what step N expects.
// It sends step N's traffic and reads its observations, but applies none of step N's commands:
// the student has (or has not) typed them by hand. The run is left as it was.
import { evidenceLines } from '../report/format-values.ts';
import { LocalExecutor, killLiveChildren } from '../exec/local.ts';
import type { Lab } from '../lab/types.ts';
import type { CheckReport, StepReport } from '../report/types.ts';
import type { RunRecord } from '../engine/journal.ts';
import { assertStep, selectRun, stepsWords } from '../engine/select-run.ts';
import { preflight } from '../engine/preflight.ts';
import { attach, labOf } from '../engine/attach.ts';
import { runStep } from '../engine/step.ts';
import { interruptions } from './interrupt.ts';

/** The caller's kept run of a lab (by lab id or run id; --run when they have several) on this
 * machine (check and trace run here): src/engine/select-run.ts. */
export function keptRun(ref: string, run?: string): Promise<RunRecord> {
  return selectRun({ lab: ref, run });
}

export async function checkCommand(ref: string, stepNumber: number, json: boolean, pcap?: string, run?: string): Promise<number> {
  const record = await keptRun(ref, run);
  const lab = await labOf(record);
  assertStep(lab, stepNumber, 1);
  const exec = new LocalExecutor();
  await preflight(exec, [], record.iptables);
  // The same nodes the up run created, in either node mode.
  const sandbox = await attach(record, exec, lab);
  const stop = interruptions(killLiveChildren);
  let report: StepReport;
  try {
    report = await runStep(sandbox, lab.steps[stepNumber - 1]!, stop.signal, { applyCommands: false, ...(pcap ? { pcap: { dir: pcap, prefix: `${lab.id}-check-step${stepNumber}` } } : {}) });
  } finally {
    stop.release();
  }
  if (stop.signal()) return stop.exitCode();
  if (json) process.stdout.write(JSON.stringify({ lab: lab.id, runId: record.runId, step: stepNumber, report }, null, 2) + '\n');
  else process.stdout.write(formatCheckReport(lab, record, stepNumber, report));
  return report.status === 'passed' ? 0 : 1;
}

function formatCheckReport(lab: Lab, record: RunRecord, n: number, report: StepReport): string {
  const lines = [`lab ${lab.id} (run ${record.runId}, ${stepsWords(record.step)} by nflab) against step ${n}: ${report.title}`];
  lines.push('(the step\'s own commands were not applied: this checks the state you made)', '');
  for (const c of report.commands) lines.push(`  $ ${c.display}`, ...(c.output ? c.output.split('\n').map((l) => `      ${l}`) : []));
  if (report.commands.length > 0) lines.push('');
  for (const c of report.checks) lines.push(...formatCheck(c));
  const met = report.checks.filter((c) => c.status === 'met').length;
  lines.push('', `step ${n}: ${met} of ${report.checks.length} checks met — ${report.status === 'passed' ? 'met' : 'not met'}`);
  return lines.join('\n') + '\n';
}

function formatCheck(c: CheckReport): string[] {
  const mark = c.status === 'met' ? '✔ met    ' : c.status === 'skipped' ? '⊘ skipped' : '✘ not met';
  // key: value lines, as nflab run and the handouts show them.
  const side = (label: string, value: unknown) => {
    const lines = evidenceLines(value).map((l) => (l.length > 160 ? `${l.slice(0, 157)}...` : l));
    return lines.length === 1 ? [`      ${label}: ${lines[0]}`] : [`      ${label}:`, ...lines.slice(0, 12).map((l) => `        ${l}`)];
  };
  return [`  ${mark}  ${c.description}`, ...side('expected', c.expected), ...side('observed', c.observed)];
}
