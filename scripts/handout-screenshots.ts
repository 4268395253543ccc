// Pictures of what people see, committed under docs/handouts/screens/: labs 02, 04 and 11 as HTML
// in headless Chromium (the top of the page, the diagram, a step with its hook picture) and as
// printed PDF pages (pdftoppm), all from one real run each. Run as root from the repository:
//   npx tsx scripts/handout-screenshots.ts
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchChromium } from '../src/handout/pdf.ts';

const OUT = 'docs/handouts/screens';
const LABS: Array<[string, string]> = [['02', '02-masquerade-outside'], ['04', '04-k8s-clusterip'], ['11', '11-chain-traversal']];
const work = mkdtempSync(join(tmpdir(), 'nflab-screens-'));
const nflab = (args: string[]) => execFileSync('node', ['bin/nflab.mjs', ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });

try {
  mkdirSync(OUT, { recursive: true });
  for (const f of readdirSync(OUT)) if (f.endsWith('.png')) rmSync(join(OUT, f));
  const browser = await launchChromium();
  try {
    for (const [id, slug] of LABS) {
      const report = join(work, `${id}.json`);
      let json = '';
      // A check not met exits 1 and still prints the report: its evidence is what the handout shows.
      try { json = nflab(['run', id, '--json']); } catch (err) { json = (err as { stdout?: string }).stdout ?? ''; }
      writeFileSync(report, json);
      for (const format of ['html', 'pdf']) nflab(['handout', id, '--from-run', report, '--format', format, '--out', work]);
      const page = await browser.context.newPage();
      await page.setViewportSize({ width: 1000, height: 1100 });
      await page.setContent(readFileSync(join(work, `${slug}.html`), 'utf8'), { waitUntil: 'load' });
      await page.screenshot({ path: join(OUT, `${id}-html-top.png`) });
      await page.locator('section.topology').screenshot({ path: join(OUT, `${id}-html-topology.png`) });
      const hooks = page.locator('figure.hooks');
      if (await hooks.count() > 0) await hooks.first().screenshot({ path: join(OUT, `${id}-html-hooks.png`) });
      // The first step, at most one screen high (the files stay small).
      await page.evaluate(() => document.querySelector('section.step')?.scrollIntoView());
      const box = await page.locator('section.step').first().boundingBox();
      if (box) await page.screenshot({ path: join(OUT, `${id}-html-step1.png`), clip: { x: box.x, y: box.y, width: box.width, height: Math.min(box.height, 1100 - box.y) } });
      await page.close();
      // Printed pages, small: the first three of the PDF.
      execFileSync('pdftoppm', ['-png', '-r', '50', '-f', '1', '-l', '3', join(work, `${slug}.pdf`), join(OUT, `${id}-pdf-page`)]);
    }
  } finally {
    await browser.close();
  }
  console.log(readdirSync(OUT).filter((f) => f.endsWith('.png')).map((f) => join(OUT, f)).join('\n'));
} finally {
  rmSync(work, { recursive: true, force: true });
}
