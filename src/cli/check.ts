// `nflab check <lab> --step N`: judges a lab left up by `nflab up` against what step N expects.
// It sends step N's traffic and reads its observations, but applies none of step N's commands:
// the student has (or has not) typed them by hand. The run is left as it was.
import { formatCheck, stepSummary } from '../report/check-report.ts';
import { LocalExecutor, killLiveChildren } from '../exec/local.ts';
import type { Lab } from '../lab/types.ts';
import type { StepReport } from '../report/types.ts';
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

/** The lab of a kept run and its step N, or exit 2 naming what exists. */
export async function keptStep(
  ref: string,
  stepNumber: number,
  run?: string,
): Promise<{ record: RunRecord; lab: Lab }> {
  const record = await keptRun(ref, run);
  const lab = await labOf(record);
  assertStep(lab, stepNumber, 1);
  return { record, lab };
}

/** Step N of a kept run, judged as nflab check does (the step's commands left out, lenient:
 * a working answer other than the reference's is "met, differs"). */
export async function judgeKeptStep(
  record: RunRecord,
  lab: Lab,
  stepNumber: number,
  aborted: () => boolean,
  pcap?: string,
): Promise<StepReport> {
  const exec = new LocalExecutor();
  await preflight(exec, [], record.iptables);
  // The same nodes the up run created, in either node mode.
  const sandbox = await attach(record, exec, lab);
  return runStep(sandbox, lab.steps[stepNumber - 1]!, aborted, {
    applyCommands: false,
    lenient: true,
    ...(pcap ? { pcap: { dir: pcap, prefix: `${lab.id}-check-step${stepNumber}` } } : {}),
  });
}

/** Exit 0 for met and for "met, differs from the reference"; 1 otherwise. */
export const checkExitCode = (report: StepReport) =>
  report.status === 'passed' || report.status === 'differs' ? 0 : 1;

export async function checkCommand(
  ref: string,
  stepNumber: number,
  json: boolean,
  pcap?: string,
  run?: string,
): Promise<number> {
  const { record, lab } = await keptStep(ref, stepNumber, run);
  const stop = interruptions(killLiveChildren);
  let report: StepReport;
  try {
    report = await judgeKeptStep(record, lab, stepNumber, stop.signal, pcap);
  } finally {
    stop.release();
  }
  if (stop.signal()) return stop.exitCode();
  if (json)
    process.stdout.write(
      JSON.stringify({ lab: lab.id, runId: record.runId, step: stepNumber, report }, null, 2) + '\n',
    );
  else process.stdout.write(formatCheckReport(lab, record, stepNumber, report));
  return checkExitCode(report);
}

function formatCheckReport(lab: Lab, record: RunRecord, n: number, report: StepReport): string {
  const lines = [
    `lab ${lab.id} (run ${record.runId}, ${stepsWords(record.step)} by nflab) against step ${n}: ${report.title}`,
  ];
  lines.push("(the step's own commands were not applied: this checks the state you made)", '');
  for (const c of report.commands)
    lines.push(`  $ ${c.display}`, ...(c.output ? c.output.split('\n').map((l) => `      ${l}`) : []));
  if (report.commands.length > 0) lines.push('');
  for (const c of report.checks) lines.push(...formatCheck(c, report.status));
  lines.push('', ...stepSummary(n, report));
  return lines.join('\n') + '\n';
}
