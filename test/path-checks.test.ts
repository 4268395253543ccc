// Path checks: the path a packet took through a node's tables and chains, traced while a step's
// traffic ran, compared with the lab's expectation. Real lab runs through the CLI (labs 01-03),
// the tracer leaving nothing behind, `nflab trace` on a lab left up, and a wrong expectation
// reported with both paths. The pure parts (hop matching, validation) are tested on plain data.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { nflab, REPO, rootState, runNamespaces, jsonOf } from './helpers/system.ts';
import { privateJournal } from './helpers/private-journal.ts';
import type { CheckReport, RunReport } from '../src/report/types.ts';
import type { Check, Lab } from '../src/lab/types.ts';
import { validateLab } from '../src/resolve/validate-lab.ts';
import { LabError } from '../src/errors.ts';
import { hopMatches, judgePath, pathFollows } from '../src/check/path.ts';
import { commonFilter, hopsFor } from '../src/engine/path-traces.ts';
import { path } from '../src/lab/define.ts';
import { parseTraceLines, type TraceHop } from '../src/observe/parse-trace.ts';

type PathObserved = { packets: string[][]; rules?: string[]; problems?: string[] };
type PathCheck = Extract<Check, { kind: 'path' }>;

const pathChecks = (report: RunReport, lab: string, step: number): CheckReport[] =>
  report.labs.find((l) => l.id === lab)!.steps[step - 1]!.checks.filter((c) => c.kind === 'path');

