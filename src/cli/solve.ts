// Moving through a live lab. `nflab solve <lab> --step N` applies the reference commands of the
// steps after the last one applied, up to N, in place on the caller's run (each step as `up` runs
// it: its commands, then its traffic and checks), and records the steps applied.
// `nflab reset <lab> [--step N]` goes back to the built topology by tearing the run down and
// building it again under the same run id: undoing by hand cannot know what the student typed
// (rules, sysctls, routes, conntrack entries), a rebuild gives exactly what `up` gave.
import { LabError } from '../errors.ts';
import { killLiveChildren, LocalExecutor } from '../exec/local.ts';
import { attach, labOf } from '../engine/attach.ts';
import { readRecord, writeRecord } from '../engine/journal.ts';
import { preflight } from '../engine/preflight.ts';
import { removeRun } from '../engine/cleanup.ts';
import { runLab } from '../engine/run-lab.ts';
import { runStep } from '../engine/step.ts';
import { assertStep, selectRun, stepsWords } from '../engine/select-run.ts';
import type { StepReport } from '../report/types.ts';
import { interruptions } from './interrupt.ts';

function stepLine(n: number, r: StepReport): string {
  const met = r.checks.filter((c) => c.status === 'met').length;
  const lines = [
    `step ${n}: ${r.title}`,
    ...r.commands.map((c) => `  $ ${c.display}${c.exitCode !== 0 ? `   (exit ${c.exitCode})` : ''}`),
  ];
  lines.push(
    `  ${met} of ${r.checks.length} checks met${r.status === 'passed' ? '' : ` — ${r.status === 'failed' ? 'not met' : r.status}${r.reason ? `: ${r.reason}` : ''}`}`,
  );
  return lines.join('\n');
}

export async function solveCommand(ref: string, step: number, run: string | undefined, json: boolean): Promise<number> {
  const record = await selectRun({ lab: ref, run });
  const lab = await labOf(record);
  assertStep(lab, step, 1);
  const from = record.step ?? 0;
  if (step <= from) {
    const msg = `lab ${lab.id} (run ${record.runId}): ${stepsWords(from)} already; nothing to apply (nflab reset ${lab.id} --step ${step} builds it again with steps 1..${step})`;
    if (json)
      process.stdout.write(
        JSON.stringify({ lab: lab.id, runId: record.runId, stepsApplied: from, applied: [] }, null, 2) + '\n',
      );
    else process.stdout.write(`${msg}\n`);
    return 0;
  }
  const exec = new LocalExecutor();
  await preflight(exec, [], record.iptables);
  const sandbox = await attach(record, exec, lab);
  const stop = interruptions(killLiveChildren);
  const applied: { step: number; report: StepReport }[] = [];
  try {
    for (let n = from + 1; n <= step && !stop.signal(); n++) {
      const report = await runStep(sandbox, lab.steps[n - 1]!, stop.signal);
      applied.push({ step: n, report });
      // Recorded step by step: an interrupted solve still says how far it got.
      const now = readRecord(record.runId);
      if (now) writeRecord({ ...now, step: n });
      if (!json) process.stdout.write(`${stepLine(n, report)}\n`);
      if (report.status === 'error') break;
    }
  } finally {
    stop.release();
  }
  const last = applied.at(-1)?.step ?? from;
  if (json)
    process.stdout.write(
      JSON.stringify({ lab: lab.id, runId: record.runId, stepsApplied: last, applied }, null, 2) + '\n',
    );
  else
    process.stdout.write(
      `\nlab ${lab.id} (run ${record.runId}): ${stepsWords(last)}${last < lab.steps.length ? `; next: step ${last + 1}: ${lab.steps[last]!.title} (nflab check ${lab.id} --step ${last + 1})` : '; every step applied'}\n`,
    );
  if (stop.signal()) return stop.exitCode();
  if (applied.some((a) => a.report.status === 'error')) return 3;
  return applied.some((a) => a.report.status === 'failed') ? 1 : 0;
}

export async function resetCommand(ref: string, step: number, run: string | undefined): Promise<number> {
  const record = await selectRun({ lab: ref, run });
  const lab = await labOf(record);
  assertStep(lab, step, 0);
  if (record.root)
    throw new LabError(
      `lab ${lab.id} (run ${record.runId}) runs its host in the root namespace: reset it with nflab down ${lab.id} and nflab up ${lab.id} --root-namespace`,
    );
  const exec = new LocalExecutor();
  await preflight(exec, [lab], record.iptables);
  await removeRun(exec, record);
  process.stdout.write(`lab ${lab.id} (run ${record.runId}) torn down; building it again\n`);
  const stop = interruptions(killLiveChildren);
  try {
    const { report, kept } = await runLab(lab, {
      exec,
      driver: record.driver === 'docker' ? 'docker' : 'netns',
      iptables: record.iptables,
      keepAfterStep: step,
      runId: record.runId,
      aborted: stop.signal,
    });
    if (!kept) {
      process.stdout.write(
        `lab ${lab.id} could not be built again (${report.status}${report.reason ? `: ${report.reason}` : ''}); it is down\n`,
      );
      return stop.signal() ? stop.exitCode() : 3;
    }
    process.stdout.write(`lab ${lab.id} (run ${record.runId}) is back to the built topology, ${stepsWords(step)}\n`);
    process.stdout.write(
      'a shell opened with nflab shell before the reset still sees the old nodes: leave it (exit) and run nflab shell again\n',
    );
    return report.status === 'failed' ? 1 : 0;
  } finally {
    stop.release();
  }
}
