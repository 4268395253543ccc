// The Kubernetes Service labs (04-08) run for real through the CLI; assertions are on what the
// kernel did (counts per backend, the client address a backend saw, conntrack tuples, xt_recent
// lists). Then: wrong expectations about spread and stickiness exit 1 and show what was observed;
// the new check fields are validated; every rule the renderer writes is found by the counter check.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nflab, runNamespaces, jsonOf } from './helpers/system.ts';
import type { CheckReport, LabReport, RunReport } from '../src/report/types.ts';
import type { Check, Lab, TcpTraffic } from '../src/lab/types.ts';
import { validateLab } from '../src/resolve/validate-lab.ts';
import { LabError } from '../src/errors.ts';
import { podTopology } from '../src/k8s/pod-topology.ts';
import { kubeProxyRules, kubeRules, ruleText } from '../src/k8s/lab-rules.ts';
import { renderRulesAsSaved } from '../src/k8s/render-iptables.ts';
import type { ProxyOptions, Service } from '../src/k8s/service.ts';
import { shareRange } from '../src/check/distribution.ts';
import { counterDelta } from '../src/check/compare.ts';
import { parseIptablesSave } from '../src/observe/parse-iptables-save.ts';

async function runLabJson(t: import('ava').ExecutionContext, ref: string, expectedCode = 0): Promise<LabReport> {
  const r = await nflab(['run', ref, '--json']);
  const lab = (jsonOf(r) as RunReport).labs[0]!;
  const notMet = lab.steps.flatMap((s, i) =>
    s.checks
      .filter((c) => c.status === 'not-met')
      .map(
        (c) =>
          `step ${i + 1}: ${c.description}\n  expected ${JSON.stringify(c.expected)}\n  observed ${JSON.stringify(c.observed)}`,
      ),
  );
  t.is(r.code, expectedCode, [r.stderr, lab.reason ?? '', ...notMet].join('\n'));
  t.deepEqual(runNamespaces(lab.runId), [], 'the run left no namespace behind');
  return lab;
}

function check(lab: LabReport, step: number, pick: string | ((c: CheckReport) => boolean)): CheckReport {
  const found = lab.steps[step - 1]?.checks.find((c) =>
    typeof pick === 'string' ? c.description.includes(pick) : pick(c),
  );
  if (!found) throw new Error(`no check ${String(pick)} in lab ${lab.id} step ${step}`);
  return found;
}

const BACKENDS = ['p1', 'p2', 'p3'];
const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

test.serial(
  'lab 04 ClusterIP: ~1/3 per backend, counters equal the counts, pc unmasqueraded, node masqueraded, br_netfilter off hangs',
  async (t) => {
    const lab = await runLabJson(t, '04');
    t.is(lab.status, 'passed');
    const spread = check(lab, 2, (c) => c.kind === 'distribution');
    const counts = (spread.observed as { counts: Record<string, number> }).counts;
    t.deepEqual(Object.keys(counts).sort(), BACKENDS);
    t.is(sum(counts), 150);
    for (const b of BACKENDS) t.true(counts[b]! >= 27 && counts[b]! <= 73, `${b}: ${counts[b]}`);
    t.deepEqual((spread.expected as { counts: unknown }).counts, {
      p1: { min: 27, max: 73 },
      p2: { min: 27, max: 73 },
      p3: { min: 27, max: 73 },
    });
    t.regex((spread.expected as { tolerance: string }).tolerance, /N·p ± 4·sqrt\(N·p\(1−p\)\)/);

    const seen = check(lab, 2, 'every backend sees pc').observed as {
      clientSeen: Record<string, number>;
      answeredBy: Record<string, number>;
      error?: string;
    };
    t.deepEqual(seen.clientSeen, { '10.244.0.10': 150 });
    t.is(seen.error, undefined, 'answers are not reported as errors');
    // Each KUBE-SVC rule counted exactly the connections its backend answered.
    for (const [i, b] of BACKENDS.entries()) {
      const rule = check(
        lab,
        2,
        (c) => c.kind === 'counter' && (c.expected as { as?: string }).as?.endsWith(`answered by ${b}`) === true,
      );
      t.is((rule.observed as { packets: number }).packets, counts[b], `rule ${i + 1}`);
    }
    const tuples = check(lab, 2, 'conntrack: 150 entries').observed as { count: number; entries: string[] };
    t.is(tuples.count, 150);
    for (const line of tuples.entries)
      t.regex(
        line,
        /src=10\.244\.0\.10 dst=10\.98\.51\.150 sport=(\d+) dport=80 src=10\.244\.0\.[234] dst=10\.244\.0\.10 sport=80 dport=\1/,
      );

    t.deepEqual((check(lab, 3, 'the backend sees the node').observed as { clientSeen: unknown }).clientSeen, {
      '10.244.0.1': 1,
    });
    t.regex(
      (check(lab, 3, 'both DNAT and SNAT').observed as { entries: string[] }).entries[0]!,
      /src=172\.17\.8\.100 dst=10\.98\.51\.150 .* src=10\.244\.0\.[234] dst=10\.244\.0\.1 sport=80/,
    );
    t.deepEqual((check(lab, 4, (c) => c.kind === 'tcp').observed as { outcomes: unknown }).outcomes, { timeout: 3 });
    const synAcks = check(lab, 4, 'pc receives SYN-ACKs').observed as { packets: string[] };
    t.true(
      synAcks.packets.every((p) => /IP 10\.244\.0\.[234]\.80 > 10\.244\.0\.10\.\d+: Flags \[S\.\]/.test(p)),
      synAcks.packets.join('\n'),
    );
  },
);

