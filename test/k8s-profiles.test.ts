// kube-proxy release profiles checked against kube-proxy's own expected rules
// (test/fixtures/kube-proxy/*/SOURCE.md says where each fixture comes from):
//   (a) text, after the normaliser written from the upstream test's documented sort order;
//   (b) a real iptables-restore / iptables-save round trip of the fixture and of the render, each
//       in a fresh network namespace (never the root namespace);
// and the unsupported features refused by name.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { LabError } from '../src/errors.ts';
import { parseRestore, printRestore, ruleLines, sortLikeKubeProxyTests } from '../src/k8s/normalise.ts';
import { buildKubeProxyRules, renderKubeProxyRules, renderRulesAsSaved } from '../src/k8s/render-iptables.ts';
import type { ProxyOptions, Service } from '../src/k8s/service.ts';
import { servicesFromYaml } from '../src/k8s/yaml.ts';

const FIXTURES = new URL('./fixtures/kube-proxy/', import.meta.url);
const fixture = (path: string) => readFileSync(new URL(path, FIXTURES), 'utf8');
const CURRENT: ProxyOptions = { era: 'current', clusterCIDR: '10.0.0.0/8' };
const expectedCurrent = fixture('current/TestOverallIPTablesRules.expected.txt');
const currentServices = () =>
  servicesFromYaml([{ name: 'services.yaml', text: fixture('current/services.yaml') }], { nodeName: 'test-node' });

function normalised(text: string): string {
  return printRestore(sortLikeKubeProxyTests(parseRestore(text)));
}

/** How many of the fixture's rules the render has, word for word (each rule matched once). */
function reproduced(fixtureText: string, renderText: string): { exact: number; total: number; missing: string[] } {
  const mine = ruleLines(parseRestore(renderText));
  const want = ruleLines(parseRestore(fixtureText));
  const missing: string[] = [];
  for (const rule of want) {
    const i = mine.indexOf(rule);
    if (i < 0) missing.push(rule);
    else mine.splice(i, 1);
  }
  return { exact: want.length - missing.length, total: want.length, missing };
}

function run(argv: string[], input?: string): string {
  const [cmd, ...args] = argv as [string, ...string[]];
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function freshNamespace(t: { teardown: (fn: () => void) => void }): string {
  const ns = `nfl-kpt-${randomBytes(3).toString('hex')}`;
  run(['ip', 'netns', 'add', ns]);
  t.teardown(() => {
    spawnSync('ip', ['netns', 'del', ns]);
  });
  return ns;
}

/** What the kernel holds after loading `restore` into a fresh namespace: iptables-save, chain declarations and rules only. */
function roundTrip(t: { teardown: (fn: () => void) => void }, restore: string): string[] {
  const ns = freshNamespace(t);
  run(['ip', 'netns', 'exec', ns, 'iptables-restore', '--noflush'], restore);
  return run(['ip', 'netns', 'exec', ns, 'iptables-save'])
    .split('\n')
    .filter(
      (l) =>
        l.startsWith('-A ') ||
        (l.startsWith(':') && !/^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) /.test(l)) ||
        l.startsWith('*'),
    );
}

// This kernel has no xt_nfacct; kube-proxy itself leaves the nfacct matches out there.
const withoutNfacct = (text: string) => text.replace(/ -m nfacct --nfacct-name \S+/g, '');

// ---- current: TestOverallIPTablesRules -----------------------------------------------------------

test('current (a): the Services of TestOverallIPTablesRules render exactly its expected rules, after the upstream sort', (t) => {
  const r = renderKubeProxyRules(currentServices(), CURRENT);
  t.is(normalised(r.filter + r.nat), normalised(expectedCurrent));
  const figures = reproduced(expectedCurrent, r.filter + r.nat);
  t.deepEqual(figures.missing, []);
  t.is(figures.total, 65);
  t.log(`current: ${figures.exact}/${figures.total} fixture rules reproduced exactly`);
});

