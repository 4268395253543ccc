// nflab verify-lab: proves each step's checks can fail (src/engine/verify-lab.ts), lab by lab,
// with a line per step on the terminal or one JSON document.
import type { Argv } from 'yargs';
import { LabError } from '../errors.ts';
import { killLiveChildren } from '../exec/local.ts';
import type { Executor } from '../exec/types.ts';
import type { Lab } from '../lab/types.ts';
import { loadAllLabs, resolveLabs } from '../resolve/load.ts';
import { preflight } from '../engine/preflight.ts';
import { verifyLab, type LabVerification } from '../engine/verify-lab.ts';
import { interruptions } from './interrupt.ts';

export interface VerifyArgs {
  labs: string[];
  all: boolean;
  json: boolean;
  parallel: number;
  step?: number[];
}

export function withVerifyOptions<T>(y: Argv<T>) {
  return y
    .positional('labs', { type: 'string', array: true, describe: 'lab ids (01) or lab files' })
    .option('all', { type: 'boolean', default: false, describe: 'every lab in labs/' })
    .option('json', { type: 'boolean', default: false, describe: 'print only the JSON report on stdout' })
    .option('parallel', { type: 'number', default: 2, describe: 'runs of one lab at once (each in its own sandbox)' })
    .option('step', { type: 'number', array: true, describe: 'only these steps (repeat it; one lab only)' });
}

export async function verifyLabsCommand(args: VerifyArgs, exec: Executor): Promise<number> {
  if (!args.all && args.labs.length === 0)
    throw new LabError('name the labs to verify (nflab verify-lab 01 02), a lab file, or --all');
  if (!Number.isInteger(args.parallel) || args.parallel < 1)
    throw new LabError('--parallel must be a whole number of at least 1');
  const labs: Lab[] = args.all ? await loadAllLabs() : await resolveLabs(args.labs);
  if (args.step !== undefined) {
    if (labs.length !== 1) throw new LabError('--step chooses steps of one lab: name exactly one');
    const bad = args.step.find((n) => !Number.isInteger(n) || n < 1 || n > labs[0]!.steps.length);
    if (bad !== undefined)
      throw new LabError(`lab ${labs[0]!.id}: --step ${bad}: the lab has steps 1..${labs[0]!.steps.length}`);
  }
  await preflight(exec, labs);
  const out = args.json ? (process.stderr.isTTY ? process.stderr : undefined) : process.stdout;
  const stop = interruptions(killLiveChildren);
  const results: LabVerification[] = [];
  try {
    for (const lab of labs) {
      if (stop.signal()) break;
      out?.write(`\n▶ lab ${lab.id}: ${lab.title}\n`);
      const result = await verifyLab(lab, {
        exec,
        driver: 'netns',
        aborted: stop.signal,
        parallel: args.parallel,
        ...(args.step ? { steps: args.step } : {}),
        onRun: (_lab, step, report) =>
          out?.write(
            `  · ${step === undefined ? 'as written' : `without step ${step}'s commands`}: ${report.status} (${(report.durationMs / 1000).toFixed(1)} s)\n`,
          ),
      });
      results.push(result);
      if (out) out.write(formatVerification(result));
    }
  } finally {
    stop.release();
  }
  if (args.json) process.stdout.write(JSON.stringify({ labs: results }, null, 2) + '\n');
  else process.stdout.write(verificationSummary(results));
  if (stop.signal()) return stop.exitCode();
  return results.some((r) => r.status === 'unverified' || r.status === 'failed') ? 1 : 0;
}

export function formatVerification(r: LabVerification): string {
  const lines: string[] = [];
  for (const s of r.steps) {
    const head = `  step ${s.step}: ${s.title}`;
    switch (s.verdict) {
      case 'noticed':
        lines.push(
          `  ✔${head.slice(1)}\n      without its commands, ${s.noticed.length} check${s.noticed.length === 1 ? '' : 's'} not met: ${s.noticed.join('; ')}`,
        );
        break;
      case 'unnoticed':
        lines.push(
          `  ✘${head.slice(1)}\n      every check is met without the step's commands; these did not notice:` +
            (s.unnoticed.length ? s.unnoticed.map((d) => `\n        - ${d}`).join('') : ' (the step has no checks)'),
        );
        break;
      case 'no-commands':
        lines.push(`  ·${head.slice(1)} (no commands: it only observes)`);
        break;
      case 'error':
        lines.push(`  !${head.slice(1)}\n      no verdict: ${s.reason}`);
        break;
    }
  }
  if (r.reason) lines.push(`  ${r.status === 'skipped' ? '⊘ skipped' : '!'}: ${r.reason}`);
  return lines.length ? `${lines.join('\n')}\n` : '';
}

export function verificationSummary(results: LabVerification[]): string {
  const rows = results.map((r) => {
    const unnoticed = r.steps.filter((s) => s.verdict === 'unnoticed').length;
    const noticed = r.steps.filter((s) => s.verdict === 'noticed').length;
    const observing = r.steps.filter((s) => s.verdict === 'no-commands').length;
    const detail =
      r.status === 'verified' || r.status === 'unverified'
        ? `${noticed} step${noticed === 1 ? '' : 's'} noticed, ${unnoticed} not noticed, ${observing} only observe`
        : (r.reason ?? '');
    return `  lab ${r.id.padEnd(4)} ${r.status.padEnd(11)} ${detail} (${(r.durationMs / 1000).toFixed(1)} s)`;
  });
  return `\n${rows.join('\n')}\n`;
}