test.serial(
  'lab 05 NodePort: masqueraded to 10.244.0.1 with DNAT+SNAT tuples; without the mark FORWARD DROP drops, FORWARD ACCEPT keeps the client',
  async (t) => {
    const lab = await runLabJson(t, '05');
    t.is(lab.status, 'passed');
    t.deepEqual((check(lab, 1, (c) => c.kind === 'tcp').observed as { outcomes: unknown }).outcomes, { refused: 1 });
    const counts = (check(lab, 2, (c) => c.kind === 'distribution').observed as { counts: Record<string, number> })
      .counts;
    t.is(sum(counts), 30);
    t.deepEqual((check(lab, 2, 'every backend sees the client').observed as { clientSeen: unknown }).clientSeen, {
      '10.244.0.1': 30,
    });
    t.deepEqual(check(lab, 2, 'KUBE-POSTROUTING masquerades').observed, {
      packets: 30,
      bytes: 1800,
      rule: '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -m mark --mark 0x4000/0x4000 -j MASQUERADE',
    });
    const tuples = check(lab, 2, 'conntrack: DNAT').observed as { count: number; entries: string[] };
    t.is(tuples.count, 30);
    for (const line of tuples.entries)
      t.regex(
        line,
        /src=172\.17\.8\.1 dst=172\.17\.8\.100 sport=(\d+) dport=30136 src=10\.244\.0\.[234] dst=10\.244\.0\.1 sport=80 dport=\1/,
      );
    t.true((check(lab, 4, 'FORWARD DROP policy drops').observed as { packets: number }).packets >= 3);
    t.deepEqual((check(lab, 5, (c) => c.kind === 'tcp').observed as { clientSeen: unknown }).clientSeen, {
      '172.17.8.1': 3,
    });
    t.regex(
      (check(lab, 5, 'only DNAT').observed as { entries: string[] }).entries[0]!,
      /src=172\.17\.8\.1 dst=172\.17\.8\.100 .* dport=30136 src=10\.244\.0\.[234] dst=172\.17\.8\.1 sport=80/,
    );
  },
);

test.serial(
  'lab 06 SessionAffinity: one backend per client, its list holds the client, 38 repeat and 2 random choices',
  async (t) => {
    const lab = await runLabJson(t, '06');
    t.is(lab.status, 'passed');
    const pcBackend = check(lab, 2, (c) => c.kind === 'sticky' && c.description.includes('from pc')).observed as {
      answeredBy: Record<string, number>;
    };
    t.is(Object.keys(pcBackend.answeredBy).length, 1);
    t.deepEqual(Object.values(pcBackend.answeredBy), [20]);
    const lists = check(lab, 2, (c) => c.kind === 'recent' && c.description.includes('10.244.0.10')).observed as {
      lists: Record<string, string[]>;
      heldBy: string[];
    };
    t.is(Object.keys(lists.lists).length, 3);
    t.deepEqual(
      lists.lists[lists.heldBy[0]!]!.filter((e) => e.startsWith('10.244.0.10 ')),
      ['10.244.0.10 (20 hits)'],
    );
    t.is((check(lab, 2, 'rcheck rules count').observed as { packets: number }).packets, 38);
    t.is((check(lab, 2, 'random choice is made twice').observed as { packets: number }).packets, 2);
    t.deepEqual(
      Object.values((check(lab, 3, (c) => c.kind === 'recent').observed as { lists: Record<string, string[]> }).lists),
      [[], [], []],
    );
    t.is(
      sum((check(lab, 5, (c) => c.kind === 'distribution').observed as { counts: Record<string, number> }).counts),
      150,
    );
  },
);

