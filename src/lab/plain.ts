// A lab module's default export turned into plain data, once, when it is loaded. A lab file is
// code: its objects may have getters (which can throw, or answer differently each time they are
// read), proxies, class instances or functions. Everything after the loader reads the copy, so a
// getter runs exactly once, here, and a throw is a lab problem (exit 2) naming the field, never
// an internal error in the middle of a run.
import { LabError } from '../errors.ts';
import { printable } from './shape.ts';

const MAX_DEPTH = 64;

export function plainLab(value: unknown, origin: string): unknown {
  return copy(value, '', new Set(), 0, origin);
}

function copy(value: unknown, path: string, ancestors: Set<unknown>, depth: number, origin: string): unknown {
  const fail = (what: string, at = path): never => {
    throw new LabError(`invalid lab:\n  ${printable(`${origin}: ${at || '(lab)'}: ${what}`)}`);
  };
  if (typeof value === 'function')
    fail('is a function (a lab is data: strings, numbers, booleans, arrays and objects)');
  if (typeof value === 'symbol' || typeof value === 'bigint')
    fail(`is a ${typeof value} (a lab is data: strings, numbers, booleans, arrays and objects)`);
  if (typeof value !== 'object' || value === null) return value;
  if (ancestors.has(value)) fail('refers back to an object that contains it (a cycle)');
  if (depth > MAX_DEPTH) fail(`is nested more than ${MAX_DEPTH} levels deep`);
  ancestors.add(value);
  try {
    let keys: string[];
    try {
      keys = Array.isArray(value) ? Array.from({ length: value.length }, (_, i) => String(i)) : Object.keys(value);
    } catch (err) {
      return fail(`its fields could not be listed: ${message(err)}`);
    }
    const out: Record<string, unknown> | unknown[] = Array.isArray(value) ? [] : {};
    for (const key of keys) {
      const childPath = Array.isArray(value) ? `${path}[${key}]` : `${path}${path ? '.' : ''}${key}`;
      let child: unknown;
      try {
        child = (value as Record<string, unknown>)[key];
      } catch (err) {
        // A getter that throws: the lab file's own code failed while nflab read the field.
        return fail(`reading this field threw: ${message(err)}`, childPath);
      }
      // Functions next to data (a builder's helper left on an object) are not part of the lab.
      if (typeof child === 'function' && !Array.isArray(value)) continue;
      (out as Record<string, unknown>)[key] = copy(child, childPath, ancestors, depth + 1, origin);
    }
    return out;
  } finally {
    ancestors.delete(value);
  }
}

function message(err: unknown): string {
  try {
    return String((err as Error)?.message ?? err)
      .split('\n')[0]!
      .slice(0, 200);
  } catch {
    return 'an error that could not be printed';
  }
}
