// The index of a handout set (--all): every lab, a link to its handout, and its last verdict.
import type { LabReport } from '../report/types.ts';
import type { Lab } from '../lab/types.ts';
import { verdictWords } from './model.ts';
import { escapeHtml as e, mdText, mdUrl } from './escape.ts';
import { htmlPage } from './html.ts';
import { humanDate } from './words.ts';

export interface IndexEntry {
  lab: Lab;
  /** The handout's file name, relative to the index. */
  file: string;
  report?: LabReport;
}

export function indexMarkdown(entries: IndexEntry[]): string {
  const cell = mdText;
  const out = ['# nflab labs', '', '| Lab | Title | Steps | Last verdict |', '| --- | --- | --- | --- |'];
  for (const x of entries) {
    out.push(
      `| [${cell(x.lab.id)}](${mdUrl(x.file)}) | ${cell(x.lab.title)} | ${x.lab.steps.length} | ${cell(verdict(x.report))} |`,
    );
  }
  return out.join('\n') + '\n';
}

export function indexHtml(entries: IndexEntry[]): string {
  const rows = entries.map(
    (x) =>
      `<tr data-lab="${e(x.lab.id)}"><td><a href="${e(x.file)}">${e(x.lab.id)}</a></td><td><a href="${e(x.file)}">${e(x.lab.title)}</a><br><span class="summary-small">${e(x.lab.summary)}</span></td><td>${x.lab.steps.length}</td><td class="status-${e(x.report?.status ?? 'none')}">${e(verdict(x.report))}</td></tr>`,
  );
  const body = [
    '<h1>nflab labs</h1>',
    '<p>Every lab builds its own network namespaces (or containers), runs its steps and checks what the kernel did.</p>',
    '<style>table { border-collapse: collapse; width: 100%; } th, td { text-align: left; vertical-align: top; padding: .45em .6em; border-bottom: 1px solid var(--line); } .summary-small { color: var(--muted); font-size: .88em; }</style>',
    '<table class="index"><thead><tr><th>Lab</th><th>Title</th><th>Steps</th><th>Last verdict</th></tr></thead><tbody>',
    ...rows,
    '</tbody></table>',
  ];
  return htmlPage('nflab labs', body.join('\n'));
}

function verdict(report: LabReport | undefined): string {
  return report ? `${verdictWords(report)} (run ${report.runId}, ${humanDate(report.startedAt)})` : 'not run';
}
