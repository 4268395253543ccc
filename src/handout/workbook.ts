// One workbook of every lab, printed: a cover, the contents with page numbers, a chapter per lab
// (each starting on a new page) and the build listings as appendices at the end, every page
// numbered in its footer. Chromium cannot report where a chapter lands, so each part is printed
// alone first and its pages counted; a part starts on a new page, so the counts add up.
import type { Handout } from './model.ts';
import { verdictWords } from './model.ts';
import { escapeHtml as e } from './escape.ts';
import { handoutParts, htmlPage, type HandoutParts } from './html.ts';
import { htmlToPdf, type Browser, type PdfOptions } from './pdf.ts';
import { humanDate } from './words.ts';

/** Page numbers in the footer of every page. */
export const NUMBERED: PdfOptions = {
  footer:
    '<div style="width:100%;font:9px sans-serif;color:#666;text-align:center"><span class="pageNumber"></span> / <span class="totalPages"></span></div>',
};

export interface WorkbookEntry {
  title: string;
  page: number;
  appendix?: boolean;
}

export async function workbookPdf(
  browser: Browser,
  handouts: Handout[],
  printedOn = new Date(),
): Promise<{ pdf: Buffer; contents: WorkbookEntry[]; pages: number }> {
  const parts = handouts.map((h) => handoutParts(h, `wb${h.lab.id}-`));
  const pagesOf = async (html: string) =>
    countPages(await htmlToPdf(browser, htmlPage('nflab workbook', html), NUMBERED));
  const chapterPages: number[] = [];
  for (const p of parts) chapterPages.push(await pagesOf(p.chapter));
  const appendixPages: number[] = [];
  for (const p of parts) appendixPages.push(await pagesOf(p.appendix));

  const cover = coverHtml(handouts, printedOn);
  const draft = contentsHtml(parts, handouts, [], 0);
  const coverPages = await pagesOf(cover);
  const contentsPages = await pagesOf(draft);
  const contents: WorkbookEntry[] = [];
  let page = coverPages + contentsPages + 1;
  parts.forEach((p, i) => {
    contents.push({ title: p.title, page });
    page += chapterPages[i]!;
  });
  parts.forEach((p, i) => {
    contents.push({ title: appendixTitle(handouts[i]!), page, appendix: true });
    page += appendixPages[i]!;
  });

  const body = [
    cover,
    contentsHtml(parts, handouts, contents, coverPages),
    ...parts.map((p) => p.chapter),
    ...parts.map((p) => p.appendix),
  ].join('\n');
  const pdf = await htmlToPdf(browser, htmlPage('nflab workbook', body), NUMBERED);
  return { pdf, contents, pages: countPages(pdf) };
}

/** A lab's appendix: its build listing, and in the student edition the solutions too. */
function appendixTitle(h: Handout): string {
  return `Appendix: build listing${h.edition === 'student' ? ' and solutions' : ''} of lab ${h.lab.id}`;
}

/** Pages of a PDF as Chromium writes it (one `/Type /Page` object per page). */
export function countPages(pdf: Buffer): number {
  return (pdf.toString('latin1').match(/\/Type\s*\/Page(?![s\w])/g) ?? []).length;
}

function coverHtml(handouts: Handout[], printedOn: Date): string {
  const runs = handouts.filter((h) => h.report).length;
  return `<section class="cover" style="min-height: 240mm; display: flex; flex-direction: column; justify-content: center;">
<h1 style="font-size: 2.6em;">nflab workbook</h1>
<p class="summary">${e(String(handouts.length))} container-networking labs: bridges, veth pairs, network namespaces, iptables and kube-proxy's rules, each built for real, broken, fixed and checked against what the kernel did.</p>
<p class="muted">Printed ${e(humanDate(printedOn.toISOString()))}. ${runs === 0 ? 'Made without runs: the expectations, no evidence.' : `Evidence from ${runs === handouts.length ? 'a run of every lab' : `runs of ${runs} of the labs`}.`}</p>
</section>`;
}

function contentsHtml(
  parts: HandoutParts[],
  handouts: Handout[],
  contents: WorkbookEntry[],
  coverPages: number,
): string {
  const pageOf = (title: string) => contents.find((c) => c.title === title)?.page;
  const row = (href: string, title: string, extra: string) =>
    `<tr><td><a href="#${e(href)}">${e(title)}</a>${extra}</td><td class="page">${e(String(pageOf(title) ?? '…'))}</td></tr>`;
  const rows = [
    ...parts.map((p, i) =>
      row(p.chapterId, p.title, ` <span class="muted">— ${e(verdictWords(handouts[i]!.report))}</span>`),
    ),
    ...parts.map((p, i) => row(p.appendixId, appendixTitle(handouts[i]!), '')),
  ];
  return `<section class="contents" style="break-before: page;" data-cover-pages="${coverPages}"><h1>Contents</h1>
<style>table.contents { border-collapse: collapse; width: 100%; } table.contents td { padding: .3em .4em; border-bottom: 1px dotted var(--line); vertical-align: top; } table.contents td.page { text-align: right; width: 3em; }</style>
<table class="contents">${rows.join('\n')}</table></section>`;
}