/** Whatever nft sees in a namespace (system nft: node_modules/.bin holds @vercel/nft's `nft`). */
function nftRuleset(ns: string): string {
  // stderr: nft warns that iptables-nft manages the tables; that is not the ruleset.
  return execFileSync(
    'ip',
    ['netns', 'exec', ns, 'env', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'nft', 'list', 'ruleset'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
}

function assertNoTracer(t: ExecutionContext, runId: string, when: string) {
  const namespaces = runNamespaces(runId);
  t.true(namespaces.length >= 3, `the run's namespaces exist (${namespaces.join(', ')})`);
  for (const ns of namespaces) {
    const ruleset = nftRuleset(ns);
    t.notRegex(ruleset, /nflab_trace/, `${when}: no tracer table in ${ns}`);
    t.notRegex(ruleset, /nftrace/, `${when}: no rule sets nftrace in ${ns}`);
  }
}

// ---------------------------------------------------------------- real runs of labs 01-03

test('labs 01-03: the traced paths of a dropped, a masqueraded and a DNATed packet', async (t) => {
  const r = await nflab(['run', '01', '02', '03', '--json']);
  t.is(r.code, 0, r.stderr + r.stdout.slice(0, 3000));
  const report = jsonOf(r) as RunReport;
  t.true(report.labs.every((l) => l.status === 'passed'));

  // 01 step 1: the bridged echo request meets one chain, and its policy drops it.
  const [dropped] = pathChecks(report, '01', 1);
  t.is(dropped!.status, 'met');
  t.deepEqual((dropped!.observed as PathObserved).packets, [['filter FORWARD: policy DROP']]);

  // 02 step 4: FORWARD, then MASQUERADE in nat POSTROUTING; the second request meets no nat chain.
  const [first, second, replies] = pathChecks(report, '02', 4);
  const masqueraded = (first!.observed as PathObserved).packets;
  t.deepEqual(masqueraded, [
    ['filter FORWARD: policy ACCEPT', 'nat POSTROUTING: MASQUERADE'],
    ['filter FORWARD: policy ACCEPT'],
  ]);
  t.is(second!.status, 'met');
  t.deepEqual(
    (replies!.observed as PathObserved).packets,
    [['filter FORWARD: policy ACCEPT'], ['filter FORWARD: policy ACCEPT']],
    'the two echo replies',
  );

  // 03 step 4: DNAT in nat PREROUTING for the SYN, with the rule that matched; later packets skip it.
  const [syn, next] = pathChecks(report, '03', 4);
  const dnat = syn!.observed as PathObserved;
  t.deepEqual(dnat.packets[0], ['nat PREROUTING: DNAT', 'filter FORWARD: ACCEPT', 'nat POSTROUTING: policy ACCEPT']);
  t.true(dnat.packets.length >= 3, 'every packet from the client was traced');
  for (const later of dnat.packets.slice(1)) t.deepEqual(later, ['filter FORWARD: ACCEPT']);
  t.deepEqual(dnat.rules, [
    '-A PREROUTING -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000',
    '-A FORWARD -i eth1 -o hwchiu0 -j ACCEPT',
  ]);
  t.is(next!.status, 'met');
});

test('tracing is on only during the step: no tracer table or rule remains in any namespace, after nflab up and after nflab trace', async (t) => {
  const before = rootState();
  const up = await nflab(['up', '03', '--step', '4', '--json', '--again']);
  t.is(up.code, 0, up.stderr);
  const runId = (jsonOf(up) as { runId: string }).runId;
  t.teardown(async () => {
    await nflab(['down', runId]);
  });
  const step4 = (jsonOf(up) as RunReport).labs[0]!.steps[3]!;
  t.true(
    step4.checks.filter((c) => c.kind === 'path').every((c) => c.status === 'met'),
    'the path checks ran (and traced) in step 4',
  );
  assertNoTracer(t, runId, 'after nflab up');

  // By run id: another test may have lab 03 up at the same time.
  const traced = await nflab(['trace', runId, '--step', '4', '--json']);
  t.is(traced.code, 0, traced.stderr);
  assertNoTracer(t, runId, 'after nflab trace');

  const down = await nflab(['down', runId]);
  t.is(down.code, 0);
  t.deepEqual(runNamespaces(runId), []);
  t.deepEqual(rootState(), before, 'the root namespace was never touched');
});

test('nflab trace shows each packet hook by hook, with the rule and the verdict, and --json the same paths', async (t) => {
  const up = await nflab(['up', '01', '--step', '1', '--json', '--again']);
  t.is(up.code, 0, up.stderr);
  const runId = (jsonOf(up) as { runId: string }).runId;
  t.teardown(async () => {
    await nflab(['down', runId]);
  });

  const text = await nflab(['trace', runId, '--step', '1']);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /\$ ip netns exec c1 ping -c 1 .* 10\.55\.66\.3\n\s+→ 0\/1 replies/);
  t.regex(text.stdout, /^host: 1 packet, 1 path {2}\(icmp packets from 10\.55\.66\.2 to 10\.55\.66\.3\)$/m);
  t.regex(
    text.stdout,
    /path 1 {2}icmp 10\.55\.66\.2 → 10\.55\.66\.3 {2}\(packet 1\)\n {4}FORWARD\n {4}FORWARD +filter +policy DROP +in hwchiu0 \(port veth0\), out hwchiu0 \(port veth1\)/,
  );
  t.regex(
    text.stdout,
    /✔ on host, the first icmp packet from 10\.55\.66\.2 to 10\.55\.66\.3 goes exactly through filter FORWARD: policy DROP/,
  );

  const json = await nflab(['trace', runId, '--step', '1', '--json']);
  t.is(json.code, 0);
  const out = jsonOf(json) as {
    runId: string;
    traces: {
      node: string;
      packets: number;
      paths: { count: number; path: string[]; hooks: string[]; hops: TraceHop[] }[];
    }[];
  };
  t.is(out.runId, runId);
  t.deepEqual(
    out.traces.map((x) => x.node),
    ['host'],
  );
  t.is(out.traces[0]!.packets, 1);
  const [path] = out.traces[0]!.paths;
  t.is(path!.count, 1);
  t.deepEqual(path!.path, ['filter FORWARD: policy DROP']);
  t.deepEqual(path!.hooks, ['FORWARD']);
  t.like(path!.hops[0], {
    table: 'filter',
    chain: 'FORWARD',
    policy: true,
    verdict: 'DROP',
    physin: 'veth0',
    physout: 'veth1',
    src: '10.55.66.2',
    dst: '10.55.66.3',
    proto: 'icmp',
  });
});

test('nflab trace on a lab that is not up exits 2 and says how to bring it up', async (t) => {
  // A journal of this test's own: someone else's lab 02 may be up on this machine.
  const journal = privateJournal('trace-not-up');
  t.teardown(() => journal.remove());
  const r = await journal.nflab(['trace', '02', '--step', '4']);
  t.is(r.code, 2, r.stdout + r.stderr);
  t.regex(r.stderr, /no lab "02" is up .*nflab up 02/);
});

test('a lab whose expected path is wrong exits 1 and shows the expected and the observed path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-path-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'wrong-path.ts');
  const source = readFileSync(join(REPO, 'labs/01-bridge-forward-drop.ts'), 'utf8');
  // However the formatter wraps the call.
  const wrong = source.replace(
    /\.through\(\['filter FORWARD: policy DROP'\],\s*\{\s*exact: true,?\s*\}\)/,
    ".through(['nat PREROUTING: DNAT', 'filter FORWARD: ACCEPT'])",
  );
  t.not(wrong, source, 'the lab file still has the expectation this test changes');
  writeFileSync(file, wrong);

  const terminal = await nflab(['run', file]);
  t.is(terminal.code, 1, terminal.stderr);
  t.regex(
    terminal.stdout,
    /✘ on host, the first icmp packet from 10\.55\.66\.2 to 10\.55\.66\.3 goes through nat PREROUTING: DNAT → filter FORWARD: ACCEPT/,
  );
  t.regex(terminal.stdout, /expected:\n\s+packet: first\n\s+through: nat PREROUTING: DNAT, filter FORWARD: ACCEPT\n/);
  t.regex(terminal.stdout, /observed:\n\s+packets:\n\s+packet 1: filter FORWARD: policy DROP\n/);

  const json = await nflab(['run', file, '--json']);
  t.is(json.code, 1);
  const [check] = pathChecks(jsonOf(json) as RunReport, '01', 1);
  t.is(check!.status, 'not-met');
  t.deepEqual(check!.expected, { packet: 'first', through: ['nat PREROUTING: DNAT', 'filter FORWARD: ACCEPT'] });
  t.deepEqual(check!.observed, { packets: [['filter FORWARD: policy DROP']] });
  t.regex(check!.reason!, /packet 1 went filter FORWARD: policy DROP, not through nat PREROUTING: DNAT/);
});