test('current (a): the normaliser is not blind: a changed probability, comment or rule order is a difference', (t) => {
  const r = renderKubeProxyRules(currentServices(), CURRENT);
  const text = r.filter + r.nat;
  t.not(normalised(text.replace('0.5000000000', '0.50000')), normalised(expectedCurrent));
  t.not(normalised(text.replace('"ns4/svc4:p80 -> 10.180.0.5:80"', 'ns4/svc4:p80')), normalised(expectedCurrent));
  // Two rules of one KUBE-SVC chain swapped: their order matters, the normaliser keeps it.
  const lines = text.split('\n');
  const a = lines.findIndex((l) => l.includes('"ns4/svc4:p80 -> 10.180.0.4:80"'));
  const b = lines.findIndex((l) => l.includes('"ns4/svc4:p80 -> 10.180.0.5:80"'));
  [lines[a], lines[b]] = [lines[b] as string, lines[a] as string];
  t.not(normalised(lines.join('\n')), normalised(expectedCurrent));
});

test.serial(
  'current (b): fixture and render give the same iptables-save after a real round trip, and renderRulesAsSaved predicts it',
  (t) => {
    const services = currentServices();
    const opts: ProxyOptions = { ...CURRENT, nfacct: false };
    const r = renderKubeProxyRules(services, opts);
    const fromFixture = roundTrip(t, withoutNfacct(expectedCurrent));
    // The render also carries kube-proxy's jump rules into the built-in chains; compare the rest.
    const fromRender = roundTrip(t, r.filter + r.nat);
    const kubeOnly = (lines: string[]) =>
      lines.filter((l) => !/^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) /.test(l));
    t.deepEqual(kubeOnly(fromRender), fromFixture);
    t.is(fromFixture.filter((l) => l.startsWith('-A ')).length, 65);
    // The saved view the CLI and `nflab show` print is what the kernel printed, jumps included.
    const saved = renderRulesAsSaved(services, opts);
    const predicted = (saved.filter + saved.nat)
      .split('\n')
      .filter((l) => l.startsWith('-A ') || l.startsWith(':') || l.startsWith('*'));
    const bySection = (lines: string[]) => [...lines].sort();
    t.deepEqual(bySection(predicted), bySection(fromRender));
  },
);

// ---- blog and v1.19: the structure they differ in ---------------------------------------------------

test('blog and v1.19 refuse what they do not model, naming the service and field', (t) => {
  const lb: Service = {
    name: 'web',
    clusterIP: '10.96.0.9',
    port: 80,
    protocol: 'tcp',
    type: 'LoadBalancer',
    endpoints: ['10.244.0.2'],
    loadBalancerIPs: ['198.51.100.9'],
  };
  for (const era of ['blog', 'v1.19'] as const) {
    const e = t.throws(() => buildKubeProxyRules([lb], { era }), { instanceOf: LabError });
    t.regex(
      e?.message ?? '',
      /service default\/web: field "type: LoadBalancer" is not supported by the (blog|v1\.19) profile/,
    );
    const ext = t.throws(
      () =>
        buildKubeProxyRules([{ ...lb, type: 'ClusterIP', loadBalancerIPs: [], externalIPs: ['198.51.100.9'] }], {
          era,
        }),
      { instanceOf: LabError },
    );
    t.regex(ext?.message ?? '', /field "externalIPs"/);
  }
  t.notThrows(() => buildKubeProxyRules([lb], CURRENT));
});

test('v1.19: the unnamed port hashes without the colon and the marks are --or-mark/--xor-mark', (t) => {
  const svc: Service = {
    name: 'k8s-nginx-cluster',
    clusterIP: '10.98.51.150',
    port: 80,
    protocol: 'tcp',
    endpoints: ['10.244.0.2', '10.244.0.3', '10.244.0.4'],
  };
  const v119 = buildKubeProxyRules([svc], { era: 'v1.19', clusterCIDR: '10.244.0.0/16' });
  const blog = buildKubeProxyRules([svc], { era: 'blog', clusterCIDR: '10.244.0.0/16' });
  t.is(blog.services[0]?.svc, 'KUBE-SVC-3FL7SSXCKTCXAYCR');
  t.is(v119.services[0]?.svc, 'KUBE-SVC-JFH7SRGL4HNNPRDE');
  const text = renderKubeProxyRules([svc], { era: 'v1.19', clusterCIDR: '10.244.0.0/16' }).nat;
  t.regex(text, /-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000/);
  t.regex(text, /--probability 0\.3333333333 /);
  t.regex(text, /-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000/);
});

