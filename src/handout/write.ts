// Writes a set of handouts to a directory in one format, with an index when asked.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DriverKind, Lab } from '../lab/types.ts';
import type { LabReport } from '../report/types.ts';
import { buildHandout, type Edition } from './model.ts';
import { handoutMarkdown } from './markdown.ts';
import { handoutHtml } from './html.ts';
import { topologySvg } from './diagram-svg.ts';
import { indexHtml, indexMarkdown, type IndexEntry } from './index-page.ts';
import { htmlToPdf, launchChromium, type Browser } from './pdf.ts';
import { NUMBERED, workbookPdf } from './workbook.ts';
import type { Handout } from './model.ts';

export type HandoutFormat = 'md' | 'html' | 'pdf';

export interface WriteHandoutsOptions {
  labs: Lab[];
  format: HandoutFormat;
  outDir: string;
  driver: DriverKind;
  /** Reports by lab id: the evidence. A lab without one gets a handout without evidence. */
  reports: Map<string, LabReport>;
  index: boolean;
  /** The student's worksheet or the teacher's answer key (default). */
  edition?: Edition;
}

/** Returns the files written, in order. */
export async function writeHandouts(options: WriteHandoutsOptions): Promise<string[]> {
  mkdirSync(options.outDir, { recursive: true });
  const written: string[] = [];
  const put = (name: string, content: string | Buffer) => {
    const path = join(options.outDir, name);
    writeFileSync(path, content);
    written.push(path);
  };
  let browser: Browser | undefined;
  try {
    if (options.format === 'pdf') browser = await launchChromium();
    const entries: IndexEntry[] = [];
    const handouts: Handout[] = [];
    const edition = options.edition ?? 'teacher';
    // The student's files carry their edition in the name, so both editions fit in one directory.
    const suffix = edition === 'student' ? '.student' : '';
    for (const lab of options.labs) {
      const report = options.reports.get(lab.id);
      const h = buildHandout(lab, options.driver, report, edition);
      handouts.push(h);
      const file = `${h.slug}${suffix}.${options.format}`;
      if (options.format === 'md') {
        put(`${h.slug}.svg`, topologySvg(lab, h.kindOf) + '\n');
        put(file, handoutMarkdown(h, `${h.slug}.svg`));
      } else if (options.format === 'html') {
        put(file, handoutHtml(h));
      } else {
        put(file, await htmlToPdf(browser!, handoutHtml(h), NUMBERED));
      }
      entries.push({ lab, file, ...(report ? { report } : {}) });
    }
    if (options.index) {
      if (options.format === 'md') put(`index${suffix}.md`, indexMarkdown(entries));
      else if (options.format === 'html') put(`index${suffix}.html`, indexHtml(entries));
      else {
        put(`index${suffix}.pdf`, await htmlToPdf(browser!, indexHtml(entries)));
        // Printed, the set is also one book: cover, contents, a chapter per lab, page numbers.
        put(`workbook${suffix}.pdf`, (await workbookPdf(browser!, handouts)).pdf);
      }
    }
  } finally {
    await browser?.close();
  }
  return written;
}
