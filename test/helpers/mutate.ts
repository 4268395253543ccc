// Mutations of valid lab definitions for the fuzz test: hostile strings (shell metacharacters,
// spaces, very long, unicode, control characters), wrong types, missing fields, references to
// nothing (including names every object inherits, like "constructor"), cycles, odd numbers.
// Deterministic for a given random source, so a seed reproduces every case.

type Json = unknown;
type PathKey = string | number;

export const HOSTILE_STRINGS = [
  '; rm -rf / #',
  '$(reboot)',
  '`id`',
  'a|b',
  'a && b',
  "it's",
  '"quoted"',
  'a b',
  ' ',
  '',
  '\t',
  'a\nlink add x type bridge',
  'a\rb',
  '\0',
  'x'.repeat(5000),
  'ü-nïcødé',
  '节点',
  '🙂',
  '\u202ertl',
  'a\u200bb',
  '\uFEFF',
  '-rf',
  '--help',
  '*',
  '?',
  '~',
  '${HOME}',
  '%s%n',
  '\\',
  '..',
  '../../etc/passwd',
  '/etc/shadow',
  'constructor',
  '__proto__',
  'toString',
  'hasOwnProperty',
  'NaN',
  'null',
  'undefined',
  '0',
  '-1',
  '1e309',
  '10.0.0.1/33',
  '999.1.1.1',
  '10.0.0.1 ',
  ' 10.0.0.1',
  '10.0.0.1\n',
  '::1',
  'net.ipv4.ip_forward=1; reboot',
  'kernel.sysrq',
  'net/../kernel/sysrq',
  'netns',
  '1',
];
export const WRONG_VALUES: Json[] = [
  42,
  -1,
  0,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  true,
  false,
  null,
  [],
  {},
  [1, 'x'],
  { x: 1 },
  ['a', ['b']],
];
export const NUMBER_EDGES = [
  0,
  -1,
  -0,
  0.5,
  65535,
  65536,
  1e9,
  2 ** 53,
  Number.MAX_VALUE,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
];
/** Names of nothing: an unknown node, and names every JS object answers to. */
export const DANGLING = ['ghost', 'eth9', 'br-none', 'constructor', 'toString', '__proto__', 'valueOf'];
const REFERENCE_KEYS = new Set(['node', 'from', 'answeredBy', 'iface', 'dev', 'bridge', 'to', 'via']);

export interface Mutation {
  path: PathKey[];
  op: string;
  value?: string;
}

export interface FuzzCase {
  index: number;
  lab: Record<string, unknown>;
  mutations: Mutation[];
  /** The case contains a reference cycle (not expressible in a lab file). */
  cyclic: boolean;
  /** The case may be run for real: no cycle, no path-like hostile string (a gap in validation must
   * not let a fuzz case write to a file of this machine). */
  cliSafe: boolean;
}

function isContainer(v: unknown): v is Record<PathKey, unknown> {
  return typeof v === 'object' && v !== null;
}

/** Every path in the value (containers and leaves), parents before children. */
function paths(value: unknown, prefix: PathKey[] = [], out: PathKey[][] = [], seen = new Set<unknown>()): PathKey[][] {
  if (!isContainer(value) || seen.has(value)) return out;
  seen.add(value);
  for (const key of Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value)) {
    const path = [...prefix, key];
    out.push(path);
    paths((value as Record<PathKey, unknown>)[key], path, out, seen);
  }
  return out;
}

function parentOf(root: unknown, path: PathKey[]): Record<PathKey, unknown> | undefined {
  let v: unknown = root;
  for (const key of path.slice(0, -1)) {
    if (!isContainer(v)) return undefined;
    v = (v as Record<PathKey, unknown>)[key];
  }
  return isContainer(v) ? v : undefined;
}

