// A rule as a lab wrote it, prepared for the exported script's awk matcher: the same matching
// rules as ruleSpecMatches (src/observe/parse-iptables-save.ts), with every rendering difference
// that can be decided now (`/32`, mark values as iptables-save prints them) decided here, so the
// script only compares strings (and numbers, for --probability).
import { splitWords } from '../lab/words.ts';
import {
  BASIC_OPTIONS as BASIC,
  MARK_VALUE_OPTIONS as MARK_VALUES,
  canonicalMarkTargets,
  hex,
  parseMark,
} from '../observe/rule-words.ts';

/** Four words per rule word: `B NEG OPTION VALUE` (order-free options) or `R MODE VALUE ALTERNATIVE`. */
export function ruleTokens(pattern: string): string[] {
  const words = canonicalMarkTargets(splitWords(pattern));
  if (words.length === 0) throw new Error('empty rule pattern: nothing to match');
  const tokens: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const negated = word === '!' && i + 1 < words.length && words[i + 1]! in BASIC;
    const option = BASIC[negated ? words[i + 1]! : word];
    const valueAt = i + (negated ? 2 : 1);
    if (option !== undefined && valueAt < words.length && !(i > 0 && words[i - 1] === '--comment')) {
      tokens.push('B', negated ? '1' : '0', option, basicValue(option, words[valueAt]!));
      i = valueAt;
      continue;
    }
    rest.push(word);
    if (word === '--comment' && i + 1 < words.length) rest.push(words[++i]!);
  }
  rest.forEach((word, i) => {
    const option = i > 0 ? rest[i - 1] : undefined;
    if (option === '--probability' && Number.isFinite(Number(word))) tokens.push('R', '~', word, '');
    else if (option !== undefined && MARK_VALUES.has(option) && parseMark(word))
      tokens.push('R', '=', ...savedMarks(parseMark(word)!));
    else tokens.push('R', '=', word, '');
  });
  return tokens;
}

/** iptables-save prints a host address with its prefix length. */
function basicValue(option: string, value: string): string {
  if (option !== '-s' && option !== '-d') return value;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(value)) return `${value}/32`;
  if (value.includes(':') && !value.includes('/')) return `${value}/128`;
  return value;
}

/** The two forms iptables-save may print a mark in (hex; the full mask may be left out). */
function savedMarks(m: { value: number; mask?: number }): [string, string] {
  const mask = m.mask ?? 0xffffffff;
  return mask === 0xffffffff ? [hex(m.value), `${hex(m.value)}/0xffffffff`] : [`${hex(m.value)}/${hex(mask)}`, ''];
}
