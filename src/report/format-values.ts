// Turns a check's expected/observed values (any JSON) into short lines a reader can scan, for the
// terminal, handouts and JUnit: `count: 2`, `packets:` followed by the tcpdump lines, nested values as compact JSON.

export function evidenceLines(value: unknown): string[] {
  if (value === undefined || value === null) return ['(nothing)'];
  if (typeof value !== 'object') return [String(value)];
  if (Array.isArray(value)) return value.length === 0 ? ['(none)'] : value.map((v) => `- ${inline(v)}`);
  const lines: string[] = [];
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x !== 'object' || x === null)) {
      lines.push(`${key}:`, ...v.map((x) => `  ${String(x)}`));
    } else {
      lines.push(`${key}: ${inline(v)}`);
    }
  }
  return lines.length > 0 ? lines : ['(nothing)'];
}

export function inline(v: unknown): string {
  if (v === undefined || v === null) return '(nothing)';
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.length === 0) return '(none)';
  if (typeof v !== 'object') return String(v);
  if (isRange(v)) return rangeWords(v);
  // A flat record (a packet match, a tuple) reads best as key=value words.
  const entries = Object.entries(v as Record<string, unknown>);
  if (!Array.isArray(v) && entries.length > 0 && entries.every(([, x]) => x === null || typeof x !== 'object')) return entries.map(([k, x]) => `${k}=${String(x)}`).join(' ');
  return JSON.stringify(v);
}

function isRange(v: object): v is { min?: number; max?: number } {
  const keys = Object.keys(v);
  return keys.length > 0 && keys.every((k) => k === 'min' || k === 'max');
}

function rangeWords(r: { min?: number; max?: number }): string {
  if (r.min !== undefined && r.max !== undefined) return `${r.min}..${r.max}`;
  return r.min !== undefined ? `at least ${r.min}` : `at most ${r.max}`;
}