// ---- nflab kube-proxy render ---------------------------------------------------------------------

test('nflab kube-proxy render: the Services of TestOverallIPTablesRules as YAML give exactly its expected rules under current', async (t) => {
  const { nflab } = await import('./helpers/system.ts');
  const file = new URL('current/services.yaml', FIXTURES).pathname;
  const r = await nflab([
    'kube-proxy',
    'render',
    file,
    '--profile',
    'current',
    '--cluster-cidr',
    '10.0.0.0/8',
    '--node-name',
    'test-node',
    '--no-jumps',
  ]);
  t.is(r.code, 0, r.stderr);
  t.is(normalised(r.stdout), normalised(expectedCurrent));
  t.false(/^-I /m.test(r.stdout));
  // With the jumps (the default) the same rules come after kube-proxy's -I lines.
  const withJumps = await nflab(['kube-proxy', 'render', file, '--cluster-cidr', '10.0.0.0/8']);
  t.regex(withJumps.stdout, /^-I PREROUTING 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES$/m);
  t.is(normalised(withJumps.stdout), normalised(expectedCurrent));
});

test('nflab kube-proxy render: bad YAML and unsupported fields exit 2 naming the document and field', async (t) => {
  const { nflab } = await import('./helpers/system.ts');
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const dir = mkdtempSync('/tmp/nfl-kp-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    writeFileSync(`${dir}/${name}`, text);
    return `${dir}/${name}`;
  };
  const svc = (extra: string) =>
    `apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  clusterIP: 10.96.0.9\n  ports: [{port: 80}]\n${extra}`;
  const cases: [string, RegExp][] = [
    [write('broken.yaml', 'kind: Service\nspec: [1\n'), /broken\.yaml: document 1: invalid YAML/],
    [
      write('sctp.yaml', svc('').replace('{port: 80}', '{port: 80, protocol: SCTP}')),
      /document 1 \(Service shop\/web\): field "spec\.ports\[0\]\.protocol": protocol SCTP is not supported/,
    ],
    [
      write('itp.yaml', `---\n${svc('  internalTrafficPolicy: Local\n')}`),
      /document 1 \(Service shop\/web\): field "spec\.internalTrafficPolicy"/,
    ],
    [write('v6.yaml', svc('').replace('10.96.0.9', 'fd00::9')), /field "spec\.clusterIP": IPv6/],
    [
      write(
        'hints.yaml',
        `${svc('')}---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nendpoints:\n- addresses: [10.244.0.2]\n  hints: {forZones: [{name: a}]}\nports: [{port: 80}]\n`,
      ),
      /document 2 \(EndpointSlice shop\/web-1\): field "endpoints\[0\]\.hints"/,
    ],
  ];
  for (const [file, message] of cases) {
    const r = await nflab(['kube-proxy', 'render', file]);
    t.is(r.code, 2, file);
    t.regex(r.stderr, message);
    t.is(r.stdout, '');
  }
  const lb = write(
    'lb.yaml',
    svc(
      '  type: LoadBalancer\n  ports: [{port: 80, nodePort: 30080}]\nstatus: {loadBalancer: {ingress: [{ip: 198.51.100.7}]}}\n',
    ).replace('  ports: [{port: 80}]\n', ''),
  );
  const blog = await nflab(['kube-proxy', 'render', lb, '--profile', 'blog']);
  t.is(blog.code, 2);
  t.regex(
    blog.stderr,
    /lb\.yaml: document 1 \(Service shop\/web\): .*field "type: LoadBalancer" is not supported by the blog profile/,
  );
  const current = await nflab(['kube-proxy', 'render', lb, '--profile', 'current', '--format', 'save']);
  t.is(current.code, 0, current.stderr);
  // no endpoints: the load-balancer IP is rejected in filter KUBE-EXTERNAL-SERVICES, printed as iptables-save does
  t.regex(
    current.stdout,
    /^-A KUBE-EXTERNAL-SERVICES -d 198\.51\.100\.7\/32 -p tcp -m comment --comment "shop\/web has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable$/m,
  );
});

