// Turns a check's expected/observed values (any JSON) into what a reader scans, for the terminal,
// handouts and JUnit: rows of a small table (`packets: 2`, `counts: p1 53, p2 45, p3 52`),
// captured lines as lists, and a traced path as a list of hops per packet, never raw JSON.

export type EvidenceRow =
  | { label: string; text: string }
  | { label: string; lines: string[]; more?: number }
  | { label: string; paths: string[][] };

/** At most this many lines of captured output per row; the rest is counted. */
const SHOWN_LINES = 8;

export function evidenceRows(value: unknown): EvidenceRow[] {
  if (value === undefined || value === null) return [{ label: '', text: '(nothing)' }];
  if (typeof value !== 'object') return [{ label: '', text: String(value) }];
  if (Array.isArray(value)) return [listRow('', value)];
  const rows: EvidenceRow[] = [];
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const label = words(key);
    if (Array.isArray(v) && v.length > 0 && v.every((p) => Array.isArray(p) && p.every((h) => typeof h === 'string'))) {
      rows.push({ label, paths: v as string[][] });
    } else if (Array.isArray(v)) {
      rows.push(listRow(label, v));
    } else {
      rows.push({ label, text: inline(v) });
    }
  }
  return rows.length > 0 ? rows : [{ label: '', text: '(nothing)' }];
}

function listRow(label: string, list: unknown[]): EvidenceRow {
  if (list.length === 0) return { label, text: '(none)' };
  const lines = list.map(inline).filter((l) => l.trim() !== ''); // blank lines of captured output say nothing
  if (lines.every((l) => l.length <= 24) && lines.length <= 6) return { label, text: lines.join(', ') };
  return {
    label,
    lines: lines.slice(0, SHOWN_LINES),
    ...(lines.length > SHOWN_LINES ? { more: lines.length - SHOWN_LINES } : {}),
  };
}

/** The same rows as plain text lines (Markdown and terminals). */
export function evidenceLines(value: unknown): string[] {
  return evidenceRows(value).flatMap((row) => {
    const head = row.label ? `${row.label}: ` : '';
    if ('text' in row) return [`${head}${row.text}`];
    if ('lines' in row)
      return [
        `${head}`.trimEnd(),
        ...row.lines.map((l) => `  ${l}`),
        ...(row.more ? [`  … and ${row.more} more`] : []),
      ].filter(Boolean);
    return [
      `${head}`.trimEnd(),
      ...row.paths.map((p, i) => `  packet ${i + 1}: ${p.join(' → ') || '(no hop)'}`),
    ].filter(Boolean);
  });
}

/** `capturedInAll` → `captured in all`, `notThrough` → `not through`. */
function words(key: string): string {
  return key.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

export function inline(v: unknown): string {
  if (v === undefined || v === null) return '(nothing)';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v !== 'object') return String(v);
  if (Array.isArray(v)) return v.length === 0 ? '(none)' : v.map(inline).join(', ');
  if (isRange(v)) return rangeWords(v);
  // A record (a packet match, a tuple, counts per backend) reads as `key value` pairs.
  return Object.entries(v as Record<string, unknown>)
    .map(([k, x]) => `${k} ${inline(x)}`)
    .join(', ');
}

function isRange(v: object): v is { min?: number; max?: number } {
  const keys = Object.keys(v);
  return keys.length > 0 && keys.every((k) => k === 'min' || k === 'max');
}

function rangeWords(r: { min?: number; max?: number }): string {
  if (r.min !== undefined && r.max !== undefined) return `${r.min} to ${r.max}`;
  return r.min !== undefined ? `at least ${r.min}` : `at most ${r.max}`;
}
