// `nft list table <family> <name>` as rules with their counters, in the shape iptables-save's
// parser gives (SavedRuleset), so counter checks read nftables rules the same way: a rule's spec is
// its listed text without `counter packets N bytes M`; a rule without a counter is left out (it
// has nothing to count).
import type { SavedRule, SavedRuleset } from './types.ts';

const CHAIN_OPEN = /^chain (\S+) \{$/;
const COUNTER = /\bcounter packets (\d+) bytes (\d+)\s*/;
/** Lines inside a chain that are its properties, not rules. */
const CHAIN_PROPERTY = /^(type \S+ hook|comment ")/;

/** `table` is how a check names it: `ip kube-proxy`. */
export function parseNftList(text: string, table: string): SavedRuleset {
  const rules: SavedRule[] = [];
  let chain: string | undefined;
  let index = 0;
  let depth = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (depth === 1) {
      const open = CHAIN_OPEN.exec(line);
      if (open) {
        chain = open[1];
        index = 0;
      }
    }
    if (chain !== undefined && depth === 2 && line !== '}' && !CHAIN_PROPERTY.test(line)) {
      const rule = line.replace(/\s*# handle \d+$/, '');
      if (rule !== '') {
        index++;
        const c = COUNTER.exec(rule);
        if (c)
          rules.push({
            table,
            chain,
            index,
            spec: rule.replace(COUNTER, '').trim(),
            packets: Number(c[1]),
            bytes: Number(c[2]),
          });
      }
    }
    // Braces of sets ({ 0 : goto a, … }) open and close on the same line: only a line's net change counts.
    depth += (line.match(/\{/g) ?? []).length - (line.match(/\}/g) ?? []).length;
    if (depth <= 1) chain = undefined;
  }
  return { chains: [], rules };
}

/** nft's own words of a rule: split on blanks, the commas of sets and maps dropped. */
function nftWords(text: string): string[] {
  return text
    .replace(/,/g, ' ')
    .split(/\s+/)
    .filter((w) => w !== '');
}

/**
 * A listed nft rule holds the lab's words in order (an ordered subsequence of its words): the lab
 * writes the rule as kube-proxy does, or the part of it that names it (`dnat to 10.244.0.2:80`).
 */
export function nftRuleMatches(spec: string, pattern: string): boolean {
  const want = nftWords(pattern);
  if (want.length === 0) throw new Error('empty rule pattern: nothing to match');
  const have = nftWords(spec);
  let at = 0;
  for (const w of want) {
    while (at < have.length && have[at] !== w) at++;
    if (at === have.length) return false;
    at++;
  }
  return true;
}