test.serial(
  'lab 07 hairpin: fails with hairpin off, p1 answers itself as 10.244.0.1 with hairpin on, fails without the SEP masquerade rule',
  async (t) => {
    const lab = await runLabJson(t, '07');
    t.is(lab.status, 'passed');
    t.deepEqual((check(lab, 1, (c) => c.kind === 'tcp').observed as { outcomes: unknown }).outcomes, { timeout: 1 });
    const fixed = check(lab, 2, (c) => c.kind === 'tcp').observed as { answeredBy: unknown; clientSeen: unknown };
    t.deepEqual(fixed, { outcomes: { connects: 1 }, answeredBy: { p1: 1 }, clientSeen: { '10.244.0.1': 1 } });
    t.regex(
      (check(lab, 2, 'hairpinned back').observed as { packets: string[] }).packets[0]!,
      /IP 10\.244\.0\.1\.\d+ > 10\.244\.0\.2\.80: Flags \[S\]/,
    );
    t.regex(
      (check(lab, 2, 'conntrack: DNAT and SNAT').observed as { entries: string[] }).entries[0]!,
      /src=10\.244\.0\.2 dst=10\.98\.51\.150 sport=(\d+) dport=80 src=10\.244\.0\.2 dst=10\.244\.0\.1 sport=80 dport=\1/,
    );
    t.regex(
      (check(lab, 3, "from p1's own address").observed as { packets: string[] }).packets[0]!,
      /IP 10\.244\.0\.2\.\d+ > 10\.244\.0\.2\.80: Flags \[S\]/,
    );
  },
);

test.serial('lab 08 ClusterIP ping: 2 sent, 0 received, both requests leak out of eth0; port 80 works', async (t) => {
  const lab = await runLabJson(t, '08');
  t.is(lab.status, 'passed');
  t.like(check(lab, 1, (c) => c.kind === 'ping').observed as object, { outcome: 'fails', transmitted: 2, received: 0 });
  const leak = check(lab, 1, 'both echo requests').observed as { count: number; packets: string[] };
  t.is(leak.count, 2);
  t.regex(leak.packets[0]!, /IP 10\.244\.0\.10 > 10\.98\.51\.150: ICMP echo request/);
  t.deepEqual((check(lab, 3, (c) => c.kind === 'tcp').observed as { clientSeen: unknown }).clientSeen, {
    '10.244.0.10': 1,
  });
});

// ---- wrong expectations fail with the observation ------------------------------------------------

test.serial(
  'a wrong spread (100% on p1) and a wrong stickiness claim exit 1 and show the observed counts',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'nflab-k8s-wrong-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'wrong-spread.ts');
    writeFileSync(
      file,
      `import { BACKENDS, CLUSTER_CIDR, defineLab, kubeProxyRules, podTopology, tcp } from 'nflab';
const proxy = { node: 'node', services: [{ name: 'web', clusterIP: '10.98.51.150', port: 80, protocol: 'tcp' as const, endpoints: Object.values(BACKENDS) }], options: { era: 'blog' as const, clusterCIDR: CLUSTER_CIDR } };
const fromPc = tcp('pc', '10.98.51.150', 80, { connections: 60 });
export default defineLab({
  id: 'k8s-wrong', title: 'wrong expectations', summary: 'no affinity: neither all on p1 nor sticky', source: { title: 'test' },
  kubeProxy: proxy, topology: podTopology({ setup: kubeProxyRules(proxy) }),
  steps: [{ title: 'spread', expect: [fromPc.spreads({ p1: 1 }), fromPc.sticks(), fromPc.spreads({ p1: 1 / 3, p2: 1 / 3, p3: 1 / 3 })] }],
});
`,
    );
    const lab = await runLabJson(t, file, 1);
    t.is(lab.status, 'failed');
    const [allOnP1, sticky, fair] = lab.steps[0]!.checks as [CheckReport, CheckReport, CheckReport];
    t.is(allOnP1.status, 'not-met');
    t.deepEqual((allOnP1.expected as { counts: unknown }).counts, { p1: { min: 60, max: 60 } });
    const counts = (allOnP1.observed as { counts: Record<string, number> }).counts;
    t.is(sum(counts), 60);
    t.true(counts.p1! < 60 && (counts.p2 ?? 0) + (counts.p3 ?? 0) > 0, JSON.stringify(counts));
    t.is(sticky.status, 'not-met');
    t.deepEqual(
      (sticky.observed as { answeredBy: unknown }).answeredBy,
      counts,
      'the stickiness check shows the same counts',
    );
    t.is(fair.status, 'met', 'the same observations meet the right expectation');
  },
);

