// Checks judged against the baseline taken when they start, on recorded readings: conntrack counts
// only the entries new since the baseline, xt_recent has() only entries the step wrote, counter
// hints name the rule that counted instead; a step's verdict is strict for run and lenient
// ("met, differs from the reference") for check. No root, no kernel.
import test from 'ava';
import { conntrack, ebrule, recent, rule } from '../../src/lab/define.ts';
import { evaluate, stepStatus } from '../../src/check/evaluate.ts';
import { Observations } from '../../src/check/observations.ts';
import { parseConntrack } from '../../src/observe/parse-conntrack.ts';
import { parseIptablesSave } from '../../src/observe/parse-iptables-save.ts';
import { parseXtRecent } from '../../src/observe/parse-xt-recent.ts';
import type { CheckReport } from '../../src/report/types.ts';

const entry = (sport: number, id: number) =>
  `tcp      6 119 TIME_WAIT src=10.244.0.10 dst=10.98.51.150 sport=${sport} dport=80 src=10.244.0.3 dst=10.244.0.10 sport=80 dport=${sport} [ASSURED] mark=0 use=1 id=${id}`;

test('conntrack: entries of earlier traffic (in the baseline, by id) are left out of the count', (t) => {
  const before = parseConntrack([entry(40001, 11), entry(40002, 12)].join('\n'));
  const after = parseConntrack([entry(40001, 11), entry(40002, 12), entry(40003, 13)].join('\n'));
  t.is(after[2]!.entryId, 13);
  const obs = new Observations();
  obs.set({ type: 'conntrack', node: 'node' }, { before, after });
  const one = conntrack('node', { proto: 'tcp', orig: { dst: '10.98.51.150' } }).count(1);
  const r = evaluate(one, obs);
  t.is(r.status, 'met');
  t.is((r.observed as { earlier: number }).earlier, 2);
  t.is(
    evaluate(conntrack('node', { proto: 'tcp' }).count(3), obs).status,
    'not-met',
    "three entries exist, but only one is the check's own",
  );
  // No baseline (a recorded reading): every entry counts.
  const plain = new Observations();
  plain.set({ type: 'conntrack', node: 'node' }, { after });
  t.is(evaluate(conntrack('node', { proto: 'tcp' }).count(3), plain).status, 'met');
});

test('recent: has() needs an entry the step wrote; an entry left from before does not stand in; empty() judges the list as it is', (t) => {
  const old = 'src=10.244.0.10 ttl: 64 last_seen: 4296620656 oldest_pkt: 1 4296620656';
  const obs = new Observations();
  obs.set({ type: 'recent', node: 'node', list: 'L' }, { entries: parseXtRecent(old), before: parseXtRecent(old) });
  const has = evaluate(recent('node', 'L').has('10.244.0.10'), obs);
  t.is(has.status, 'not-met');
  t.regex(has.hint ?? '', /list L on node holds 10\.244\.0\.10 \(written during the check: none\)/);
  t.is(evaluate(recent('node', 'L').empty(), obs).status, 'not-met');
  const refreshed = new Observations();
  refreshed.set(
    { type: 'recent', node: 'node', list: 'L' },
    {
      entries: parseXtRecent('src=10.244.0.10 ttl: 64 last_seen: 4296620999 oldest_pkt: 2 4296620656, 4296620999'),
      before: parseXtRecent(old),
    },
  );
  t.is(evaluate(recent('node', 'L').has('10.244.0.10'), refreshed).status, 'met');
});

test('counter: the reference rule is about the reference; its hint names the rule that counted in its place', (t) => {
  const save = (n: number) =>
    parseIptablesSave(
      `*nat\n:POSTROUTING ACCEPT [${n}:${n * 84}]\n[${n}:${n * 84}] -A POSTROUTING -s 10.55.66.0/24 ! -o hwchiu0 -j MASQUERADE\nCOMMIT\n`,
    );
  const obs = new Observations();
  obs.set({ type: 'counters', node: 'host' }, { before: save(0), after: save(1) });
  const r = evaluate(
    rule('host', 'nat POSTROUTING', '-s 10.55.66.2/32 -o eth0 -j MASQUERADE').delta({ packets: 1 }),
    obs,
  );
  t.is(r.status, 'not-met');
  t.is(r.about, 'reference');
  t.regex(
    r.hint!,
    /the reference rule "-s 10\.55\.66\.2\/32 -o eth0 -j MASQUERADE" is not in nat POSTROUTING on host; in its place, -A POSTROUTING -s 10\.55\.66\.0\/24 ! -o hwchiu0 -j MASQUERADE counted 1 packet, 84 bytes/,
  );
  // A lab may say a check is about behaviour, and add its own hint after the evidence.
  const own = evaluate(
    {
      ...rule('host', 'nat POSTROUTING', '-s 10.55.66.2/32').delta({ packets: 1 }),
      about: 'behaviour',
      hint: 'MASQUERADE belongs in nat POSTROUTING',
    },
    obs,
  );
  t.is(own.about, 'behaviour');
  t.regex(own.hint!, /counted 1 packet.* — MASQUERADE belongs in nat POSTROUTING$/);
});

test('ebtables counters: deltas of ebtables-save -c, the same every time', (t) => {
  const save = (n: number) =>
    parseIptablesSave(
      `*nat\n:PREROUTING ACCEPT\n[${n}:${n * 98}] -A PREROUTING -p IPv4 --ip-src 10.55.66.0/24 --ip-dst 10.55.66.0/24 -j CONTINUE\nCOMMIT\n`,
    );
  const c = ebrule('host', 'nat PREROUTING', '-p IPv4 --ip-src 10.55.66.0/24 --ip-dst 10.55.66.0/24').delta({
    packets: 2,
  });
  for (const [b, a] of [
    [0, 2],
    [2, 4],
    [7, 9],
  ] as const) {
    const obs = new Observations();
    obs.set({ type: 'counters', node: 'host', family: 'bridge' }, { before: save(b), after: save(a) });
    t.is(evaluate(c, obs).status, 'met', `${b} → ${a}`);
  }
});

test('a step\'s verdict: strict for run; for check, behaviour met and only reference checks not met is "differs"', (t) => {
  const c = (about: 'behaviour' | 'reference', status: CheckReport['status']): CheckReport => ({
    description: '',
    kind: 'x',
    about,
    status,
    expected: null,
    observed: null,
  });
  t.is(stepStatus([c('behaviour', 'met'), c('reference', 'met')], false), 'passed');
  t.is(stepStatus([c('behaviour', 'met'), c('reference', 'not-met')], false), 'failed');
  t.is(stepStatus([c('behaviour', 'met'), c('reference', 'not-met')], true), 'differs');
  t.is(stepStatus([c('behaviour', 'not-met'), c('reference', 'not-met')], true), 'failed');
  t.is(stepStatus([c('reference', 'not-met')], true), 'failed', 'no behaviour check: nothing shows the answer works');
});