test("current refuses kube-proxy's large-cluster mode (over 1000 endpoints) by name", (t) => {
  const many = Array.from({ length: 1001 }, (_, i) => `10.244.${Math.floor(i / 250)}.${(i % 250) + 1}`);
  const e = t.throws(
    () =>
      buildKubeProxyRules(
        [{ name: 'big', clusterIP: '10.96.0.9', port: 80, protocol: 'tcp', endpoints: many }],
        CURRENT,
      ),
    { instanceOf: LabError },
  );
  t.regex(e?.message ?? '', /1001 endpoints: kube-proxy's large-cluster mode/);
});

// ---- the Kubernetes labs under each iptables profile (real kernel, namespaces) --------------------

for (const profile of ['v1.19', 'current'] as const) {
  test.serial(`labs 04-08 pass under --kube-proxy ${profile} (netns nodes), and show names the profile`, async (t) => {
    const { nflab, jsonOf } = await import('./helpers/system.ts');
    const r = await nflab(['run', '04', '05', '06', '07', '08', '--kube-proxy', profile, '--json']);
    const { labs } = jsonOf(r) as {
      labs: { id: string; status: string; steps: { checks: { status: string; description: string }[] }[] }[];
    };
    t.deepEqual(
      labs.map((l) => [l.id, l.status]),
      [
        ['04', 'passed'],
        ['05', 'passed'],
        ['06', 'passed'],
        ['07', 'passed'],
        ['08', 'passed'],
      ],
    );
    t.is(r.code, 0);
    const checks = labs.flatMap((l) => l.steps.flatMap((s) => s.checks));
    t.true(checks.length >= 70 && checks.every((c) => c.status === 'met'));
    const show = await nflab(['show', '04', '--kube-proxy', profile]);
    t.regex(show.stdout, new RegExp(`kube-proxy profile: ${profile.replace('.', '\\.')}: kube-proxy v1\\.`));
    // The saved probability the lab checks is the profile's, not the blog's.
    t.regex(
      show.stdout,
      profile === 'current'
        ? /-A KUBE-SVC-JFH7SRGL4HNNPRDE .*--probability 0\.33333333349 /
        : /--probability 0\.33333333349 /,
    );
  });
}

test.serial('labs 04-08 pass under --kube-proxy current with Docker container nodes', async (t) => {
  const { nflab, jsonOf } = await import('./helpers/system.ts');
  const r = await nflab([
    'run',
    '04',
    '05',
    '06',
    '07',
    '08',
    '--kube-proxy',
    'current',
    '--nodes',
    'docker',
    '--json',
  ]);
  const { labs } = jsonOf(r) as { labs: { id: string; status: string; driver?: string }[] };
  t.deepEqual(
    labs.map((l) => [l.id, l.status]),
    [
      ['04', 'passed'],
      ['05', 'passed'],
      ['06', 'passed'],
      ['07', 'passed'],
      ['08', 'passed'],
    ],
  );
  t.is(r.code, 0);
});

// ---- nftables: TestOverallNFTablesRules -----------------------------------------------------------

const expectedNft = fixture('nftables/TestOverallNFTablesRules.expected.txt');
const NFT_OPTS = {
  era: 'current' as const,
  clusterCIDR: '10.0.0.0/8',
  serviceCIDRs: ['172.30.0.0/16'],
  nodeIPs: ['192.168.0.2'],
};

test('nftables (a): the Services of TestOverallNFTablesRules render exactly its expected transaction', async (t) => {
  const { nftLines, renderNftables } = await import('../src/k8s/render-nftables.ts');
  const { resolveService } = await import('../src/k8s/service.ts');
  const services = servicesFromYaml([{ name: 'services.yaml', text: fixture('nftables/services.yaml') }], {
    nodeName: 'test-node',
  }).map(resolveService);
  const mine = nftLines(renderNftables(services, NFT_OPTS));
  const want = nftLines(expectedNft);
  const missing = want.filter((l) => !mine.includes(l));
  t.deepEqual(missing, []);
  t.deepEqual(
    mine.filter((l) => !want.includes(l)),
    [],
  );
  t.is(want.length, 122);
  t.log(`nftables: ${want.length - missing.length}/${want.length} fixture lines reproduced exactly`);
});

test.serial(
  'nftables (b): fixture and render list the same kube-proxy table after nft -f in fresh namespaces',
  async (t) => {
    const { nftLoadable } = await import('../src/k8s/render-nftables.ts');
    const { nflab } = await import('./helpers/system.ts');
    const file = new URL('nftables/services.yaml', FIXTURES).pathname;
    const r = await nflab([
      'kube-proxy',
      'render',
      file,
      '--profile',
      'nftables',
      '--format',
      'nft',
      '--cluster-cidr',
      '10.0.0.0/8',
      '--service-cidr',
      '172.30.0.0/16',
      '--node-ip',
      '192.168.0.2',
      '--node-name',
      'test-node',
    ]);
    t.is(r.code, 0, r.stderr);
    const listed = (transaction: string) => {
      const ns = freshNamespace(t);
      run(['ip', 'netns', 'exec', ns, '/usr/sbin/nft', '-f', '-'], transaction); // (node_modules/.bin has another nft)
      return run(['ip', 'netns', 'exec', ns, '/usr/sbin/nft', 'list', 'table', 'ip', 'kube-proxy'])
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '')
        .sort();
    };
    const fromFixture = listed(nftLoadable(expectedNft));
    t.true(
      fromFixture.some((l) => l.includes('numgen random mod 2 vmap')),
      fromFixture.filter((l) => l.includes('numgen')).join('\n'),
    );
    t.deepEqual(listed(r.stdout), fromFixture);
  },
);