// ---------------------------------------------------------------- the pure parts

const hop = (table: string, chain: string, extra: Partial<TraceHop> = {}): TraceHop => ({
  packetId: 'p1',
  family: 'ip',
  table,
  chain,
  verdict: 'ACCEPT',
  ...extra,
});

test('hop patterns: "<table> <CHAIN>: <target>" is one hop, "<table> <CHAIN>" any hop of the chain; order matters, gaps are allowed unless exact', (t) => {
  t.true(hopMatches('nat PREROUTING: DNAT', 'nat PREROUTING: DNAT'));
  t.false(hopMatches('nat PREROUTING: DNAT', 'nat PREROUTING: policy ACCEPT'));
  t.true(hopMatches('nat PREROUTING', 'nat PREROUTING: policy ACCEPT'));
  t.false(hopMatches('nat PREROUTING', 'bridge nat PREROUTING: CONTINUE'));
  t.false(hopMatches('filter FORWARD', 'filter FORWARDING: ACCEPT'));
  const observed = ['nat PREROUTING: DNAT', 'filter FORWARD: ACCEPT', 'nat POSTROUTING: policy ACCEPT'];
  t.true(pathFollows(observed, ['nat PREROUTING: DNAT', 'nat POSTROUTING']));
  t.false(pathFollows(observed, ['nat POSTROUTING', 'nat PREROUTING: DNAT']), 'order');
  t.false(pathFollows(observed, ['nat PREROUTING: DNAT', 'nat POSTROUTING'], true), 'exact needs every hop');
  t.true(pathFollows(observed, ['nat PREROUTING', 'filter FORWARD', 'nat POSTROUTING'], true));
});

