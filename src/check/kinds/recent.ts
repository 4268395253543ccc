// recent(node, lists).has(address) / .lacks(address) / .empty(): entries of xt_recent lists
// (/proc/net/xt_recent/<list>) read after the traffic, e.g. kube-proxy's KUBE-SEP-* affinity lists;
// or, named with family and table ('ip kube-proxy affinity-…'), the elements of an nftables set
// (`nft list set`), as kube-proxy's nftables mode keeps ClientIP affinity.
import { isIPv4 } from 'node:net';
import type { Check } from '../../lab/types.ts';
import { defineKind, type Verdict } from '../kind.ts';
import type { Observations } from '../observations.ts';
import { quoteWord as q } from '../../exec/quote.ts';
import { trafficKey } from '../../traffic/run.ts';
import { tally } from '../compare.ts';
import type { RecentEntry } from '../../observe/parse-xt-recent.ts';

type RecentCheck = Extract<Check, { kind: 'recent' }>;
/** xt_recent list names are file names under /proc/net/xt_recent (the kernel allows up to 200 characters). */
const RECENT_LIST = /^[A-Za-z0-9_.-]{1,200}$/;

/** An nftables set: 'family table set' (kube-proxy's affinity sets hold '/' and ':' in their names). */
export const isNftSet = (list: string) => /^(ip|ip6|inet) \S+ \S+$/.test(list);
const what = (list: string) => (isNftSet(list) ? 'nft set' : 'xt_recent list');

const listNames = (c: RecentCheck) => (typeof c.lists === 'string' ? [c.lists] : Object.values(c.lists));

export const recentKind = defineKind({
  kind: 'recent',
  builder: 'recent(node, lists).has(address) / .lacks(address) / .empty()',
  fields: { chosenBy: 'object', lists: 'string-or-object' },
  validate(c, v) {
    v.knownNode(c.node);
    const perBackend = typeof c.lists === 'object' && c.lists !== null;
    const names = typeof c.lists === 'string' ? [c.lists] : perBackend ? Object.values(c.lists) : [];
    if (names.length === 0) v.add('recent check: field "lists" must be a list name or map backend nodes to list names');
    for (const list of names)
      if (typeof list !== 'string' || !(RECENT_LIST.test(list) || isNftSet(list)))
        v.add(
          `recent check: list name ${v.show(list)} is invalid (1-200 letters, digits, '_', '.', '-'; or an nftables set as 'ip TABLE SET')`,
        );
    if (perBackend) for (const node of Object.keys(c.lists)) v.knownNode(node, `lists.${node}`);
    if (!['has', 'lacks', 'empty'].includes(c.expect))
      v.add(`recent check: field "expect" must be has, lacks or empty (got ${v.show(c.expect)})`);
    if (c.expect !== 'empty' && !isIPv4(String(c.address)))
      v.add(`recent check: field "address" must be an IPv4 address (got ${v.show(c.address)})`);
    if (c.chosenBy !== undefined) {
      if (!perBackend || c.expect !== 'has')
        v.add('recent check: field "chosenBy" needs per-backend lists and expect "has"');
      v.tcpTraffic(c.chosenBy, 'chosenBy');
    } else if (perBackend && c.expect === 'has') {
      v.add('recent check: with per-backend lists, "has" needs "chosenBy" (the traffic whose backend names the list)');
    }
  },
  describe(c) {
    const lists =
      typeof c.lists === 'string'
        ? `${what(c.lists)} ${c.lists}`
        : `the ${what(Object.values(c.lists)[0] ?? '')}s ${Object.values(c.lists).join(', ')}`;
    if (c.expect === 'empty') return `on ${c.node}, ${lists} ${typeof c.lists === 'string' ? 'is' : 'are'} empty`;
    if (c.expect === 'lacks')
      return typeof c.lists === 'string'
        ? `on ${c.node}, ${lists} does not hold ${c.address}`
        : `on ${c.node}, none of ${lists} holds ${c.address}`;
    return c.chosenBy
      ? `on ${c.node}, only the ${what(listNames(c)[0] ?? '')} of the backend that answered ${c.chosenBy.from}'s connections holds ${c.address}`
      : `on ${c.node}, ${lists} holds ${c.address}`;
  },
  traffic: (c) => (c.chosenBy ? [c.chosenBy] : []),
  needs: (c) => listNames(c).map((list) => ({ type: 'recent' as const, node: c.node, list })),
  about: () => 'behaviour',
  hint(c, verdict, obs) {
    const lines = listNames(c).map((list) => {
      const r = obs.recent(c.node, list);
      if (!r) return undefined;
      if ('error' in r) return `list ${list} on ${c.node}: ${r.error}`;
      const fresh = r.entries.filter((e) => touched(e, r.before)).map((e) => e.address);
      return `list ${list} on ${c.node} holds ${r.entries.length === 0 ? 'nothing' : r.entries.map((e) => e.address).join(', ')}${r.before ? ` (written during the check: ${fresh.length ? fresh.join(', ') : 'none'})` : ''}`;
    });
    return [verdict.reason, ...lines].filter(Boolean).join('; ') || undefined;
  },
  judge: judgeRecent,
  exportLine(c, desc, ids) {
    if (listNames(c).some(isNftSet))
      return `skip_check ${desc} ${q('an nftables set: the exported script reads xt_recent lists only; nflab run reads it')}`;
    const lists =
      typeof c.lists === 'string'
        ? `- ${q(c.lists)}`
        : Object.entries(c.lists)
            .map(([node, list]) => `${q(node)} ${q(list)}`)
            .join(' ');
    return `check_recent ${q(c.node)} ${q(c.expect)} ${q(c.address ?? '')} ${c.chosenBy ? ids.traffic(c.chosenBy) : "''"} ${desc} ${lists}`;
  },
  look: (c, show) =>
    listNames(c).map((list) =>
      show(
        c.node,
        isNftSet(list) ? ['nft', 'list', 'set', ...list.split(' ')] : ['cat', `/proc/net/xt_recent/${list}`],
      ),
    ),
});

