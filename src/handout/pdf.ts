// HTML to PDF with Debian's headless Chromium through playwright-core. The page may load nothing
// but itself: every request to anything other than the page (or a data: URL) is refused.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { EnvError } from '../errors.ts';

export const CHROMIUM = process.env.NFLAB_CHROMIUM ?? '/usr/bin/chromium';

/** Quiet, offline Chromium: no sync, no updates, no background requests of its own. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** playwright-core is an optional dependency: only PDF handouts need it, and an install without it
 * (npm install --omit=optional) says so with the fix instead of a module-not-found stack. */
async function playwrightChromium(): Promise<typeof import('playwright-core').chromium> {
  try {
    return (await import('playwright-core')).chromium;
  } catch (err) {
    if (
      (err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND' &&
      (err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND'
    )
      throw err;
    throw new EnvError(
      'PDF handouts are printed through the optional package playwright-core, which is not installed',
      'npm install playwright-core (where nflab is installed), or write --format html and print it from a browser',
    );
  }
}

/** Starts Chromium with a fresh profile directory, removed again on close. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new EnvError(
      `PDF handouts are printed by Chromium, and ${CHROMIUM} is missing`,
      'sudo apt-get install -y chromium (or set NFLAB_CHROMIUM to a Chromium binary)',
    );
  const chromium = await playwrightChromium();
  const profile = mkdtempSync(join(tmpdir(), 'nflab-chromium-'));
  try {
    // launchPersistentContext is how Playwright takes a --user-data-dir of our choosing.
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    return {
      context,
      async close() {
        await context.close().catch(() => {});
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}

export interface PdfOptions {
  /** A footer template (Chromium's: spans of class pageNumber and totalPages are filled in). */
  footer?: string;
}

/** Prints one HTML document to PDF (A4, backgrounds on). */
export async function htmlToPdf(browser: Browser, html: string, options: PdfOptions = {}): Promise<Buffer> {
  const page = await browser.context.newPage();
  try {
    // A handout is self-contained; anything it would fetch is a bug, and must not leave the machine.
    await page.route('**/*', (route) =>
      /^(data|about):/.test(route.request().url()) ? route.continue() : route.abort(),
    );
    await page.setContent(html, { waitUntil: 'load' });
    return await page.pdf({
      format: 'A4',
      printBackground: true,
      preferCSSPageSize: true,
      ...(options.footer
        ? { displayHeaderFooter: true, headerTemplate: '<span></span>', footerTemplate: options.footer }
        : {}),
    });
  } finally {
    await page.close();
  }
}