test('judging: first, n-th and each packet, notThrough and the matched rule', (t) => {
  const syn = [
    hop('nat', 'PREROUTING', {
      rule: '-A PREROUTING -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000',
    }),
    hop('filter', 'FORWARD', { rule: '-A FORWARD -i eth1 -o hwchiu0 -j ACCEPT' }),
  ];
  const later = [hop('filter', 'FORWARD', { packetId: 'p2', rule: '-A FORWARD -i eth1 -o hwchiu0 -j ACCEPT' })];
  const trace = { hops: [...syn, ...later], problems: [] };
  const check = (extra: Partial<PathCheck>): PathCheck => ({
    ...(path('host', { proto: 'tcp' }).through(['nat PREROUTING: DNAT']) as PathCheck),
    ...extra,
  });
  t.true(judgePath(check({}), trace).met);
  t.true(judgePath(check({ rule: '--dport 2345 -j DNAT --to-destination 10.55.66.2:8000' }), trace).met);
  t.false(judgePath(check({ rule: '-j DNAT --to-destination 10.55.66.3:8000' }), trace).met, 'another DNAT target');
  const second = judgePath(check({ packet: 2 }), trace);
  t.false(second.met);
  t.regex(second.reason!, /packet 2 went filter FORWARD: ACCEPT, not through nat PREROUTING: DNAT/);
  t.true(judgePath(path('host').notThrough(['nat PREROUTING'], { packet: 2 }) as PathCheck, trace).met);
  t.false(judgePath(path('host').notThrough(['nat PREROUTING'], { packet: 'each' }) as PathCheck, trace).met);
  const third = judgePath(check({ packet: 3 }), trace);
  t.false(third.met);
  t.is(third.reason, 'only 2 packet(s) were traced');
  const none = judgePath(check({}), { hops: [], problems: ['xtables-monitor ended early: no message'] });
  t.false(none.met, 'nothing traced is never a pass');
  t.deepEqual(none.observed, { packets: [], problems: ['xtables-monitor ended early: no message'] });
  t.false(judgePath(check({}), { error: 'tracing on host did not start: no nft' }).met);
});

test("kernel 6.1: a return event without a rule (explicit -j RETURN or a user chain's end, it cannot tell) may be left out of an exact path, or named", (t) => {
  // Recorded in the VM (kernel 6.1): nat PREROUTING jumps to a KUBE-MARK-DROP that falls off its end;
  // nat INPUT jumps to a KUBE-POSTROUTING whose first rule is `-m mark ! --mark 0x4000/0x4000 -j RETURN`.
  const text = readFileSync(new URL('fixtures/trace-kernel61-user-chain-return.txt', import.meta.url), 'utf8');
  const trace = { hops: parseTraceLines(text), problems: [] };
  const exact = (through: string[]) => judgePath(path('host').through(through, { exact: true }) as PathCheck, trace);
  const base = [
    'raw PREROUTING: TRACE',
    'raw PREROUTING: policy ACCEPT',
    'nat PREROUTING: KUBE-MARK-DROP',
    'nat KUBE-MARK-DROP: MARK',
    'nat PREROUTING: policy ACCEPT',
    'filter INPUT: policy ACCEPT',
    'nat INPUT: KUBE-POSTROUTING',
  ];
  t.true(
    exact([...base, 'nat INPUT: policy ACCEPT']).met,
    'both returns left out, as a newer kernel reports the implicit one',
  );
  t.true(
    exact([...base, 'nat KUBE-POSTROUTING: RETURN', 'nat INPUT: policy ACCEPT']).met,
    'the explicit RETURN named, as a newer kernel reports it',
  );
  t.false(
    exact([...base.filter((h) => h !== 'nat KUBE-MARK-DROP: MARK'), 'nat INPUT: policy ACCEPT']).met,
    'a rule hop is never optional',
  );
  t.true(
    judgePath(path('host').through(['nat INPUT: KUBE-POSTROUTING', 'nat KUBE-POSTROUTING: RETURN']) as PathCheck, trace)
      .met,
  );
});

