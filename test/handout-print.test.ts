// Printed handouts read back: every lab's PDF through pdftotext (poppler-utils), `\` continuations
// joined as a shell joins them, and every command the handout prints found whole, equal to the
// lab's argv as displayed: no command broken inside a word. And the workbook: one PDF whose
// contents give the page each chapter and appendix starts on.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAllLabs } from '../src/resolve/load.ts';
import { buildHandout, handoutSlug } from '../src/handout/model.ts';
import { writeHandouts } from '../src/handout/write.ts';
import { launchChromium } from '../src/handout/pdf.ts';
import { workbookPdf } from '../src/handout/workbook.ts';
import { joinContinuations } from '../src/handout/wrap-command.ts';
import { commandDisplay, displayCommand } from '../src/exec/display.ts';
import { stepTraffic } from '../src/check/step-needs.ts';
import { pingArgv, tcpArgv } from '../src/traffic/run.ts';
import type { Lab } from '../src/lab/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'nflab-print-test-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** The text of a PDF (or of one page), laid out as printed, with `\` continuations joined. */
function printedLines(pdf: string, page?: number): string[] {
  const args = ['-layout', ...(page ? ['-f', String(page), '-l', String(page)] : []), pdf, '-'];
  const text = execFileSync('pdftotext', args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  // Page footers ("3 / 12") and form feeds sit between the lines of a listing that crosses a page.
  const lines = text
    .replace(/\f/g, '\n')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^\d+ ?\/ ?\d+$/.test(l));
  return joinContinuations(lines);
}

/** Every command line a handout prints, computed from the lab itself as a person types it. */
function labCommands(lab: Lab): string[] {
  const h = buildHandout(lab, 'netns');
  const kindOf = h.kindOf;
  const independent = lab.steps.flatMap((step) => [
    ...(step.run ?? []).map((c) => commandDisplay(c, kindOf(c.node))),
    ...stepTraffic(step).map((t) =>
      displayCommand(kindOf(t.from), t.from, t.kind === 'ping' ? pingArgv(t) : tcpArgv(t)),
    ),
  ]);
  const printed = [
    ...h.build,
    ...h.steps.flatMap((s) => [...s.watch, ...s.commands, ...s.traffic, ...s.look]),
    ...independent,
  ];
  return [...new Set(printed.flatMap((c) => c.split('\n')))].map((l) => l.trim()).filter(Boolean);
}

test.serial(
  "every printed command of every lab's PDF, continuations joined, equals the lab's argv as displayed",
  async (t) => {
    const labs = (await loadAllLabs()).filter((l) => /^\d+$/.test(l.id));
    const out = join(dir, 'pdf');
    await writeHandouts({ labs, format: 'pdf', outDir: out, driver: 'netns', reports: new Map(), index: false });
    let found = 0;
    for (const lab of labs) {
      const printed = printedLines(join(out, `${handoutSlug(lab)}.pdf`));
      // A traffic line may carry a note for the reader after the command (`…   # 150 times`); the
      // command is what must be whole (pdftotext's layout may widen the gap before the note).
      const note = (l: string) => l.replace(/ +# [^']*$/, '');
      const lines = new Set(printed.map(note));
      for (const command of labCommands(lab).map(note)) {
        t.true(lines.has(command), `lab ${lab.id}: "${command}" is not printed whole`);
        found++;
      }
    }
    t.log(`${found} command lines of ${labs.length} labs found whole in their PDFs`);
    t.true(found > 500);
  },
);

test.serial(
  'the workbook: cover, contents whose page numbers are where each chapter and appendix starts, numbered pages',
  async (t) => {
    const labs = (await loadAllLabs()).filter((l) => ['01', '02', '11'].includes(l.id));
    const browser = await launchChromium();
    const file = join(dir, 'workbook.pdf');
    try {
      const { pdf, contents, pages } = await workbookPdf(
        browser,
        labs.map((l) => buildHandout(l, 'netns')),
      );
      (await import('node:fs')).writeFileSync(file, pdf);
      t.is(contents.length, 2 * labs.length);
      t.is(Number(/Pages:\s+(\d+)/.exec(execFileSync('pdfinfo', [file], { encoding: 'utf8' }))![1]), pages);
      t.true(
        printedLines(file, 1).some((l) => l.includes('nflab workbook')),
        'the cover',
      );
      const contentsPage = printedLines(file, 2).join('\n');
      for (const entry of contents) {
        t.regex(
          contentsPage,
          new RegExp(`${entry.title.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^\\n]*${entry.page}`),
          `contents lists ${entry.title} at page ${entry.page}`,
        );
        const heading = entry.appendix ? entry.title.replace('Appendix: build listing', 'Build listing') : entry.title;
        t.true(
          printedLines(file, entry.page).join(' ').includes(heading.slice(0, 40)),
          `${entry.title} starts on page ${entry.page}`,
        );
      }
      const footer = execFileSync('pdftotext', ['-layout', '-f', String(pages), '-l', String(pages), file, '-'], {
        encoding: 'utf8',
      });
      t.regex(footer, new RegExp(`${pages} ?/ ?${pages}`), 'the last page carries its number');
    } finally {
      await browser.close();
    }
  },
);
