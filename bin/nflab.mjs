#!/usr/bin/env node
// Entry point. The compiled bundle (dist/, written by scripts/build.mjs at `npm ci`) starts without
// compiling TypeScript; it is used only while it is newer than every source it was built from, else
// the TypeScript sources run through tsx. Lab files load as TypeScript either way (src/resolve/load.ts).
import { readFileSync, statSync } from 'node:fs';

function freshBundle() {
  if (process.env.NFLAB_FROM_SOURCE === '1') return undefined;
  try {
    const root = new URL('../', import.meta.url);
    const { builtAt, inputs } = JSON.parse(readFileSync(new URL('dist/inputs.json', root), 'utf8'));
    for (const input of inputs) if (statSync(new URL(input, root)).mtimeMs > builtAt) return undefined;
    return new URL('dist/cli.mjs', root).href;
  } catch {
    return undefined; // not built, or a source was removed: run the sources
  }
}

const bundle = freshBundle();
let main;
if (bundle) {
  ({ main } = await import(bundle));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
await main(process.argv.slice(2));
