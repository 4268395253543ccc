#!/usr/bin/env node
// Compiles the CLI and the watchdog's reaper to JavaScript bundles in dist/ (esbuild, which comes
// with tsx), so `nflab` starts without compiling TypeScript. Run by `npm ci`/`npm install` (the
// package's prepare script) and by hand: `node scripts/build.mjs`. bin/nflab.mjs uses the bundle
// only while it is newer than every source file it was built from (dist/inputs.json), and falls
// back to the TypeScript sources through tsx otherwise; lab files always load as TypeScript.
import { build } from 'esbuild';
import { readFile, readdir, rename, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = resolve(root, 'dist');

// A source's `new URL('./x', import.meta.url)` names a file beside the source (library.sh, the lab
// directory, src/index.ts): in the bundle it is rewritten to the same file, relative to dist/.
const keepSourceUrls = {
  name: 'keep-source-urls',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      const contents = text.replace(/new URL\((['"])(\.\.?\/[^'"]*)\1, import\.meta\.url\)/g, (_, q, rel) => {
        const target = relative(dist, resolve(dirname(args.path), rel)) + (rel.endsWith('/') ? '/' : '');
        return `new URL(${q}${target}${q}, import.meta.url)`;
      });
      return { contents, loader: 'ts' };
    });
  },
};

// yargs (and what it imports) is bundled: every start loads it, and one file reads faster than its
// 70 modules. Every other package the sources import stays a package: loaded on demand (dockerode,
// ssh2, yaml, playwright-core) or not bundleable (tsx).
const onlyYargsBundled = {
  name: 'only-yargs-bundled',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.importer.includes('node_modules') || args.path === 'yargs') return undefined;
      return { path: args.path, external: true };
    });
  },
};

const started = Date.now();
await mkdir(dist, { recursive: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { cli: 'src/cli/main.ts', reaper: 'src/engine/reaper.ts' },
  outdir: dist,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  write: false,
  metafile: true,
  logLevel: 'warning',
  plugins: [keepSourceUrls, onlyYargsBundled],
});
// Written to temporary names, then renamed: a concurrent nflab never reads half a bundle.
for (const file of result.outputFiles) {
  await writeFile(`${file.path}.tmp`, file.contents);
  await rename(`${file.path}.tmp`, file.path);
}
// Chunks of earlier builds (their names are content hashes) go once no nflab can still need them:
// a run started from the previous bundle imports some of its chunks late (report, record), so a
// chunk goes an hour after it was last written, not at once.
const written = new Set(result.outputFiles.map((f) => f.path));
const HOUR = 3600_000;
for (const name of await readdir(dist)) {
  const file = resolve(dist, name);
  if (!name.endsWith('.mjs') || written.has(file)) continue;
  if (Date.now() - (await stat(file)).mtimeMs > HOUR) await rm(file, { force: true });
}
const inputs = Object.keys(result.metafile.inputs).filter((f) => !f.includes('node_modules'));
await writeFile(resolve(dist, 'inputs.json.tmp'), JSON.stringify({ builtAt: started, inputs }) + '\n');
await rename(resolve(dist, 'inputs.json.tmp'), resolve(dist, 'inputs.json'));
console.error(`nflab: built dist/ from ${inputs.length} sources in ${Date.now() - started} ms`);
