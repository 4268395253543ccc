// nftables evidence for the counter and recent kinds, judged on listings recorded from the real
// kernel (test/fixtures/nft: lab 06 under --kube-proxy nftables after its step 2, where pc and pd
// both stuck to p2): `nft list table ip kube-proxy` with the counters nflab adds, and
// `nft list set` of the three affinity sets. No root, no kernel.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { recent, rule, rules, tcp } from '../../src/lab/define.ts';
import type { Check } from '../../src/lab/types.ts';
import { evaluate } from '../../src/check/evaluate.ts';
import { Observations } from '../../src/check/observations.ts';
import { nftRuleMatches, parseNftList } from '../../src/observe/parse-nft-list.ts';
import { parseNftSetElements } from '../../src/observe/parse-xt-recent.ts';
import { moduleOf } from '../../src/check/registry.ts';
import { withCounters } from '../../src/k8s/render-nftables.ts';
import type { TcpOutcome } from '../../src/observe/types.ts';

const fixture = (p: string) => readFileSync(new URL(`../fixtures/nft/${p}`, import.meta.url), 'utf8');
const TABLE = 'ip kube-proxy';
const after = fixture('lab06-after-step2.table.txt');
// The same table as loaded: every counter at zero.
const before = after.replace(/counter packets \d+ bytes \d+/g, 'counter packets 0 bytes 0');
const SERVICE = /chain (service-[A-Z0-9]{8}-\S+) \{/.exec(after)![1]!;
const P2_SET = 'affinity-SOAM66JC-default/k8s-nginx-affinity/tcp/__10.244.0.3/80';

function countersObs(): Observations {
  const obs = new Observations();
  obs.set(
    { type: 'counters', node: 'node', nft: TABLE },
    { before: parseNftList(before, TABLE), after: parseNftList(after, TABLE) },
  );
  return obs;
}
const judged = (c: Check, obs: Observations) => evaluate(c, obs);

test('nft list table: the rules with a counter, their chain and counts; verdict-map look-ups have none', (t) => {
  const saved = parseNftList(after, TABLE);
  const inService = saved.rules.filter((r) => r.chain === SERVICE);
  t.deepEqual(
    inService.map((r) => r.packets),
    [0, 0, 38, 0, 2],
  );
  t.regex(inService[4]!.spec, /^numgen random mod 3 vmap \{ 0 : goto endpoint-\S+, 1 : goto/);
  t.false(
    saved.rules.some((r) => r.spec.includes('vmap @service-ips')),
    "the services chain's map look-ups carry no counter",
  );
  t.false(saved.rules.some((r) => /counter|# handle/.test(r.spec)));
  // The pods are inside the cluster CIDR: nothing was marked, every connection returned unmasqueraded.
  const masquerading = saved.rules.filter((r) => r.chain === 'masquerading');
  t.deepEqual(
    masquerading.map((r) => [r.spec, r.packets]),
    [
      ['meta mark & 0x00004000 == 0x00000000 return', 40],
      ['meta mark set meta mark ^ 0x00004000', 0],
      ['masquerade fully-random', 0],
    ],
  );
});

test('counter checks on an nft table: met by the counted delta, not met by another count or a rule that is not there', (t) => {
  const obs = countersObs();
  t.is(judged(rule('node', `${TABLE} ${SERVICE}`, 'numgen random mod 3').delta({ packets: 2 }), obs).status, 'met');
  t.is(judged(rule('node', `${TABLE} ${SERVICE}`, 'numgen random mod 3').delta({ packets: 3 }), obs).status, 'not-met');
  const lookups = [0, 1, 2].map(
    (i) => `ip saddr @${/ip saddr @(\S+)/g.exec(after.split('\n').filter((l) => l.includes('ip saddr @'))[i]!)![1]}`,
  );
  t.is(judged(rules('node', `${TABLE} ${SERVICE}`, lookups).delta({ packets: 38 }), obs).status, 'met');
  const missing = judged(rule('node', `${TABLE} ${SERVICE}`, 'dnat to 10.9.9.9:80').delta({ packets: 0 }), obs);
  t.is(missing.status, 'not-met');
  t.regex(String(missing.observed), /no rule in ip kube-proxy service-\S+ matches "dnat to 10\.9\.9\.9:80"/);
  // The counters are read from nft, not iptables-save: the check asks for the table's listing.
  t.deepEqual(
    moduleOf(rule('node', `${TABLE} masquerading`, 'masquerade').delta({ packets: 1 })).needs(
      rule('node', `${TABLE} masquerading`, 'masquerade').delta({ packets: 1 }) as never,
    ),
    [{ type: 'counters', node: 'node', nft: TABLE }],
  );
});

test('nft rule words: an ordered subsequence of the listed words, the commas of maps ignored', (t) => {
  t.true(
    nftRuleMatches(
      'numgen random mod 2 vmap { 0 : goto a, 1 : goto b }',
      'numgen random mod 2 vmap { 0 : goto a , 1 : goto b }',
    ),
  );
  t.true(nftRuleMatches('meta l4proto tcp dnat to 10.244.0.2:80', 'dnat to 10.244.0.2:80'));
  t.false(nftRuleMatches('meta l4proto tcp dnat to 10.244.0.2:80', 'dnat to 10.244.0.3:80'));
  t.false(
    nftRuleMatches('ip saddr 10.244.0.2 jump mark-for-masquerade', 'jump mark-for-masquerade ip saddr 10.244.0.2'),
    'order counts',
  );
});

test('withCounters: a counter after the matches, before the first statement; map look-ups and tables untouched', (t) => {
  const text = [
    'add table ip kube-proxy { comment "rules for kube-proxy" ; }',
    'add rule ip kube-proxy masquerading mark and 0x4000 == 0 return',
    'add rule ip kube-proxy masquerading mark set mark xor 0x4000',
    'add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips',
    'add rule ip kube-proxy ep ip saddr 10.0.0.1 jump mark-for-masquerade',
    'add rule ip kube-proxy svc numgen random mod 2 vmap { 0 : goto a , 1 : goto b }',
  ].join('\n');
  t.deepEqual(withCounters(text).split('\n'), [
    'add table ip kube-proxy { comment "rules for kube-proxy" ; }',
    'add rule ip kube-proxy masquerading mark and 0x4000 == 0 counter return',
    'add rule ip kube-proxy masquerading counter mark set mark xor 0x4000',
    'add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips',
    'add rule ip kube-proxy ep ip saddr 10.0.0.1 counter jump mark-for-masquerade',
    'add rule ip kube-proxy svc counter numgen random mod 2 vmap { 0 : goto a , 1 : goto b }',
  ]);
});

test('recent checks on nft affinity sets: the set of the backend that answered holds the client', (t) => {
  const sets = fixture('lab06-after-step2.sets.txt').split(/(?=^table ip kube-proxy \{)/m);
  t.is(sets.length, 3);
  const byName = new Map(sets.map((text) => [/set (\S+) \{/.exec(text)![1]!, parseNftSetElements(text)]));
  t.deepEqual(
    byName.get(P2_SET)!.map((e) => e.address),
    ['10.244.0.10', '10.244.0.11'],
  );
  t.regex(byName.get(P2_SET)![0]!.expires ?? '', /^2h59m/);
  t.is([...byName.values()].filter((e) => e.length === 0).length, 2);

  const lists = Object.fromEntries([...byName.keys()].sort().map((name, i) => [`p${i + 1}`, `${TABLE} ${name}`]));
  const traffic = tcp('pc', '10.109.59.245', 80, { connections: 2 }).traffic;
  const obs = new Observations();
  for (const [name, entries] of byName)
    obs.set({ type: 'recent', node: 'node', list: `${TABLE} ${name}` }, { entries });
  const answered = (by: string): TcpOutcome[] =>
    [0, 1].map(() => ({ result: 'connects', answeredBy: by, clientSeen: '10.244.0.10', output: '' }) as TcpOutcome);
  obs.set({ type: 'traffic', traffic }, { traffic, display: '', tcp: answered('p2') });
  t.is(judged(recent('node', lists).has('10.244.0.10', { chosenBy: traffic }), obs).status, 'met');
  t.is(judged(recent('node', lists).lacks('10.244.0.11'), obs).status, 'not-met');
  t.is(judged(recent('node', lists).empty(), obs).status, 'not-met');
  const other = new Observations();
  for (const [name, entries] of byName)
    other.set({ type: 'recent', node: 'node', list: `${TABLE} ${name}` }, { entries });
  other.set({ type: 'traffic', traffic }, { traffic, display: '', tcp: answered('p1') });
  t.is(
    judged(recent('node', lists).has('10.244.0.10', { chosenBy: traffic }), other).status,
    'not-met',
    "p1 answered, but p2's set holds pc",
  );
});
