// Reads the runs scripts/soak.sh recorded (run-<i>.json, .code, .err) and writes the soak report
// as Markdown: per lab how often it passed, and every check whose verdict changed between runs.
// Exit status 1 when anything was not stable (the report is still printed).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { release } from 'node:os';
import type { RunReport } from '../src/report/types.ts';

const [dir = '.', nText = '0', secondsText = '0', options = ''] = process.argv.slice(2);
const n = Number(nText);
const perLab = new Map<
  string,
  {
    title: string;
    passed: number;
    failed: number;
    skipped: number;
    error: number;
    interrupted: number;
    'not-run': number;
    missing: number;
  }
>();
/** lab → step/check → verdict per run (index = run - 1). */
const verdicts = new Map<string, Map<string, string[]>>();
const examples = new Map<string, string>();
const broken: string[] = [];

for (let i = 1; i <= n; i++) {
  const file = join(dir, `run-${i}.json`);
  const code = existsSync(join(dir, `run-${i}.code`)) ? readFileSync(join(dir, `run-${i}.code`), 'utf8').trim() : '?';
  let report: RunReport | undefined;
  try {
    report = JSON.parse(readFileSync(file, 'utf8')) as RunReport;
  } catch {
    const err = existsSync(join(dir, `run-${i}.err`))
      ? readFileSync(join(dir, `run-${i}.err`), 'utf8')
          .trim()
          .split('\n')
          .slice(-3)
          .join(' / ')
      : '';
    broken.push(`run ${i}: exit ${code}, no report${err ? `: ${err}` : ''}`);
    continue;
  }
  for (const lab of report.labs) {
    const stats = perLab.get(lab.id) ?? {
      title: lab.title,
      passed: 0,
      failed: 0,
      skipped: 0,
      error: 0,
      interrupted: 0,
      'not-run': 0,
      missing: 0,
    };
    stats[lab.status]++;
    perLab.set(lab.id, stats);
    if (lab.reason && lab.status === 'failed') examples.set(`${lab.id} (lab)`, `run ${i}: ${lab.reason}`);
    const checks = verdicts.get(lab.id) ?? new Map<string, string[]>();
    verdicts.set(lab.id, checks);
    lab.steps.forEach((step, s) =>
      step.checks.forEach((check, c) => {
        const key = `step ${s + 1} #${c + 1}: ${check.description}`;
        const list = checks.get(key) ?? new Array<string>(n).fill('absent');
        list[i - 1] = check.status;
        checks.set(key, list);
        if (check.status === 'not-met' && !examples.has(`${lab.id} ${key}`)) {
          examples.set(
            `${lab.id} ${key}`,
            `run ${i}: expected ${JSON.stringify(check.expected)}, observed ${JSON.stringify(check.observed).slice(0, 300)}`,
          );
        }
      }),
    );
  }
}
for (const stats of perLab.values())
  stats.missing =
    n -
    broken.length -
    stats.passed -
    stats.failed -
    stats.skipped -
    stats.error -
    stats.interrupted -
    stats['not-run'];

const changed: string[] = [];
for (const [lab, checks] of verdicts) {
  for (const [key, list] of checks) {
    const counts = new Map<string, number>();
    list.forEach((v, i) => {
      if (!broken.some((b) => b.startsWith(`run ${i + 1}:`))) counts.set(v, (counts.get(v) ?? 0) + 1);
    });
    if (counts.size > 1) {
      const runs = list.flatMap((v, i) => (v !== 'met' && v !== 'absent' ? [i + 1] : []));
      changed.push(
        `| ${lab} | ${key.replace(/\|/g, '\\|')} | ${[...counts].map(([v, c]) => `${v} ×${c}`).join(', ')} | ${runs.slice(0, 10).join(', ')}${runs.length > 10 ? ', …' : ''} |`,
      );
    }
  }
}

const lines = [
  '# Soak result',
  '',
  `The latest \`scripts/soak.sh\` run: the whole lab suite (\`nflab run --all${options ? ` ${options}` : ''}\`) ${n} times in a row on ${new Date().toISOString().slice(0, 10)}, kernel ${release()}, ${Math.round(Number(secondsText) / 60)} min in all.`,
  '',
  '| lab | passed | failed | skipped | title |',
  '|---|---|---|---|---|',
  ...[...perLab]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, s]) => `| ${id} | ${s.passed} | ${s.failed} | ${s.skipped} | ${s.title} |`),
  '',
  changed.length === 0
    ? 'No check changed its verdict between runs.'
    : `## Checks whose verdict changed (${changed.length})`,
  ...(changed.length === 0 ? [] : ['', '| lab | check | verdicts | runs not met |', '|---|---|---|---|', ...changed]),
  ...(broken.length === 0 ? [] : ['', '## Runs without a report', '', ...broken.map((b) => `- ${b}`)]),
  ...(examples.size === 0
    ? []
    : ['', '## First failure of each', '', ...[...examples].map(([k, v]) => `- ${k}: ${v}`)]),
  '',
];
process.stdout.write(lines.join('\n'));
process.exitCode = changed.length > 0 || broken.length > 0 || [...perLab.values()].some((s) => s.failed > 0) ? 1 : 0;
