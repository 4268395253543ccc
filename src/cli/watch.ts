// `nflab watch <lab> --step N`: re-judges step N's checks on a lab that is up while the student
// types in another shell, every few seconds, redrawing a compact verdict list; ends (exit 0) once
// the step is met (or met, differing from the reference). Ctrl-C ends it cleanly: the check in
// progress is stopped, its observers killed, and nothing of the run is changed.
import type { CommandModule } from 'yargs';
import type { StepReport } from '../report/types.ts';
import { compactCheck, stepVerdictWords } from '../report/check-report.ts';
import { interruptions } from './interrupt.ts';
import { examples } from './examples.ts';
import { LabError } from '../errors.ts';

export interface WatchOptions {
  /** Seconds between the end of one judging and the start of the next. */
  every: number;
  /** Stop after this many rounds (tests, scripts); default: until met or interrupted. */
  rounds?: number;
  out?: NodeJS.WriteStream;
  /** --run ID: which of the caller's runs of the lab. */
  run?: string;
}

export async function watchCommand(ref: string, stepNumber: number, options: WatchOptions): Promise<number> {
  // Loaded here, not with the command line: every other command starts without the engine.
  const { checkExitCode, judgeKeptStep, keptStep } = await import('./check.ts');
  const { killLiveChildren } = await import('../exec/local.ts');
  const { record, lab } = await keptStep(ref, stepNumber, options.run);
  const out = options.out ?? process.stdout;
  const stop = interruptions(killLiveChildren);
  let wake: (() => void) | undefined;
  const onSignal = () => wake?.();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let drawn = 0;
  try {
    for (let round = 1; ; round++) {
      let report: StepReport;
      try {
        report = await judgeKeptStep(record, lab, stepNumber, stop.signal);
      } catch (err) {
        if (stop.signal()) break;
        throw err;
      }
      if (stop.signal()) break;
      drawn = draw(out, drawn, [
        `nflab watch: lab ${lab.id} (run ${record.runId}) step ${stepNumber}: ${report.title}`,
        ...report.checks.map((c) => compactCheck(c, report.status, (out.columns ?? 120) - 1)),
        `round ${round} at ${new Date().toLocaleTimeString()}: ${report.checks.filter((c) => c.status === 'met').length} of ${report.checks.length} checks met — ${stepVerdictWords(report.status)}` +
          (checkExitCode(report) === 0 ? '' : `; again in ${options.every} s (Ctrl-C to stop)`),
      ]);
      if (checkExitCode(report) === 0) return 0;
      if (options.rounds !== undefined && round >= options.rounds) return 1;
      // A signal wakes the pause at once (the timer must keep the process alive meanwhile: no unref).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.every * 1000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
      if (stop.signal()) break;
    }
    out.write('nflab watch: stopped; the lab is still up as you left it\n');
    return stop.exitCode();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    stop.release();
  }
}

/** Redraws the list in place on a terminal (cursor up over the last drawing); appends otherwise. */
function draw(out: NodeJS.WriteStream, previous: number, lines: string[]): number {
  if (out.isTTY && previous > 0) out.write(`\x1b[${previous}A\x1b[J`);
  out.write(lines.join('\n') + '\n');
  return lines.length;
}

export const watchModule: CommandModule<
  object,
  { lab: string; step: number; every: number; rounds?: number; run?: string }
> = {
  command: 'watch <lab>',
  describe:
    "on a lab brought up with nflab up, re-judge step N's checks every few seconds while you type, until they are met",
  builder: (y) =>
    examples(
      'watch',
      y
        .positional('lab', { type: 'string', demandOption: true, describe: 'lab id (or the run id nflab up printed)' })
        .option('step', { type: 'number', demandOption: true, describe: 'the step whose checks to judge' })
        .option('every', { type: 'number', default: 3, describe: 'seconds between two judgings' })
        .option('rounds', { type: 'number', describe: 'give up (exit 1) after this many judgings' })
        .option('run', { type: 'string', describe: 'which of your runs of the lab (nflab status lists them)' }),
    ) as never,
  handler: async (a) => {
    if (!(a.every > 0 && a.every <= 600))
      throw new LabError(`--every must be a number of seconds in (0, 600] (got ${a.every})`);
    if (a.rounds !== undefined && !(Number.isInteger(a.rounds) && a.rounds >= 1))
      throw new LabError(`--rounds must be a whole number from 1 (got ${a.rounds})`);
    process.exitCode = await watchCommand(a.lab, a.step, {
      every: a.every,
      ...(a.rounds !== undefined ? { rounds: a.rounds } : {}),
      ...(a.run ? { run: a.run } : {}),
    });
  },
};
