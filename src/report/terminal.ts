// Human output: progress per step while a lab runs, then a summary. Machine output (--json)
// never mixes with this: the CLI sends progress to stderr when stdout carries JSON.
import type { RunEvent } from '../engine/run-lab.ts';
import type { CheckReport, LabReport } from './types.ts';
import { evidenceLines } from './format-values.ts';
import type { TextSink } from './ordered-output.ts';

const useColor = (stream: TextSink) => !!stream.isTTY && !process.env.NO_COLOR;

export function terminalReporter(stream: TextSink, verbose = false): (e: RunEvent) => void {
  const c = colors(useColor(stream));
  const out = (s: string) => stream.write(`${s}\n`);
  return (e) => {
    switch (e.type) {
      case 'lab-start':
        out(c.bold(`\n▶ lab ${e.lab.id}: ${e.lab.title}`) + c.dim(`  (run ${e.runId})`));
        break;
      case 'built':
        out(c.dim(`  topology built in ${e.ms} ms`));
        break;
      case 'step-start':
        break;
      case 'step-end': {
        const s = e.report;
        out(
          `  ${s.status === 'passed' ? c.green('✔') : c.red('✘')} step ${e.index + 1}: ${s.title} ${c.dim(`(${s.durationMs} ms)`)}`,
        );
        if (verbose) for (const cmd of s.commands) out(c.dim(`      $ ${cmd.display.split('\n')[0]}`));
        if (s.reason) out(c.red(`      ! ${s.reason}`));
        for (const check of s.checks) out(formatCheck(check, c));
        break;
      }
      case 'lab-end': {
        const r = e.report;
        if (r.status === 'skipped') out(c.yellow(`  ⊘ skipped: ${r.reason}`));
        else if (r.reason) out(c.red(`  ! ${r.reason}`));
        break;
      }
    }
  };
}

function formatCheck(check: CheckReport, c: Colors): string {
  const mark = check.status === 'met' ? c.green('✔') : check.status === 'skipped' ? c.yellow('⊘') : c.red('✘');
  let line = `      ${mark} ${check.description}`;
  if (check.status === 'not-met') {
    // key: value lines as the handouts show them (format-values.ts), not raw JSON.
    line += sideLines('expected', check.expected, c.green) + sideLines('observed', check.observed, c.red);
    if (check.reason) line += `\n          ${c.dim(`reason: ${check.reason}`)}`;
  }
  return line;
}

export function summary(reports: LabReport[], stream: NodeJS.WriteStream): void {
  const c = colors(useColor(stream));
  const checks = reports.flatMap((r) => r.steps.flatMap((s) => s.checks));
  const met = checks.filter((x) => x.status === 'met').length;
  const notMet = checks.filter((x) => x.status === 'not-met').length;
  stream.write('\n');
  for (const r of reports) {
    const status =
      r.status === 'passed' ? c.green('passed') : r.status === 'skipped' ? c.yellow('skipped') : c.red('failed');
    stream.write(
      `  lab ${r.id.padEnd(4)} ${status.padEnd(16)} ${r.title} ${c.dim(`(${(r.durationMs / 1000).toFixed(1)} s, ${r.driver}${r.rootNamespace ? `, ${r.rootNamespace} = the root namespace` : ''})`)}\n`,
    );
  }
  stream.write(
    `\n${met} checks met, ${notMet} not met, ${reports.filter((r) => r.status === 'skipped').length} labs skipped\n`,
  );
}

/** `expected: outcome: succeeds` on one line for a single value, else the label and indented lines (at most 12). */
function sideLines(label: string, value: unknown, paint: (s: string) => string): string {
  const lines = evidenceLines(value).map((l) => (l.length > 160 ? `${l.slice(0, 157)}...` : l));
  const shown = lines.length > 12 ? [...lines.slice(0, 11), `(${lines.length - 11} more lines)`] : lines;
  if (shown.length === 1) return `\n          ${label}: ${paint(shown[0]!)}`;
  return `\n          ${label}:${shown.map((l) => `\n            ${paint(l)}`).join('')}`;
}

type Colors = ReturnType<typeof colors>;
function colors(on: boolean) {
  const wrap = (code: string) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { bold: wrap('1'), dim: wrap('2'), red: wrap('31'), green: wrap('32'), yellow: wrap('33') };
}
