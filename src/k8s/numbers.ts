// Numeric views of rule values whose text differs between what was written and what iptables-save
// prints (docs/kernel-facts.md#g5, #g6): statistic probabilities and packet marks. Checks compare these numbers,
// never the strings.

/** docs/kernel-facts.md#g5: compare probabilities to ±1e-4 (covers %0.5f input and the kernel's 2^-31 steps). */
export const PROBABILITY_TOLERANCE = 1e-4;

export function closeTo(actual: number, expected: number, tolerance = PROBABILITY_TOLERANCE): boolean {
  return Math.abs(actual - expected) <= tolerance;
}

// xt_statistic stores the probability as an integer fraction of 2^31; iptables prints that
// fraction back with 11 decimals, so 0.33333 reads 0.33332999982.
const STATISTIC_SCALE = 0x80000000;

/** The probability text iptables-save shows for a rule written with `--probability p`. */
export function savedProbability(p: number): string {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`probability must be within [0, 1], got ${p}`);
  return (Math.round(p * STATISTIC_SCALE) / STATISTIC_SCALE).toFixed(11);
}

/** The `--probability` value of one rule line, or undefined if it has none. */
export function probabilityOf(rule: string): number | undefined {
  const m = /(?:^|\s)--probability\s+(\S+)/.exec(rule);
  if (!m?.[1]) return undefined;
  const p = Number(m[1]);
  return Number.isFinite(p) ? p : undefined;
}

/**
 * A MARK target as the kernel applies it: new = (old & ~mask) ^ value. iptables-save always prints
 * it as `--set-xmark value/mask`; `kind` names the option that writes the same effect.
 */
export interface MarkTarget {
  value: number;
  mask: number;
  kind: 'or' | 'xor' | 'and' | 'set' | 'xset';
}

const U32 = 0xffffffff;

function u32(text: string): number | undefined {
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(text)) return undefined;
  const n = Number(text);
  return n <= U32 ? n : undefined;
}

function classify(value: number, mask: number): MarkTarget['kind'] {
  if (mask === 0) return 'xor';
  if (value === mask) return 'or';
  if (mask === U32) return 'set';
  if (value === 0) return 'and';
  return 'xset';
}

/**
 * The MARK target of one rule line in any of its spellings: `--set-xmark V[/M]`, `--set-mark V[/M]`,
 * `--or-mark V`, `--xor-mark V`, `--and-mark V`. Undefined if the rule sets no mark.
 * `--or-mark 0x4000` and `--set-xmark 0x4000/0x4000` give the same result (G6).
 */
export function markTargetOf(rule: string): MarkTarget | undefined {
  const m = /(?:^|\s)--(set-xmark|set-mark|or-mark|xor-mark|and-mark)\s+(\S+)/.exec(rule);
  if (!m?.[1] || !m[2]) return undefined;
  const [valueText = '', maskText] = m[2].split('/');
  const value = u32(valueText);
  const given = maskText === undefined ? undefined : u32(maskText);
  if (value === undefined || (maskText !== undefined && given === undefined)) return undefined;
  let mask: number;
  let v = value;
  switch (m[1]) {
    case 'set-xmark':
      mask = given ?? U32;
      break;
    case 'set-mark': // --set-mark V/M is --set-xmark V/(M|V)
      mask = given === undefined ? U32 : (given | value) >>> 0;
      break;
    case 'or-mark':
      mask = value;
      break;
    case 'xor-mark':
      mask = 0;
      break;
    default: // and-mark V is --set-xmark 0/~V
      mask = ~value >>> 0;
      v = 0;
  }
  return { value: v, mask, kind: classify(v, mask) };
}

/** What a MARK target does to a packet mark. */
export function applyMark(old: number, t: Pick<MarkTarget, 'value' | 'mask'>): number {
  return ((old & ~t.mask) ^ t.value) >>> 0;
}

/** A `-m mark [!] --mark V[/M]` match. */
export interface MarkMatch {
  value: number;
  mask: number;
  negated: boolean;
}

export function markMatchOf(rule: string): MarkMatch | undefined {
  const m = /(?:^|\s)-m\s+mark\s+(!\s+)?--mark\s+(\S+)/.exec(rule);
  if (!m?.[2]) return undefined;
  const [valueText = '', maskText] = m[2].split('/');
  const value = u32(valueText);
  const mask = maskText === undefined ? U32 : u32(maskText);
  if (value === undefined || mask === undefined) return undefined;
  return { value, mask, negated: m[1] !== undefined };
}