// ---- nftables mode in the labs ---------------------------------------------------------------------

for (const nodes of ['netns', 'docker'] as const) {
  test.serial(
    `labs 04-08 under --kube-proxy nftables (${nodes} nodes): nft counters and sets as evidence, the reject in 08`,
    async (t) => {
      const { nflab, jsonOf } = await import('./helpers/system.ts');
      const r = await nflab([
        'run',
        '04',
        '05',
        '06',
        '07',
        '08',
        '--kube-proxy',
        'nftables',
        '--nodes',
        nodes,
        '--json',
      ]);
      type Json = {
        labs: {
          id: string;
          title: string;
          status: string;
          kubeProxy?: string;
          steps: { checks: { status: string; description: string; observed?: unknown }[] }[];
        }[];
      };
      const { labs } = jsonOf(r) as Json;
      t.deepEqual(
        labs.map((l) => [l.id, l.status]),
        [
          ['04', 'passed'],
          ['05', 'passed'],
          ['06', 'passed'],
          ['07', 'passed'],
          ['08', 'passed'],
        ],
        JSON.stringify(labs.map((l) => l.steps.flatMap((s) => s.checks.filter((c) => c.status !== 'met')))),
      );
      t.is(r.code, 0);
      t.true(labs.every((l) => l.kubeProxy === 'nftables'));
      t.regex(labs.find((l) => l.id === '08')?.title ?? '', /nftables mode: rejected/);
      // The counters read are nft's: lab 04's endpoint chains counted every one of its 150 connections.
      const lab04 = labs.find((l) => l.id === '04')!;
      const dnat = lab04.steps[1]!.checks.filter((c) => /endpoint chain DNATs/.test(c.description));
      t.is(dnat.length, 3);
      const counted = dnat.map((c) => c.observed as { packets: number; rule: string });
      t.is(
        counted.reduce((a, c) => a + c.packets, 0),
        150,
        JSON.stringify(counted),
      );
      t.true(
        counted.every((c) => /^-A endpoint-\S+ meta l4proto tcp dnat to 10\.244\.0\.\d:80$/.test(c.rule)),
        JSON.stringify(counted),
      );
    },
  );
}

