// `nflab handout`: handouts from lab definitions, with evidence from a run made now (--run), from
// a saved `nflab run --json` (--from-run), or none.
import { LabError } from '../errors.ts';
import { LocalExecutor, killLiveChildren } from '../exec/local.ts';
import type { DriverKind, Lab } from '../lab/types.ts';
import type { LabReport } from '../report/types.ts';
import { loadAllLabs, resolveLabs } from '../resolve/load.ts';
import { runLab } from '../engine/run-lab.ts';
import { preflight } from '../engine/preflight.ts';
import { terminalReporter } from '../report/terminal.ts';
import { interruptions } from './interrupt.ts';
import { readRunReport, reportsById } from '../handout/read-report.ts';
import { writeHandouts, type HandoutFormat } from '../handout/write.ts';
import type { Edition } from '../handout/model.ts';

export interface HandoutArgs {
  labs: string[];
  all: boolean;
  format: HandoutFormat;
  out: string;
  nodes?: DriverKind;
  image?: string;
  fromRun?: string;
  run: boolean;
  edition?: Edition;
}

export async function handoutCommand(a: HandoutArgs): Promise<number> {
  if (!a.all && a.labs.length === 0) throw new LabError('name the labs (nflab handout 01 02) or --all');
  if (a.run && a.fromRun) throw new LabError('--run and --from-run exclude each other: evidence comes from one run');
  const labs: Lab[] = a.all ? await loadAllLabs() : await resolveLabs(a.labs);
  let reports = new Map<string, LabReport>();
  let driver: DriverKind = a.nodes ?? 'netns';
  let exitCode = 0;
  if (a.fromRun) {
    reports = reportsById(readRunReport(a.fromRun));
    const first = labs.map((l) => reports.get(l.id)).find((r) => r !== undefined);
    // Show the commands for the driver the evidence was made with, unless told otherwise.
    if (!a.nodes && (first?.driver === 'docker' || first?.driver === 'netns')) driver = first.driver;
    const missing = labs.filter((l) => !reports.has(l.id)).map((l) => l.id);
    if (missing.length > 0)
      process.stderr.write(
        `nflab: ${a.fromRun} has no run of lab ${missing.join(', ')}: those handouts have no evidence\n`,
      );
  } else if (a.run) {
    const outcome = await runLabs(labs, driver, a.image);
    reports = outcome.reports;
    if (outcome.interrupted !== undefined) return outcome.interrupted;
    if ([...reports.values()].some((r) => r.status === 'failed')) exitCode = 1;
  }
  const files = await writeHandouts({
    labs,
    format: a.format,
    outDir: a.out,
    driver,
    reports,
    index: a.all,
    ...(a.edition ? { edition: a.edition } : {}),
  });
  for (const f of files) process.stdout.write(`${f}\n`);
  return exitCode;
}

/** Runs the labs exactly as `nflab run` does (preflight, interrupts, teardown), progress on stderr. */
async function runLabs(
  labs: Lab[],
  driver: DriverKind,
  image: string | undefined,
): Promise<{ reports: Map<string, LabReport>; interrupted?: number }> {
  const exec = new LocalExecutor();
  await preflight(exec);
  const stop = interruptions(killLiveChildren);
  const reports = new Map<string, LabReport>();
  try {
    for (const lab of labs) {
      if (stop.signal()) break;
      const { report } = await runLab(lab, {
        exec,
        driver,
        image,
        aborted: stop.signal,
        onEvent: terminalReporter(process.stderr),
      });
      reports.set(lab.id, report);
    }
  } finally {
    stop.release();
  }
  return { reports, ...(stop.signal() ? { interrupted: stop.exitCode() } : {}) };
}
