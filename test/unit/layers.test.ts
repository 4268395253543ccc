// The import graph of src/ has no upward edge: each module imports only modules of its own layer
// or below (docs/architecture.md). Type-only and dynamic imports count too.
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Lowest first. The model is the data nflab reads and writes: the lab (src/lab), the report's
 * shape (src/report/types.ts) and the Kubernetes Service a lab may carry (src/k8s/service.ts). */
const LAYERS: [string, (path: string) => boolean][] = [
  [
    'model',
    (p) =>
      p === 'errors.ts' ||
      p.startsWith('lab/') ||
      p.startsWith('net/') ||
      p === 'report/types.ts' ||
      p === 'k8s/service.ts',
  ],
  ['topology/exec', (p) => /^(topology|exec|k8s)\//.test(p)],
  ['drivers/observe', (p) => /^(drivers|observe)\//.test(p)],
  ['traffic', (p) => p.startsWith('traffic/')],
  ['check', (p) => p.startsWith('check/')],
  ['resolve', (p) => p.startsWith('resolve/')],
  ['engine', (p) => p.startsWith('engine/')],
  ['report/handout/export', (p) => /^(report|handout|export)\//.test(p)],
  ['cli', (p) => p.startsWith('cli/') || p === 'index.ts'],
];

function layerOf(path: string): number {
  const i = LAYERS.findIndex(([, has]) => has(path));
  if (i < 0) throw new Error(`${path} belongs to no layer: add it to LAYERS and docs/architecture.md`);
  return i;
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function edges(): { from: string; to: string }[] {
  return files(SRC).flatMap((file) => {
    const text = readFileSync(file, 'utf8');
    const specs = [
      ...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'/g),
      ...text.matchAll(/import\('(\.[^']+)'\)/g),
    ].map((m) => m[1]!);
    return specs.map((s) => ({ from: relative(SRC, file), to: relative(SRC, resolve(dirname(file), s)) }));
  });
}

test('every module of src/ belongs to a layer', (t) => {
  for (const file of files(SRC)) t.notThrows(() => layerOf(relative(SRC, file)));
});

test('no import runs up the layers', (t) => {
  const all = edges();
  t.true(all.length > 200, `read the imports (${all.length})`);
  const upward = all
    .filter((e) => layerOf(e.to) > layerOf(e.from))
    .map((e) => `${e.from} (${LAYERS[layerOf(e.from)]![0]}) → ${e.to} (${LAYERS[layerOf(e.to)]![0]})`);
  t.deepEqual(upward, []);
});

test('the check kinds are the only place that switches over check kinds', (t) => {
  // A switch over a check's kind, or a case of a kind only checks have.
  const offenders = files(SRC)
    .filter((f) => !f.includes('/check/kinds/'))
    .filter((f) =>
      /switch \((c|check)\.kind\)|case '(packets|counter|distribution|sticky|all-pairs|all-reach|path)':/.test(
        readFileSync(f, 'utf8'),
      ),
    );
  t.deepEqual(
    offenders.map((f) => relative(SRC, f)),
    [],
  );
});
