// A network namespace's own IP/TCP statistics (/proc/net/snmp, what `nstat` reads): the counters
// that say a packet was discarded for a reason the kernel knows, so no answer can come.

/** `Proto: Name Name…` / `Proto: n n…` line pairs into { 'Ip OutNoRoutes': n, … }. */
export function parseSnmp(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const names = /^(\w+): (.*)$/.exec(lines[i]!);
    const values = /^(\w+): (.*)$/.exec(lines[i + 1]!);
    if (!names || !values || names[1] !== values[1] || /^[\d -]+$/.test(names[2]!)) continue;
    const keys = names[2]!.trim().split(/\s+/);
    const nums = values[2]!.trim().split(/\s+/).map(Number);
    keys.forEach((k, j) => {
      if (Number.isFinite(nums[j])) out.set(`${names[1]} ${k}`, nums[j]!);
    });
    i++;
  }
  return out;
}

/** Counters that grow only when the kernel discards a packet it cannot route or deliver, with what
 * each means for a person reading the report. */
export const DISCARD_COUNTERS: Record<string, string> = {
  'Ip OutNoRoutes': 'had no route to send a packet',
  'Ip InNoRoutes': 'had no route for a packet it received',
  'Ip InAddrErrors': 'discarded a packet addressed to none of its addresses (not forwarding)',
};

/** TCP's "a segment arrived for no connection, so I reset it": in the client, a SYN-ACK that does
 * not belong to its SYN (an un-NATed reply from another address). */
export const RESET_COUNTER = 'Tcp OutRsts';

/** The named counters that grew from `before` to `after`. */
export function grownCounters(
  before: Map<string, number>,
  after: Map<string, number>,
  names: string[],
): { counter: string; by: number }[] {
  return names.flatMap((counter) => {
    const by = (after.get(counter) ?? 0) - (before.get(counter) ?? 0);
    return by > 0 ? [{ counter, by }] : [];
  });
}