/** An entry the step's traffic wrote: not in the baseline, or seen again since (xt_recent --set refreshes last_seen). */
function touched(e: RecentEntry, before: RecentEntry[] | undefined): boolean {
  if (!before) return true;
  const b = before.find((x) => x.address === e.address);
  return !b || b.lastSeen !== e.lastSeen || b.hits !== e.hits;
}

function judgeRecent(c: RecentCheck, obs: Observations): Verdict {
  const perBackend = typeof c.lists !== 'string';
  const names = listNames(c);
  const read = new Map(names.map((list) => [list, obs.recent(c.node, list)] as const));
  const observed: Record<string, unknown> = {
    lists: Object.fromEntries(
      [...read].map(([list, r]) => [
        list,
        !r
          ? 'not read'
          : 'error' in r
            ? r.error
            : r.entries.map((e) =>
                e.expires !== undefined ? `${e.address} (expires ${e.expires})` : `${e.address} (${e.hits} hits)`,
              ),
      ]),
    ),
  };
  // has: the lists the step's own traffic wrote the address into (new, or refreshed since the baseline), so that
  // an entry an earlier check or the student's own traffic left cannot stand in for this check's.
  // lacks and empty judge the lists as the student left them (a reset is their point: lab 06 step 3).
  const holders = (address: string, touchedOnly = false) =>
    [...read]
      .filter(
        ([, r]) =>
          r && 'entries' in r && r.entries.some((e) => e.address === address && (!touchedOnly || touched(e, r.before))),
      )
      .map(([list]) => list);
  const unreadable = [...read].filter(([, r]) => !r || 'error' in r).map(([list]) => list);
  const base = { lists: names, ...(c.address ? { address: c.address } : {}) };
  if (unreadable.length > 0) return { met: false, expected: { ...base, expect: c.expect }, observed };
  switch (c.expect) {
    case 'empty':
      return {
        met: [...read.values()].every((r) => r && 'entries' in r && r.entries.length === 0),
        expected: { ...base, entries: 0 },
        observed,
      };
    case 'lacks':
      return { met: holders(c.address!).length === 0, expected: { ...base, heldBy: [] }, observed };
    case 'has': {
      if (!perBackend)
        return { met: holders(c.address!, true).length === 1, expected: { ...base, heldBy: names }, observed };
      const lists = c.lists as Record<string, string>;
      const outcomes = obs.traffic(c.chosenBy!)?.tcp ?? [];
      const backends = Object.keys(tally(outcomes.flatMap((o) => (o.answeredBy ? [o.answeredBy] : []))));
      const expected = { ...base, heldBy: `only the list of the backend that answered ${trafficKey(c.chosenBy!)}` };
      observed.chosenBy = backends.length === 0 ? 'no connection was answered' : backends;
      if (backends.length !== 1)
        return { met: false, expected, observed, reason: 'the traffic was not answered by exactly one backend' };
      const list = lists[backends[0]!];
      if (list === undefined)
        return { met: false, expected, observed, reason: `no list is given for backend ${backends[0]}` };
      const held = holders(c.address!, true);
      return {
        met: held.length === 1 && held[0] === list,
        expected: { ...expected, list },
        observed: { ...observed, heldBy: held },
      };
    }
  }
}