test('show 04 --kube-proxy nftables prints the nft transaction with counters and the nft-counter checks', async (t) => {
  const { nflab } = await import('./helpers/system.ts');
  const r = await nflab(['show', '04', '--kube-proxy', 'nftables']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /kube-proxy profile: nftables: /);
  t.regex(
    r.stdout,
    /add rule ip kube-proxy endpoint-\S+__10\.244\.0\.2\/80 meta l4proto tcp counter dnat to 10\.244\.0\.2:80/,
  );
  t.regex(r.stdout, /add rule ip kube-proxy service-\S+ counter numgen random mod 3 vmap/);
  t.notRegex(r.stdout, /iptables-save/);
});

test.serial(
  "the profile is kept in the run record: check on a lab up under v1.19 uses v1.19's rules; another --kube-proxy is refused",
  async (t) => {
    const { nflab, jsonOf } = await import('./helpers/system.ts');
    const up = await nflab(['up', '04', '--step', '1', '--kube-proxy', 'v1.19', '--json', '--again']);
    t.is(up.code, 0, up.stderr);
    const runId = (jsonOf(up) as { runId: string }).runId;
    t.teardown(async () => {
      await nflab(['down', runId]);
    });
    // Without --kube-proxy: the record's profile. Step 2's counter checks name v1.19's KUBE-SVC chain
    // (unnamed port hashed without the colon), which the blog's lab would not find.
    const check = await nflab(['check', runId, '--step', '2', '--json']);
    t.is(check.code, 0, check.stdout + check.stderr);
    const report = (jsonOf(check) as { report: { checks: { status: string; observed?: { rule?: string } }[] } }).report;
    t.true(report.checks.every((c) => c.status === 'met'));
    t.true(
      report.checks.some((c) => /^-A KUBE-SVC-JFH7SRGL4HNNPRDE /.test(c.observed?.rule ?? '')),
      JSON.stringify(report.checks.map((c) => c.observed)),
    );
    const other = await nflab(['check', runId, '--step', '2', '--kube-proxy', 'current']);
    t.is(other.code, 2);
    t.regex(other.stderr, /is up with --kube-proxy v1\.19 \(run \w+\), not current/);
  },
);

// ---- ipvs (text only: this kernel has no ip_vs and no dummy interfaces) -------------------------