// ---- validation ----------------------------------------------------------------------------------

const TRAFFIC: TcpTraffic = { kind: 'tcp', from: 'pc', to: '10.98.51.150', port: 80, connections: 20 };
function labWith(...expect: Check[]): Lab {
  return {
    id: 'v',
    title: 'v',
    summary: 'v',
    source: { title: 'v' },
    topology: podTopology(),
    steps: [{ title: 'checks', expect }],
  };
}
function problem(t: import('ava').ExecutionContext, lab: Lab): string {
  return t.throws(() => validateLab(lab), { instanceOf: LabError })?.message ?? '';
}

test('validation: the new check fields name the step and field at fault', (t) => {
  const at = /step 1 "checks": expect\[0\]: /;
  t.regex(
    problem(t, labWith({ kind: 'distribution', traffic: TRAFFIC, shares: { p1: 0.5, p9: 0.5 } })),
    new RegExp(`${at.source}distribution check: field "shares\\.p9" names unknown node "p9"`),
  );
  t.regex(
    problem(t, labWith({ kind: 'distribution', traffic: TRAFFIC, shares: { p1: 0.5, p2: 0.4 } })),
    /the shares must sum to 1 \(they sum to 0\.9/,
  );
  t.regex(
    problem(t, labWith({ kind: 'distribution', traffic: TRAFFIC, shares: { p1: 1.5 } })),
    /field "shares\.p1" must be a number within \[0, 1\]/,
  );
  t.regex(
    problem(t, labWith({ kind: 'sticky', traffic: { ...TRAFFIC, connections: 1 } })),
    /sticky check: the traffic needs at least 2 connections/,
  );
  t.regex(
    problem(t, labWith({ kind: 'sticky', traffic: TRAFFIC, among: ['p1', 'ghost'] })),
    new RegExp(`${at.source}sticky check: field "among\\[1\\]" names unknown node "ghost"`),
  );
  t.regex(
    problem(t, labWith({ kind: 'recent', node: 'nodex', lists: 'L', expect: 'empty' })),
    /recent check: field "node" names unknown node "nodex"/,
  );
  t.regex(
    problem(
      t,
      labWith({ kind: 'recent', node: 'node', lists: { p1: 'A', px: 'B' }, expect: 'lacks', address: '10.244.0.10' }),
    ),
    /recent check: field "lists\.px" names unknown node "px"/,
  );
  t.regex(
    problem(t, labWith({ kind: 'recent', node: 'node', lists: { p1: 'A' }, expect: 'has', address: '10.244.0.10' })),
    /"has" needs "chosenBy"/,
  );
  t.regex(
    problem(t, labWith({ kind: 'recent', node: 'node', lists: '../etc', expect: 'empty' })),
    /list name "\.\.\/etc" is invalid/,
  );
  t.regex(
    problem(t, labWith({ kind: 'recent', node: 'node', lists: 'L', expect: 'has', address: 'pc' })),
    /field "address" must be an IPv4 address/,
  );
  t.regex(
    problem(
      t,
      labWith({
        kind: 'counter',
        node: 'node',
        table: 'nat',
        chain: 'KUBE-SVC-X',
        rule: '-j X',
        answersOf: { traffic: TRAFFIC, answeredBy: 'p7' },
      }),
    ),
    new RegExp(`${at.source}counter check: field "answersOf\\.answeredBy" names unknown node "p7"`),
  );
  t.regex(
    problem(
      t,
      labWith({ kind: 'counter', node: 'node', table: 'nat', chain: 'X', rule: '-j A', rules: ['-j B'], packets: 1 }),
    ),
    /give "rule" or "rules", not both/,
  );
  const bad = labWith({ kind: 'sticky', traffic: TRAFFIC });
  bad.kubeProxy = {
    node: 'nodez',
    services: [{ name: 'Bad Name', clusterIP: '10.0.0.1', port: 80, protocol: 'tcp', endpoints: [] }],
    options: { era: 'blog' },
  };
  const message = problem(t, bad);
  t.regex(message, /field "kubeProxy": field "node" names unknown node "nodez"/);
  t.regex(message, /field "kubeProxy": service default\/Bad Name: name must be a DNS label/);
  t.notThrows(() =>
    validateLab(
      labWith({
        kind: 'recent',
        node: 'node',
        lists: { p1: 'A', p2: 'B' },
        expect: 'has',
        address: '10.244.0.10',
        chosenBy: TRAFFIC,
      }),
    ),
  );
});

test('the statistical tolerance: N·p ± 4·sqrt(N·p(1−p)), whole counts, exact at p = 0 and 1', (t) => {
  t.deepEqual(shareRange(150, 1 / 3, 4), { min: 27, max: 73 }); // 50 ± 23.09
  t.deepEqual(shareRange(300, 1 / 3, 4), { min: 68, max: 132 }); // docs/labs.md#l4: 100 ± 32.7
  t.deepEqual(shareRange(60, 1, 4), { min: 60, max: 60 });
  t.deepEqual(shareRange(60, 0, 4), { min: 0, max: 0 });
  t.deepEqual(shareRange(6, 1 / 3, 4), { min: 0, max: 6 });
});

test('nflab show prints the kube-proxy rules as iptables-save does', async (t) => {
  const r = await nflab(['show', '06']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /## kube-proxy's rules on node, as `iptables-save` prints them/);
  t.regex(
    r.stdout,
    /-A KUBE-SVC-UBXGHWUUHMMRNNE6 -m comment --comment "default\/k8s-nginx-affinity:" -m statistic --mode random --probability 0\.33332999982 -j KUBE-SEP-/,
  );
  t.regex(r.stdout, /iptables-restore --noflush <<'EOF'\n\s*\*nat\n/); // (show indents the heredoc's lines)
  const five = await nflab(['show', '05']);
  t.notRegex(
    five.stdout.split('## Step 1')[0]!,
    /--dst-type LOCAL -j KUBE-NODEPORTS/,
    'lab 05 starts without the nodeports jump',
  );
});

// ---- the counter check finds every rule as the renderer writes it ---------------------------------

test.serial(
  'real kernel: each rule written as the renderer writes it matches exactly its saved rule (probabilities numerically, G5)',
  (t) => {
    const services: Service[] = [
      {
        name: 'web',
        clusterIP: '10.98.51.150',
        port: 80,
        protocol: 'tcp',
        endpoints: ['10.244.0.2', '10.244.0.3', '10.244.0.4'],
      },
      {
        name: 'sticky',
        clusterIP: '10.109.59.245',
        port: 80,
        protocol: 'tcp',
        type: 'NodePort',
        nodePort: 30136,
        endpoints: ['10.244.0.2', '10.244.0.3', '10.244.0.4'],
        sessionAffinity: { timeoutSeconds: 10800 },
      },
    ];
    const options: ProxyOptions = { era: 'blog', clusterCIDR: '10.244.0.0/16' };
    const spec = { node: 'node', services, options };
    const ns = `hk6-${randomBytes(3).toString('hex')}`;
    const sh = (argv: string[], input?: string) => {
      const r = spawnSync(argv[0]!, argv.slice(1), { input, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    sh(['ip', 'netns', 'add', ns]);
    t.teardown(() => {
      spawnSync('ip', ['netns', 'del', ns]);
    });
    const [load] = kubeProxyRules(spec);
    sh(['ip', 'netns', 'exec', ns, ...load!.argv], load!.stdin);
    const saved = parseIptablesSave(sh(['ip', 'netns', 'exec', ns, 'iptables-save', '-c']));
    const savedLines = [
      ...renderRulesAsSaved(services, options).nat.split('\n'),
      ...renderRulesAsSaved(services, options).filter.split('\n'),
    ];

    let checked = 0;
    for (const table of ['nat', 'filter'] as const) {
      for (const rule of kubeRules(spec, table)) {
        const found = counterDelta(table, rule.chain, ruleText(rule), saved, saved);
        if ('problem' in found) {
          t.fail(`${table} -A ${rule.chain} ${ruleText(rule)}: ${found.problem}`);
          continue;
        }
        t.true(savedLines.includes(found.what), `${ruleText(rule)} → ${found.what}`);
        checked++;
      }
    }
    t.true(checked >= 30, `${checked} rules checked`);
    // Written with 0.33333, saved as 0.33332999982: found numerically; 0.34 is another rule.
    const svc = kubeRules(spec, 'nat', { chain: 'KUBE-SERVICES' })
      .find((r) => r.args.includes('10.98.51.150/32') && !r.args.includes('!'))!
      .args.at(-1)!;
    const third = counterDelta('nat', svc, '-m statistic --mode random --probability 0.33333 -j', saved, saved);
    t.false('problem' in third, JSON.stringify(third));
    t.regex((third as { what: string }).what, /--probability 0\.33332999982 /);
    t.true('problem' in counterDelta('nat', svc, '--probability 0.34', saved, saved));
  },
);
