// Silent drops as iptables counts them: built-in chains whose policy is DROP, and rules that jump to
// DROP. A ping that is expected to fail can stop waiting once these have counted every request it
// sent (src/engine/step.ts), since a dropped request can never be answered.
import type { SavedRuleset } from './types.ts';

/** Packet counters of every silent drop in a ruleset, by a name a person reads ("filter FORWARD policy DROP"). */
export function dropCounters(saved: SavedRuleset): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of saved.chains) if (c.policy === 'DROP') out.set(`${c.table} ${c.chain} policy DROP`, c.packets);
  for (const r of saved.rules)
    if (/(^| )-j DROP( |$)/.test(r.spec)) out.set(`${r.table} -A ${r.chain} ${r.spec}`, r.packets);
  return out;
}

/** The counters that grew from `before` to `after`, with how much. */
export function dropsBetween(
  before: Map<string, number>,
  after: Map<string, number>,
): { what: string; packets: number }[] {
  return [...after].flatMap(([what, n]) =>
    n > (before.get(what) ?? 0) ? [{ what, packets: n - (before.get(what) ?? 0) }] : [],
  );
}
