// Pictures of what people see, committed under docs/handouts/screens/: labs 02, 04 and 11 in both
// editions (teacher: the answer key; student: the worksheet) as HTML in headless Chromium (the top
// of the page, the diagram, a step with its questions or hook picture) and as printed PDF pages
// (pdftoppm: the first three and the last), all from one real run each. Run as root from the repository:
//   npx tsx scripts/handout-screenshots.ts
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchChromium } from '../src/handout/pdf.ts';

const OUT = 'docs/handouts/screens';
const LABS: Array<[string, string]> = [
  ['02', '02-masquerade-outside'],
  ['04', '04-k8s-clusterip'],
  ['11', '11-chain-traversal'],
];
const work = mkdtempSync(join(tmpdir(), 'nflab-screens-'));
const nflab = (args: string[]) =>
  execFileSync('node', ['bin/nflab.mjs', ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });

try {
  mkdirSync(OUT, { recursive: true });
  for (const f of readdirSync(OUT)) if (f.endsWith('.png')) rmSync(join(OUT, f));
  const browser = await launchChromium();
  try {
    for (const [id, slug] of LABS) {
      const report = join(work, `${id}.json`);
      let json = '';
      // A check not met exits 1 and still prints the report: its evidence is what the handout shows.
      try {
        json = nflab(['run', id, '--json']);
      } catch (err) {
        json = (err as { stdout?: string }).stdout ?? '';
      }
      writeFileSync(report, json);
      for (const edition of ['teacher', 'student']) {
        for (const format of ['html', 'pdf'])
          nflab(['handout', id, '--from-run', report, '--format', format, '--edition', edition, '--out', work]);
        const file = `${slug}${edition === 'student' ? '.student' : ''}`;
        const name = `${id}-${edition}`;
        const page = await browser.context.newPage();
        await page.setViewportSize({ width: 1000, height: 1100 });
        await page.setContent(readFileSync(join(work, `${file}.html`), 'utf8'), { waitUntil: 'load' });
        await page.screenshot({ path: join(OUT, `${name}-html-top.png`) });
        if (edition === 'teacher')
          await page.locator('section.topology').screenshot({ path: join(OUT, `${id}-html-topology.png`) });
        const hooks = page.locator('figure.hooks');
        if (edition === 'teacher' && (await hooks.count()) > 0)
          await hooks.first().screenshot({ path: join(OUT, `${id}-html-hooks.png`) });
        // The first step with questions (else the first step), at most one screen high.
        const withQuestions = page.locator('section.step:has(ol.questions)');
        const step = (await withQuestions.count()) > 0 ? withQuestions.first() : page.locator('section.step').first();
        await step.evaluate((el) => el.scrollIntoView());
        const box = await step.boundingBox();
        if (box)
          await page.screenshot({
            path: join(OUT, `${name}-html-step.png`),
            clip: { x: box.x, y: box.y, width: box.width, height: Math.min(box.height, 1100 - box.y) },
          });
        await page.close();
        // Printed pages, small: the first three of the PDF, and its last (the student's solutions).
        const pdf = join(work, `${file}.pdf`);
        execFileSync('pdftoppm', ['-png', '-r', '50', '-f', '1', '-l', '3', pdf, join(OUT, `${name}-pdf-page`)]);
        const pages = Number(/Pages:\s+(\d+)/.exec(execFileSync('pdfinfo', [pdf], { encoding: 'utf8' }))![1]);
        if (pages > 3)
          execFileSync('pdftoppm', [
            '-png',
            '-r',
            '50',
            '-f',
            String(pages),
            '-l',
            String(pages),
            '-singlefile',
            pdf,
            join(OUT, `${name}-pdf-last`),
          ]);
      }
    }
  } finally {
    await browser.close();
  }
  console.log(
    readdirSync(OUT)
      .filter((f) => f.endsWith('.png'))
      .map((f) => join(OUT, f))
      .join('\n'),
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