test('ipvs: virtual services with scheduler and persistence, kube-ipvs0 bindings, ipsets, and a constant iptables rule set', async (t) => {
  const { renderIpvs, ipvsScript } = await import('../src/k8s/render-ipvs.ts');
  const { resolveService } = await import('../src/k8s/service.ts');
  const svc = (name: string, ip: string, extra: Partial<Service> = {}): Service => ({
    name,
    clusterIP: ip,
    port: 80,
    protocol: 'tcp',
    endpoints: ['10.244.0.2', '10.244.0.3'],
    ...extra,
  });
  const one = renderIpvs([svc('web', '10.96.0.10')].map(resolveService), { clusterCIDR: '10.244.0.0/16' });
  // What lab 12 types by hand for its ClusterIP: the /32 on kube-ipvs0, -A with rr, -a -m per real server.
  for (const line of [
    'ip link add kube-ipvs0 type dummy',
    'ip addr add 10.96.0.10/32 dev kube-ipvs0',
    'ipvsadm -A -t 10.96.0.10:80 -s rr',
    'ipvsadm -a -t 10.96.0.10:80 -r 10.244.0.2:80 -m -w 1',
    'ipvsadm -a -t 10.96.0.10:80 -r 10.244.0.3:80 -m -w 1',
  ]) {
    t.true(one.commands.includes(line), line);
  }
  t.regex(one.ipsets, /^add KUBE-CLUSTER-IP 10\.96\.0\.10,tcp:80 /m);
  t.regex(one.ipsets, /^add KUBE-LOOP-BACK 10\.244\.0\.2,tcp:80,10\.244\.0\.2 /m);
  const sticky = renderIpvs(
    [
      svc('sticky', '10.96.0.11', { type: 'NodePort', nodePort: 30080, sessionAffinity: { timeoutSeconds: 10800 } }),
    ].map(resolveService),
    { nodeIPs: ['172.17.8.100'] },
  );
  t.true(sticky.commands.includes('ipvsadm -A -t 10.96.0.11:80 -s rr -p 10800'));
  t.true(sticky.commands.includes('ipvsadm -A -t 172.17.8.100:30080 -s rr -p 10800'));
  t.regex(sticky.ipsets, /^add KUBE-NODE-PORT-TCP 30080 /m);
  // The iptables rules do not grow with the Services.
  const many = renderIpvs(Array.from({ length: 20 }, (_, i) => svc(`s${i}`, `10.96.1.${i + 1}`)).map(resolveService), {
    clusterCIDR: '10.244.0.0/16',
  });
  t.is(many.iptables, one.iptables);
  t.regex(
    one.iptables,
    /-A KUBE-SERVICES ! -s 10\.244\.0\.0\/16 .*--match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ/,
  );
  t.regex(ipvsScript(one), /ipset restore <<'EOF'\n/);
  t.throws(
    () =>
      renderIpvs(
        [svc('local', '10.96.0.12', { type: 'NodePort', nodePort: 30081, externalTrafficPolicy: 'Local' })].map(
          resolveService,
        ),
      ),
    { instanceOf: LabError, message: /externalTrafficPolicy: Local" is not supported by the ipvs profile/ },
  );
});

// ---- v1.19: TestEndpointSliceE2E of the v1.19/1.20 era ------------------------------------------------

test("v1.19 (b): the Service of TestEndpointSliceE2E after a kernel round trip: the fixture's rules the render reproduces, and each difference named", (t) => {
  const services = servicesFromYaml([{ name: 'services.yaml', text: fixture('v1.19/services.yaml') }], {
    nodeName: 'test-hostname',
  });
  const r = renderKubeProxyRules(services, { era: 'v1.19', clusterCIDR: '10.0.0.0/24', nfacct: false });
  // The upstream Service has port 0 (see services.yaml): the only substitution.
  const expected = fixture('v1.19/TestEndpointSliceE2E.expected.txt').replaceAll('--dport 0 ', '--dport 80 ');
  const rulesOf = (lines: string[]) =>
    lines.filter((l) => l.startsWith('-A ') && !/^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) /.test(l));
  const fromFixture = rulesOf(roundTrip(t, expected));
  const fromRender = rulesOf(roundTrip(t, r.filter + r.nat));
  const missing = fromFixture.filter((l) => !fromRender.includes(l));
  const extra = fromRender.filter((l) => !fromFixture.includes(l));
  const exact = fromFixture.length - missing.length;
  t.log(`v1.19: ${exact}/${fromFixture.length} rules of TestEndpointSliceE2E reproduced exactly after the round trip`);
  t.is(fromFixture.length, 19);
  // Every nat rule (chain names, hash without the colon, %0.10f, --or-mark/--xor-mark) is reproduced.
  t.deepEqual(
    missing.filter((l) => !l.startsWith('-A KUBE-FORWARD ')),
    [],
  );
  // The fixture's one conntrack rule (the v1.20 form) against the profile's two v1.19 rules.
  t.deepEqual(missing, [
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  ]);
  t.deepEqual(extra.map((l) => l.replace(/ -m comment --comment "[^"]*"/, '')).sort(), [
    '-A KUBE-FIREWALL -m mark --mark 0x8000/0x8000 -j DROP',
    '-A KUBE-FORWARD -d 10.0.0.0/24 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-A KUBE-FORWARD -s 10.0.0.0/24 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000',
  ]);
  t.is(exact, 18);
  // As text, word for word: the profile writes iptables-save's word order and quotes every comment,
  // kube-proxy wrote `-m comment --comment ns1/svc1 -m tcp -p tcp -d …`; only the kernel's
  // round trip makes the two comparable.
  const textExact = reproduced(expected, r.filter + r.nat).exact;
  t.log(`v1.19: ${textExact}/19 word for word as text`);
  t.is(textExact, 7);
});
