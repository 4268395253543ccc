// One line saying what differed between a check's expected and observed values ("expected 1 packet,
// observed 2"), for CI pages that list only a failure's message (GitLab, GitHub). It reads the
// report's values alone, so it holds for every check kind, including ones added later.
import { inline } from './format-values.ts';

/** Keys whose values count something, by check kind: the count reads with its unit. */
const UNITS: Record<string, Record<string, [one: string, many: string]>> = {
  packets: { count: ['packet', 'packets'] },
  conntrack: { count: ['entry', 'entries'] },
  counter: { packets: ['packet', 'packets'], bytes: ['byte', 'bytes'] },
};

interface Judged {
  kind: string;
  expected: unknown;
  observed: unknown;
  reason?: string;
}

export function differenceWords(check: Judged, max = 300): string {
  const { expected, observed } = check;
  let words: string;
  if (typeof observed === 'string') {
    // The check could not observe at all ("no capture ran"): that is the difference.
    words = `${observed} (expected ${inline(expected)})`;
  } else if (isRecord(expected) && isRecord(observed)) {
    const differing = Object.keys(expected).filter((k) => k in observed && !agrees(expected[k], observed[k]));
    if (differing.length > 0)
      words = differing
        .slice(0, 3)
        .map((k) => pair(check.kind, k, expected[k], observed[k]))
        .join('; ');
    else if (check.reason) return clip(check.reason, max);
    else if ('error' in observed) words = `${inline(observed.error)} (expected ${inline(expected)})`;
    else words = `expected ${inline(expected)}, observed ${inline(observed)}`;
  } else {
    words = `expected ${inline(expected)}, observed ${inline(observed)}`;
  }
  return clip(check.reason ? `${words} (${check.reason})` : words, max);
}

function pair(kind: string, key: string, expected: unknown, observed: unknown): string {
  const unit = UNITS[kind]?.[key];
  if (unit && typeof observed === 'number') return `expected ${amount(expected, unit)}, observed ${observed}`;
  return `${key}: expected ${inline(expected)}, observed ${inline(observed)}`;
}

/** `1 packet`, `no packets`, `at least 1 packet`, `2..5 packets`. */
function amount(expected: unknown, [one, many]: [string, string]): string {
  if (typeof expected === 'number') return expected === 0 ? `no ${many}` : `${expected} ${expected === 1 ? one : many}`;
  if (isRange(expected)) {
    const { min, max } = expected;
    if (min !== undefined && max !== undefined) return `${min}..${max} ${many}`;
    if (min !== undefined) return `at least ${min} ${min === 1 ? one : many}`;
    return `at most ${max} ${max === 1 ? one : many}`;
  }
  return `${inline(expected)} ${many}`;
}

/** An expected value agrees with an observed one when equal, or a number within an expected range. */
function agrees(expected: unknown, observed: unknown): boolean {
  if (isRange(expected) && typeof observed === 'number')
    return (
      (expected.min === undefined || observed >= expected.min) &&
      (expected.max === undefined || observed <= expected.max)
    );
  return JSON.stringify(expected) === JSON.stringify(observed);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isRange(v: unknown): v is { min?: number; max?: number } {
  return (
    isRecord(v) &&
    Object.keys(v).length > 0 &&
    Object.keys(v).every((k) => (k === 'min' || k === 'max') && typeof v[k] === 'number')
  );
}

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