test('one tracer per node: it marks what every check asks for, and each check gets the packets it asked for by their entering header', (t) => {
  t.deepEqual(
    commonFilter([
      { proto: 'tcp', src: '10.0.2.2', dport: 5566 },
      { proto: 'tcp', src: '10.55.66.2', sport: 80 },
    ]),
    { proto: 'tcp' },
  );
  t.deepEqual(commonFilter([{ proto: 'icmp', src: '10.55.66.2' }]), { proto: 'icmp', src: '10.55.66.2' });
  t.deepEqual(commonFilter([{ proto: 'icmp' }, { proto: 'tcp' }]), {});
  // The tracer's own first hop carries the header the packet entered with (before DNAT).
  const tracer = (packetId: string, src: string, dst: string, dport?: number): TraceHop => ({
    packetId,
    family: 'ip',
    table: 'nflab_trace_abc123',
    chain: 'mark_pre',
    verdict: 'CONTINUE',
    proto: 'tcp',
    src,
    dst,
    ...(dport ? { dport } : {}),
  });
  const hops: TraceHop[] = [
    tracer('a', '10.0.2.2', '10.0.2.15', 5566),
    hop('nat', 'PREROUTING', { packetId: 'a' }),
    tracer('b', '10.0.2.2', '10.0.2.15', 5566),
    hop('filter', 'FORWARD', { packetId: 'b', dst: '10.55.66.2', dport: 80 }),
    tracer('c', '10.55.66.2', '10.0.2.2'),
    hop('filter', 'FORWARD', { packetId: 'c' }),
  ];
  const toPort = hopsFor(hops, { proto: 'tcp', dst: '10.0.2.15', dport: 5566 });
  t.deepEqual(
    toPort.map((h) => `${h.packetId} ${h.table} ${h.chain}`),
    ['a nat PREROUTING', 'b filter FORWARD'],
    'packet b is judged by its entering header, not the DNATed one',
  );
  t.deepEqual(
    hopsFor(hops, { src: '10.55.66.0/24' }).map((h) => h.packetId),
    ['c'],
  );
});

const withCheck = (check: object): Lab => ({
  id: 't1',
  title: 'test',
  summary: 'a two-node lab',
  source: { title: 'none' },
  topology: {
    nodes: { host: { role: 'host' }, c1: { role: 'container' } },
    bridges: { br0: { node: 'host', addresses: ['10.1.0.1/24'] } },
    links: [
      {
        a: { node: 'c1', name: 'eth0', addresses: ['10.1.0.2/24'] },
        b: { node: 'host', name: 'veth0', bridge: 'br0' },
      },
    ],
  },
  steps: [{ title: 'ping', send: [{ kind: 'ping', from: 'c1', to: '10.1.0.1' }], expect: [check as never] }],
});

function rejects(t: ExecutionContext, check: object, message: RegExp) {
  const err = t.throws(() => validateLab(withCheck(check)), { instanceOf: LabError });
  t.regex(err!.message, message);
}

test('validation: a path check names a node, a well-formed filter and well-formed hops', (t) => {
  t.notThrows(() =>
    validateLab(
      withCheck(
        path('host', { proto: 'icmp', src: '10.1.0.0/24' }).through(
          ['filter FORWARD: policy DROP', 'bridge filter FORWARD', 'nat KUBE-SVC-ABC.1_x: KUBE-SEP-XYZ'],
          { packet: 2, notThrough: ['nat POSTROUTING'] },
        ),
      ),
    ),
  );
  rejects(
    t,
    path('h0st').through(['filter FORWARD']),
    /expect\[0\]: path check: field "node" names unknown node "h0st"/,
  );
  rejects(
    t,
    path('host', { src: '10.1.0.300' }).through(['filter FORWARD']),
    /path check: filter\.src must be an IPv4 address or CIDR \(got "10\.1\.0\.300"\)/,
  );
  rejects(
    t,
    path('host', { dst: '10.1.0.0/40' }).through(['filter FORWARD']),
    /filter\.dst must be an IPv4 address or CIDR/,
  );
  rejects(t, path('host', { proto: 'icmp', dport: 80 }).through(['filter FORWARD']), /an icmp filter has no ports/);
  rejects(
    t,
    path('host', { proto: 'sctp' as never }).through(['filter FORWARD']),
    /filter\.proto must be icmp, tcp or udp/,
  );
  rejects(
    t,
    path('host').through(['filter FORWARD policy DROP']),
    /hop "filter FORWARD policy DROP" in "through" is malformed/,
  );
  rejects(t, path('host').through(['FORWARD: DROP']), /hop "FORWARD: DROP" in "through" is malformed/);
  rejects(
    t,
    path('host').notThrough(['nat PREROUTING:DNAT']),
    /hop "nat PREROUTING:DNAT" in "notThrough" is malformed/,
  );
  rejects(t, path('host').through([]), /field "through" must be a non-empty array of hops/);
  rejects(
    t,
    path('host').through(['filter FORWARD'], { packet: 0 }),
    /field "packet" must be 'first', 'each' or a packet number from 1/,
  );
  rejects(t, { kind: 'path', node: 'host', filter: {} }, /give "through", "notThrough" or "rule"/);
});
