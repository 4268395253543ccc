// Finds and loads lab files: numbered labs in labs/, or any file a user names.
import { existsSync, readdirSync } from 'node:fs';
import { register } from 'node:module';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LabError } from '../errors.ts';
import type { Lab } from '../lab/types.ts';
import { checkDistinctIds } from '../lab/validate.ts';
import { validateLab } from './validate-lab.ts';
import { plainLab } from '../lab/plain.ts';
import { didYouMean } from '../lab/suggest.ts';

export const LABS_DIR = fileURLToPath(new URL('../../labs/', import.meta.url));
const INDEX_URL = new URL('../index.ts', import.meta.url).href;
const LAB_FILE = /^\d{2}-[a-z0-9-]+\.ts$/;

let hooksRegistered: Promise<void> | undefined;
/** Lets a lab file anywhere `import { defineLab } from 'nflab'`, and loads lab files as ES modules
 * even outside a "type": "module" package (a lab in /tmp would otherwise be compiled as CommonJS).
 * Run from the compiled bundle (scripts/build.mjs), nflab has no TypeScript loader yet: tsx is
 * registered here, the first time a lab file is loaded, so commands that load none start fast. */
function registerLabHooks(): Promise<void> {
  // One promise for every caller: labs load in parallel, and none may import before tsx is in place.
  hooksRegistered ??= registerOnce();
  return hooksRegistered;
}

async function registerOnce(): Promise<void> {
  if (!import.meta.url.endsWith('.ts')) (await import('tsx/esm/api')).register();
  const hook = `export async function resolve(s, c, n) {
    const r = await n(s === 'nflab' ? ${JSON.stringify(INDEX_URL)} : s, c);
    return r.url.endsWith('.ts') && !r.url.includes('/node_modules/') ? { ...r, format: 'module' } : r;
  }`;
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
}

export function labFiles(): string[] {
  return readdirSync(LABS_DIR)
    .filter((f) => LAB_FILE.test(f))
    .sort()
    .map((f) => join(LABS_DIR, f));
}

export async function loadLabFile(file: string): Promise<Lab> {
  const path = resolve(file);
  if (!existsSync(path)) throw new LabError(`lab file ${file} does not exist`);
  await registerLabHooks();
  let mod: { default?: unknown };
  try {
    mod = await import(pathToFileURL(path).href);
  } catch (err) {
    throw new LabError(`lab file ${file} could not be loaded: ${(err as Error).message.split('\n')[0]}`);
  }
  let exported: unknown;
  try {
    exported = mod.default;
  } catch (err) {
    throw new LabError(`lab file ${file}: reading its default export threw: ${(err as Error)?.message ?? String(err)}`);
  }
  if (exported === undefined)
    throw new LabError(`lab file ${file} has no default export (write: export default defineLab({...}))`);
  const plain = plainLab(exported, `lab file ${file}`);
  if (typeof plain !== 'object' || plain === null || Array.isArray(plain)) return validateLab(plain, basename(path));
  const lab = { ...(plain as Lab), file: path };
  return validateLab(lab, basename(path));
}

export async function loadAllLabs(): Promise<Lab[]> {
  const labs = await Promise.all(labFiles().map(loadLabFile));
  checkDistinctIds(labs);
  return labs;
}

/** A lab id as typed: `2` means lab `02` (numbered labs have two digits). */
export function labRef(ref: string): string {
  return /^\d$/.test(ref) ? `0${ref}` : ref;
}

/** Resolves what a user typed: a lab id ('01', or '1'), a numbered file's slug, or a path to a lab file. */
export async function resolveLabs(refs: string[]): Promise<Lab[]> {
  const labs: Lab[] = [];
  for (const typed of refs) {
    const ref = labRef(typed);
    if (ref.endsWith('.ts') || ref.includes('/')) {
      labs.push(await loadLabFile(ref));
      continue;
    }
    const file = labFiles().find((f) => basename(f).startsWith(`${ref}-`) || basename(f, '.ts') === ref);
    if (!file) {
      const names = labFiles().map((f) => basename(f, '.ts'));
      const ids = names.map((n) => n.split('-')[0]!);
      throw new LabError(
        `no lab "${typed}"${didYouMean(ref, [...ids, ...names])} (known labs: ${names.join(', ')}; or give a path to a lab file)`,
      );
    }
    labs.push(await loadLabFile(file));
  }
  checkDistinctIds(labs);
  return labs;
}
