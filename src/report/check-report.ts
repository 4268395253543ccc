// What `nflab check` and `nflab watch` print for one step judged on a lab that is up: each check
// with its verdict, what it is about, its evidence and (not met) its hint; then the step's verdict,
// where "met, differs from the reference" names each reference check the student's answer does not
// reproduce and the rule they have instead.
import type { CheckReport, StepReport } from './types.ts';
import { evidenceLines } from './format-values.ts';

/** The step's verdict in words. */
export function stepVerdictWords(status: StepReport['status']): string {
  return status === 'passed'
    ? 'met'
    : status === 'differs'
      ? 'met, differs from the reference'
      : status === 'error'
        ? 'error'
        : 'not met';
}

/** One check with its evidence (key: value lines, as nflab run and the handouts show them). */
export function formatCheck(c: CheckReport, stepStatus: StepReport['status']): string[] {
  const differs = stepStatus === 'differs' && c.status === 'not-met';
  const mark =
    c.status === 'met' ? '✔ met    ' : c.status === 'skipped' ? '⊘ skipped' : differs ? '≠ differs' : '✘ not met';
  const side = (label: string, value: unknown) => {
    const lines = evidenceLines(value).map((l) => (l.length > 160 ? `${l.slice(0, 157)}...` : l));
    return lines.length === 1
      ? [`      ${label}: ${lines[0]}`]
      : [`      ${label}:`, ...lines.slice(0, 12).map((l) => `        ${l}`)];
  };
  const about = c.about === 'reference' ? '  (reference rule)' : '';
  return [
    `  ${mark}  ${c.description}${about}`,
    ...side('expected', c.expected),
    ...side('observed', c.observed),
    ...(c.status === 'not-met' && c.hint ? [`      ${differs ? 'yours' : 'why'}: ${c.hint}`] : []),
  ];
}

/** The closing lines: how many checks are met and the step's verdict, with the differences. */
export function stepSummary(n: number, report: StepReport): string[] {
  const met = report.checks.filter((c) => c.status === 'met').length;
  const lines = [`step ${n}: ${met} of ${report.checks.length} checks met — ${stepVerdictWords(report.status)}`];
  if (report.status === 'differs') {
    lines.push('  every behaviour check is met; your answer differs from the reference in:');
    for (const c of report.checks.filter((x) => x.status === 'not-met'))
      lines.push(`    - ${c.description}${c.hint ? `: ${c.hint}` : ''}`);
  }
  return lines;
}

/** One line per check for a screen redrawn in place (nflab watch). */
export function compactCheck(c: CheckReport, stepStatus: StepReport['status'], width: number): string {
  const mark = c.status === 'met' ? '✔' : c.status === 'skipped' ? '⊘' : stepStatus === 'differs' ? '≠' : '✘';
  const line = `${mark} ${c.description}${c.status === 'not-met' && c.hint ? ` — ${c.hint}` : ''}`;
  return line.length > width ? `${line.slice(0, Math.max(10, width - 1))}…` : line;
}
