// nflab as a user gets it: `npm pack`, the tarball installed into an empty directory (from the npm
// cache or registry, with its optional playwright-core), then `npx nflab run 01` and
// `npx nflab handout 02 --format pdf` there. Without playwright-core, the PDF path is exit 3 with the fix.
import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { $ } from 'zx';
import { REPO } from './helpers/system.ts';
import { schemaErrors } from './helpers/schema.ts';

test('the packed tarball installs into an empty directory, and npx nflab runs lab 01 and prints a PDF handout there', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-pack-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const q = $({ cwd: dir, quiet: true, nothrow: true, env: { ...process.env, NO_COLOR: '1' } });
  const packed = await q`npm pack ${REPO} --pack-destination ${dir} --json`;
  t.is(packed.exitCode, 0, packed.stderr);
  const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = info!.files.map((f) => f.path);
  for (const wanted of [
    'bin/nflab.mjs',
    'src/cli/main.ts',
    'labs/01-bridge-forward-drop.ts',
    'src/export/library.sh',
    'schema/report.schema.json',
  ])
    t.true(files.includes(wanted), wanted);
  t.false(
    files.some((f) => f.startsWith('test/')),
    'tests are not shipped',
  );
  // npm pack runs the prepare script: the compiled CLI ships, built from the sources it ships with.
  t.true(
    files.includes('dist/cli.mjs') && files.includes('dist/inputs.json'),
    `the compiled CLI is shipped: ${files.filter((f) => f.startsWith('dist/')).join(', ')}`,
  );

  const app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), '{ "name": "try-nflab", "private": true }\n');
  const inApp = q({ cwd: app });
  const installed = await inApp`npm install --prefer-offline --no-audit --no-fund ${join(dir, info!.filename)}`;
  t.is(installed.exitCode, 0, installed.stderr);
  t.true(existsSync(join(app, 'node_modules/playwright-core')), 'the optional playwright-core is installed');

  const run = await inApp`npx nflab run 01 --json`;
  t.is(run.exitCode, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  t.is(report.labs[0].status, 'passed');
  t.true(report.labs[0].steps.flatMap((s: any) => s.checks).every((c: any) => c.status === 'met'));
  t.deepEqual(schemaErrors(report), []);

  const pdf = await inApp`npx nflab handout 02 --format pdf --out out`;
  t.is(pdf.exitCode, 0, pdf.stderr);
  t.is(readFileSync(join(app, 'out/02-masquerade-outside.pdf')).subarray(0, 5).toString(), '%PDF-');

  // The same install without playwright-core (as with npm install --omit=optional).
  renameSync(join(app, 'node_modules/playwright-core'), join(dir, 'playwright-core.away'));
  const missing = await inApp`npx nflab handout 02 --format pdf --out out2`;
  t.is(missing.exitCode, 3, missing.stderr);
  t.regex(missing.stderr, /optional package playwright-core, which is not installed/);
  t.regex(missing.stderr, /fix: npm install playwright-core/);
  t.false(existsSync(join(app, 'out2/02-masquerade-outside.pdf')));
});