/** Sets an own property even for "__proto__" (plain assignment would change the prototype). */
function setOwn(obj: Record<PathKey, unknown>, key: PathKey, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

const pick = <T>(random: () => number, list: readonly T[]): T => list[Math.floor(random() * list.length)]!;

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function mutateOnce(root: Record<string, unknown>, random: () => number): Mutation | undefined {
  const all = paths(root);
  if (all.length === 0) return undefined;
  const path = pick(random, all);
  const parent = parentOf(root, path);
  if (!parent) return undefined;
  const key = path[path.length - 1]!;
  const current = parent[key];
  const ops = ['hostile', 'wrong-type', 'delete', 'dangling', 'cycle', 'rename-key', 'duplicate', 'empty', 'number'];
  const op = pick(random, ops);
  switch (op) {
    case 'hostile': {
      const s = pick(random, HOSTILE_STRINGS);
      setOwn(parent, key, s);
      return { path, op, value: s };
    }
    case 'wrong-type': {
      const v = pick(random, WRONG_VALUES);
      setOwn(parent, key, typeof v === 'object' && v !== null ? clone(v) : v);
      return { path, op, value: typeof v === 'number' ? String(v) : JSON.stringify(v) };
    }
    case 'delete':
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete parent[key];
      return { path, op };
    case 'dangling': {
      // Prefer a field that names something; otherwise any leaf becomes a dangling name.
      const refPath = all.filter((p) => REFERENCE_KEYS.has(String(p[p.length - 1])));
      const target = refPath.length > 0 && random() < 0.8 ? pick(random, refPath) : path;
      const targetParent = parentOf(root, target);
      if (!targetParent) return undefined;
      const name = pick(random, DANGLING);
      setOwn(targetParent, target[target.length - 1]!, name);
      return { path: target, op, value: name };
    }
    case 'cycle': {
      // The value refers back to an object that contains it.
      const ancestor = pick(random, [root, parent]);
      setOwn(parent, key, ancestor);
      return { path, op, value: ancestor === root ? '<the lab>' : '<its parent>' };
    }
    case 'rename-key': {
      if (Array.isArray(parent)) return undefined;
      const s = pick(random, [...HOSTILE_STRINGS, ...DANGLING]);
      const value = parent[key];
      delete parent[key];
      setOwn(parent, s, value);
      return { path, op, value: s };
    }
    case 'duplicate':
      if (!Array.isArray(current) || current.length === 0) return undefined;
      // structuredClone: an element may already hold a cycle from an earlier mutation.
      current.push(structuredClone(current[Math.floor(random() * current.length)]));
      return { path, op };
    case 'empty':
      if (Array.isArray(current)) current.length = 0;
      else if (isContainer(current)) for (const k of Object.keys(current)) delete current[k];
      else setOwn(parent, key, '');
      return { path, op };
    case 'number': {
      const n = pick(random, NUMBER_EDGES);
      setOwn(parent, key, n);
      return { path, op, value: String(n) };
    }
  }
  return undefined;
}

/** One fuzz case: 1 to 3 mutations of one of the valid labs. */
export function fuzzCase(index: number, labs: Record<string, unknown>[], random: () => number): FuzzCase {
  const lab = clone(pick(random, labs));
  const mutations: Mutation[] = [];
  const wanted = 1 + Math.floor(random() * 3);
  for (let tries = 0; mutations.length < wanted && tries < 20; tries++) {
    const m = mutateOnce(lab, random);
    if (m) mutations.push(m);
  }
  const cyclic = mutations.some((m) => m.op === 'cycle');
  const pathLike = mutations.some((m) => m.value !== undefined && (m.value.includes('/') || m.value.includes('..')));
  return { index, lab, mutations, cyclic, cliSafe: !cyclic && !pathLike };
}

/** A lab file's source for a case: a JS literal (NaN, Infinity, -0 and "__proto__" keys survive). */
export function labSource(value: unknown): string {
  return `export default ${literal(value)};\n`;
}

function literal(v: unknown): string {
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'NaN';
    if (v === Number.POSITIVE_INFINITY) return 'Infinity';
    if (v === Number.NEGATIVE_INFINITY) return '-Infinity';
    if (Object.is(v, -0)) return '-0';
    return String(v);
  }
  if (v === undefined) return 'undefined';
  if (typeof v !== 'object' || v === null) return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(literal).join(', ')}]`;
  // A computed key keeps "__proto__" an own property instead of setting the prototype.
  return `{ ${Object.entries(v)
    .map(([k, x]) => `[${JSON.stringify(k)}]: ${literal(x)}`)
    .join(', ')} }`;
}

export function describeCase(c: FuzzCase): string {
  return c.mutations
    .map(
      (m) =>
        `${m.op} at ${m.path.join('.')}${m.value !== undefined ? ` = ${JSON.stringify(m.value.length > 40 ? `${m.value.slice(0, 37)}...` : m.value)}` : ''}`,
    )
    .join('; ');
}
