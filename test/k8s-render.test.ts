// The kube-proxy (iptables mode) model and renderer: chain-name hashes against the blog's dumps,
// the L4 rule set (docs/labs.md#l4) line by line, the blog-era structure, the omit switches, the
// numeric helpers, and a real-kernel round trip through iptables-restore / iptables-save.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { LabError } from '../src/errors.ts';
import { chainsOf, endpointChainName, serviceChainName, servicePortName } from '../src/k8s/hash.ts';
import { applyMark, closeTo, markMatchOf, markTargetOf, probabilityOf, savedProbability } from '../src/k8s/numbers.ts';
import {
  buildKubeProxyRules,
  renderKubeProxyRules,
  renderRulesAsSaved,
  savedArgs,
} from '../src/k8s/render-iptables.ts';
import { resolveService, type ProxyOptions, type Service } from '../src/k8s/service.ts';

const BLOG: ProxyOptions = { era: 'blog', clusterCIDR: '10.244.0.0/16' };

const cluster: Service = {
  name: 'k8s-nginx-cluster',
  clusterIP: '10.98.51.150',
  port: 80,
  protocol: 'tcp',
  endpoints: ['10.244.0.2', '10.244.0.3', '10.244.0.4'],
};

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

// ---- chain-name hashes -------------------------------------------------------------------------

test('service chain names reproduce the blog dumps (L4, L5, L6)', (t) => {
  t.is(serviceChainName('default/k8s-nginx-cluster:', 'tcp'), 'KUBE-SVC-3FL7SSXCKTCXAYCR');
  t.is(serviceChainName('default/k8s-nginx-node:', 'tcp'), 'KUBE-SVC-RD5DSC6PXE26GCYZ');
  t.is(serviceChainName('default/k8s-nginx-affinity:', 'tcp'), 'KUBE-SVC-UBXGHWUUHMMRNNE6');
  // The trailing ':' (empty port name, v1.8–v1.18 ServicePortName) and the lower-case protocol matter.
  t.not(serviceChainName('default/k8s-nginx-cluster', 'tcp'), 'KUBE-SVC-3FL7SSXCKTCXAYCR');
  t.is(servicePortName(resolveService(cluster)), 'default/k8s-nginx-cluster:');
});

test('endpoint chain names reproduce the blog dumps for the original pod IPs', (t) => {
  const sep = (svc: string, ep: string) => endpointChainName(`default/${svc}:`, 'tcp', ep);
  t.is(sep('k8s-nginx-cluster', '10.244.0.88:80'), 'KUBE-SEP-7MBJVYFMXTKOJUKD'); // L4 DNAT grep
  // L4 KUBE-SVC grep (another snapshot): found by searching 10.244.0.0/24 for the three names.
  t.is(sep('k8s-nginx-cluster', '10.244.0.101:80'), 'KUBE-SEP-POVAFWTN5ECIRK7J');
  t.is(sep('k8s-nginx-cluster', '10.244.0.102:80'), 'KUBE-SEP-AQWRPA7WRPWQAWLR');
  t.is(sep('k8s-nginx-cluster', '10.244.0.105:80'), 'KUBE-SEP-XPSDT7KEI65EZ2WI');
  t.is(sep('k8s-nginx-node', '10.244.0.113:80'), 'KUBE-SEP-YNJKNN6SS5424R7C'); // L5
  t.is(sep('k8s-nginx-node', '10.244.0.114:80'), 'KUBE-SEP-ZGMDZ7UNNV74OV5B');
  t.is(sep('k8s-nginx-node', '10.244.0.115:80'), 'KUBE-SEP-VRKO3GZ2XUCPVWY5');
  t.is(sep('k8s-nginx-affinity', '10.244.0.143:80'), 'KUBE-SEP-YFKOY7G33LWKGTLC'); // L6
  t.is(sep('k8s-nginx-affinity', '10.244.0.145:80'), 'KUBE-SEP-HDMJEKA4BFKBU6OK');
});

test('bare endpoint IPs hash as ip:targetPort', (t) => {
  const s = resolveService({ ...cluster, targetPort: 8080, endpoints: ['10.244.0.2', '10.244.0.3:9090'] });
  const c = chainsOf(s);
  t.deepEqual(
    c.seps.map((e) => e.endpoint),
    ['10.244.0.2:8080', '10.244.0.3:9090'],
  );
  t.is(c.seps[0]?.chain, endpointChainName('default/k8s-nginx-cluster:', 'tcp', '10.244.0.2:8080'));
});

// ---- the L4 rule set, line by line -------------------------------------------------------------

// docs/labs.md#l4, the emulated node, with each chain declaration on its own line (as the spec asks).
// Its SEP names are the blog's names for pods 10.244.0.101/.102/.105 (previous test), not what
// kube-proxy computes for 10.244.0.2/.3/.4; the test maps the computed names onto them.
const SPEC_L4_NAT = `*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-MARK-DROP - [0:0]
:KUBE-SVC-3FL7SSXCKTCXAYCR - [0:0]
:KUBE-SEP-POVAFWTN5ECIRK7J - [0:0]
:KUBE-SEP-AQWRPA7WRPWQAWLR - [0:0]
:KUBE-SEP-XPSDT7KEI65EZ2WI - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -m mark --mark 0x4000/0x4000 -j MASQUERADE
-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.98.51.150/32 -p tcp -m comment --comment "default/k8s-nginx-cluster: cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SERVICES -d 10.98.51.150/32 -p tcp -m comment --comment "default/k8s-nginx-cluster: cluster IP" -m tcp --dport 80 -j KUBE-SVC-3FL7SSXCKTCXAYCR
-A KUBE-SVC-3FL7SSXCKTCXAYCR -m comment --comment "default/k8s-nginx-cluster:" -m statistic --mode random --probability 0.33333 -j KUBE-SEP-POVAFWTN5ECIRK7J
-A KUBE-SVC-3FL7SSXCKTCXAYCR -m comment --comment "default/k8s-nginx-cluster:" -m statistic --mode random --probability 0.50000 -j KUBE-SEP-AQWRPA7WRPWQAWLR
-A KUBE-SVC-3FL7SSXCKTCXAYCR -m comment --comment "default/k8s-nginx-cluster:" -j KUBE-SEP-XPSDT7KEI65EZ2WI
-A KUBE-SEP-POVAFWTN5ECIRK7J -s 10.244.0.2/32 -m comment --comment "default/k8s-nginx-cluster:" -j KUBE-MARK-MASQ
-A KUBE-SEP-POVAFWTN5ECIRK7J -p tcp -m comment --comment "default/k8s-nginx-cluster:" -m tcp -j DNAT --to-destination 10.244.0.2:80
-A KUBE-SEP-AQWRPA7WRPWQAWLR -s 10.244.0.3/32 -m comment --comment "default/k8s-nginx-cluster:" -j KUBE-MARK-MASQ
-A KUBE-SEP-AQWRPA7WRPWQAWLR -p tcp -m comment --comment "default/k8s-nginx-cluster:" -m tcp -j DNAT --to-destination 10.244.0.3:80
-A KUBE-SEP-XPSDT7KEI65EZ2WI -s 10.244.0.4/32 -m comment --comment "default/k8s-nginx-cluster:" -j KUBE-MARK-MASQ
-A KUBE-SEP-XPSDT7KEI65EZ2WI -p tcp -m comment --comment "default/k8s-nginx-cluster:" -m tcp -j DNAT --to-destination 10.244.0.4:80
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
COMMIT
`;

const SPEC_L4_FILTER = `*filter
:KUBE-FORWARD - [0:0]
:KUBE-FIREWALL - [0:0]
-A INPUT -j KUBE-FIREWALL
-A OUTPUT -j KUBE-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A KUBE-FIREWALL -m comment --comment "kubernetes firewall for dropping marked packets" -m mark --mark 0x8000/0x8000 -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -s 10.244.0.0/16 -m comment --comment "kubernetes forwarding conntrack pod source rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-FORWARD -d 10.244.0.0/16 -m comment --comment "kubernetes forwarding conntrack pod destination rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
`;

test('L4: the rendered restore input equals the L4 rule set line by line', (t) => {
  const rendered = renderKubeProxyRules([cluster], BLOG);
  const computed = chainsOf(resolveService(cluster)).seps.map((e) => e.chain);
  t.deepEqual(computed, ['KUBE-SEP-JJDGA3JKS5XNJQZD', 'KUBE-SEP-CDHNJJK5P5X6GGBE', 'KUBE-SEP-UQXKJDIDH6BLHPIM']);
  const specNames = ['KUBE-SEP-POVAFWTN5ECIRK7J', 'KUBE-SEP-AQWRPA7WRPWQAWLR', 'KUBE-SEP-XPSDT7KEI65EZ2WI'];
  let nat = rendered.nat;
  computed.forEach((name, i) => (nat = nat.replaceAll(name, specNames[i] as string)));
  t.deepEqual(lines(nat), lines(SPEC_L4_NAT));
  t.deepEqual(lines(rendered.filter), lines(SPEC_L4_FILTER));
});

test('L4: with the blog snapshot pods the saved KUBE-SVC rules equal the blog dump verbatim', (t) => {
  const snapshot = { ...cluster, endpoints: ['10.244.0.101', '10.244.0.102', '10.244.0.105'] };
  const svcLines = lines(renderRulesAsSaved([snapshot], BLOG).nat).filter((l) => l.startsWith('-A KUBE-SVC-'));
  t.deepEqual(svcLines, [
    '-A KUBE-SVC-3FL7SSXCKTCXAYCR -m comment --comment "default/k8s-nginx-cluster:" -m statistic --mode random --probability 0.33332999982 -j KUBE-SEP-POVAFWTN5ECIRK7J',
    '-A KUBE-SVC-3FL7SSXCKTCXAYCR -m comment --comment "default/k8s-nginx-cluster:" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-AQWRPA7WRPWQAWLR',
    '-A KUBE-SVC-3FL7SSXCKTCXAYCR -m comment --comment "default/k8s-nginx-cluster:" -j KUBE-SEP-XPSDT7KEI65EZ2WI',
  ]);
});

test('L5: NodePort rules as saved equal the blog dump verbatim', (t) => {
  const node: Service = {
    name: 'k8s-nginx-node',
    clusterIP: '10.98.128.179',
    port: 80,
    protocol: 'tcp',
    type: 'NodePort',
    nodePort: 30136,
    endpoints: ['10.244.0.113', '10.244.0.114', '10.244.0.115'],
  };
  const saved = lines(renderRulesAsSaved([node], BLOG).nat);
  for (const blogLine of [
    '-A KUBE-NODEPORTS -p tcp -m comment --comment "default/k8s-nginx-node:" -m tcp --dport 30136 -j KUBE-MARK-MASQ',
    '-A KUBE-NODEPORTS -p tcp -m comment --comment "default/k8s-nginx-node:" -m tcp --dport 30136 -j KUBE-SVC-RD5DSC6PXE26GCYZ',
    '-A KUBE-SEP-VRKO3GZ2XUCPVWY5 -s 10.244.0.115/32 -m comment --comment "default/k8s-nginx-node:" -j KUBE-MARK-MASQ',
    '-A KUBE-SEP-VRKO3GZ2XUCPVWY5 -p tcp -m comment --comment "default/k8s-nginx-node:" -m tcp -j DNAT --to-destination 10.244.0.115:80',
    '-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.98.128.179/32 -p tcp -m comment --comment "default/k8s-nginx-node: cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ',
    '-A KUBE-SERVICES -d 10.98.128.179/32 -p tcp -m comment --comment "default/k8s-nginx-node: cluster IP" -m tcp --dport 80 -j KUBE-SVC-RD5DSC6PXE26GCYZ',
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
  ]) {
    t.true(saved.includes(blogLine), blogLine);
  }
  const svc = saved.filter((l) => l.startsWith('-A KUBE-SVC-RD5DSC6PXE26GCYZ'));
  t.deepEqual(
    svc.map((l) => l.split(' -j ')[1]),
    ['KUBE-SEP-YNJKNN6SS5424R7C', 'KUBE-SEP-ZGMDZ7UNNV74OV5B', 'KUBE-SEP-VRKO3GZ2XUCPVWY5'],
  );
  // The nodeports jump stays the last rule of KUBE-SERVICES.
  t.regex(saved.filter((l) => l.startsWith('-A KUBE-SERVICES ')).at(-1) ?? '', /-j KUBE-NODEPORTS$/);
});

test('L6: affinity rules as saved equal the blog dump verbatim, rcheck before statistic', (t) => {
  const affinity: Service = {
    name: 'k8s-nginx-affinity',
    clusterIP: '10.109.59.245',
    port: 80,
    protocol: 'tcp',
    endpoints: ['10.244.0.143', '10.244.0.144', '10.244.0.145'],
    sessionAffinity: { timeoutSeconds: 10800 },
  };
  const saved = lines(renderRulesAsSaved([affinity], BLOG).nat);
  t.true(
    saved.includes(
      '-A KUBE-SVC-UBXGHWUUHMMRNNE6 -m comment --comment "default/k8s-nginx-affinity:" -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-YFKOY7G33LWKGTLC --mask 255.255.255.255 --rsource -j KUBE-SEP-YFKOY7G33LWKGTLC',
    ),
  );
  t.true(
    saved.includes(
      '-A KUBE-SEP-HDMJEKA4BFKBU6OK -p tcp -m comment --comment "default/k8s-nginx-affinity:" -m recent --set --name KUBE-SEP-HDMJEKA4BFKBU6OK --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.244.0.145:80',
    ),
  );
  const svc = saved.filter((l) => l.startsWith('-A KUBE-SVC-UBXGHWUUHMMRNNE6 '));
  t.deepEqual(
    svc.map((l) => (l.includes('--rcheck') ? 'rcheck' : l.includes('--probability') ? 'statistic' : 'last')),
    ['rcheck', 'rcheck', 'rcheck', 'statistic', 'statistic', 'last'],
  );
  t.regex(svc[3] ?? '', /--probability 0\.33332999982 -j KUBE-SEP-YFKOY7G33LWKGTLC$/);
});

// ---- Appendix A.1 structure --------------------------------------------------------------------

test('A.1 structure: 3 endpoints with affinity and NodePort, chain by chain', (t) => {
  const svc: Service = {
    ...cluster,
    name: 'web',
    type: 'NodePort',
    nodePort: 30080,
    sessionAffinity: { timeoutSeconds: 180 },
  };
  const set = buildKubeProxyRules([svc], BLOG);
  const [{ svc: svcChain, seps }] = set.services as [(typeof set.services)[number]];
  const rulesOf = (chain: string) => set.nat.rules.filter((r) => r.chain === chain).map((r) => r.args.join(' '));

  t.deepEqual(set.nat.chains, [
    'KUBE-SERVICES',
    'KUBE-NODEPORTS',
    'KUBE-POSTROUTING',
    'KUBE-MARK-MASQ',
    'KUBE-MARK-DROP',
    svcChain,
    ...seps.map((e) => e.chain),
  ]);
  t.deepEqual(rulesOf('KUBE-NODEPORTS'), [
    '-p tcp -m comment --comment default/web: -m tcp --dport 30080 -j KUBE-MARK-MASQ',
    `-p tcp -m comment --comment default/web: -m tcp --dport 30080 -j ${svcChain}`,
  ]);
  const services = rulesOf('KUBE-SERVICES');
  t.is(services.length, 3);
  t.regex(services[0] ?? '', /^! -s 10\.244\.0\.0\/16 -d 10\.98\.51\.150\/32 .* -j KUBE-MARK-MASQ$/);
  t.regex(services[1] ?? '', new RegExp(`^-d 10\\.98\\.51\\.150/32 .* -j ${svcChain}$`));
  t.regex(services[2] ?? '', /--dst-type LOCAL -j KUBE-NODEPORTS$/);

  const balancing = rulesOf(svcChain);
  t.is(balancing.length, 6);
  seps.forEach((ep, i) =>
    t.true(balancing[i]?.includes(`--rcheck --seconds 180 --reap --name ${ep.chain} `), balancing[i]),
  );
  const probabilities = balancing.slice(3).map((r) => probabilityOf(r));
  t.deepEqual(probabilities, [0.33333, 0.5, undefined]);
  t.true(balancing[5]?.endsWith(`-j ${seps[2]?.chain}`));

  for (const ep of seps) {
    const [hairpin, dnat] = rulesOf(ep.chain);
    t.is(hairpin, `-s ${ep.ip}/32 -m comment --comment default/web: -j KUBE-MARK-MASQ`);
    t.is(
      dnat,
      `-p tcp -m comment --comment default/web: -m recent --set --name ${ep.chain} --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination ${ep.endpoint}`,
    );
  }
});

test('A.1 without clusterCIDR: no masquerade rule for the cluster IP and no pod-CIDR forward rules', (t) => {
  const { nat, filter } = renderKubeProxyRules([cluster], { era: 'blog' });
  t.false(nat.includes('! -s'));
  t.is(lines(nat).filter((l) => l.startsWith('-A KUBE-SERVICES ')).length, 2);
  t.false(filter.includes('conntrack pod'));
});

test('A.3 probabilities: rule k of n carries 1/(n-k+1), written %0.5f', (t) => {
  const probs = (n: number) =>
    lines(
      renderKubeProxyRules([{ ...cluster, endpoints: Array.from({ length: n }, (_, i) => `10.244.0.${i + 2}`) }], BLOG)
        .nat,
    )
      .map((l) => /--probability (\S+)/.exec(l)?.[1])
      .filter((p) => p !== undefined);
  t.deepEqual(probs(1), []);
  t.deepEqual(probs(2), ['0.50000']);
  t.deepEqual(probs(3), ['0.33333', '0.50000']);
  t.deepEqual(probs(4), ['0.25000', '0.33333', '0.50000']);
  // Go's %0.5f rounds an exact tie (1/64 = 0.015625) to even; toFixed alone would give 0.01563.
  t.is(probs(64)[0], '0.01562');
});

test('a service without endpoints gets the filter REJECT rules and no KUBE-SVC chain', (t) => {
  const empty: Service = {
    name: 'empty',
    clusterIP: '10.96.0.50',
    port: 53,
    protocol: 'udp',
    endpoints: [],
    type: 'NodePort',
    nodePort: 30053,
  };
  const { nat, filter } = renderKubeProxyRules([cluster, empty], BLOG);
  t.false(nat.includes('default/empty:'));
  t.is(lines(nat).filter((l) => l.startsWith(':KUBE-SVC-')).length, 1);
  const f = lines(filter);
  t.true(f.includes(':KUBE-SERVICES - [0:0]'));
  t.true(f.includes(':KUBE-EXTERNAL-SERVICES - [0:0]'));
  t.true(
    f.includes(
      '-A KUBE-SERVICES -d 10.96.0.50/32 -p udp -m comment --comment "default/empty: has no endpoints" -m udp --dport 53 -j REJECT',
    ),
  );
  t.true(
    f.includes(
      '-A KUBE-EXTERNAL-SERVICES -p udp -m comment --comment "default/empty: has no endpoints" -m addrtype --dst-type LOCAL -m udp --dport 30053 -j REJECT',
    ),
  );
  t.true(
    f.includes(
      '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    ),
  );
  t.true(
    f.includes(
      '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
    ),
  );
});

// ---- omit --------------------------------------------------------------------------------------

test('omit removes exactly the named rules; scoped ids only for that service or endpoint', (t) => {
  const node: Service = { ...cluster, name: 'node', clusterIP: '10.98.128.179', type: 'NodePort', nodePort: 30136 };
  const full = lines(renderKubeProxyRules([cluster, node], BLOG).nat);
  const without = (omit: ProxyOptions['omit']) => {
    const kept = lines(renderKubeProxyRules([cluster, node], { ...BLOG, omit }).nat);
    return full.filter((l) => !kept.includes(l));
  };
  t.deepEqual(without(['nodeports-jump']), [full.find((l) => l.includes('-j KUBE-NODEPORTS')) as string]);
  t.deepEqual(without(['nodeport-mark-masq']), [
    '-A KUBE-NODEPORTS -p tcp -m comment --comment "default/node:" -m tcp --dport 30136 -j KUBE-MARK-MASQ',
  ]);
  const hairpins = without(['sep-hairpin-masq']);
  t.is(hairpins.length, 6);
  t.true(hairpins.every((l) => /^-A KUBE-SEP-\S+ -s 10\.244\.0\.\d\/32 .* -j KUBE-MARK-MASQ$/.test(l)));
  const scoped = without(['sep-hairpin-masq@k8s-nginx-cluster']);
  t.is(scoped.length, 3);
  t.true(scoped.every((l) => l.includes('"default/k8s-nginx-cluster:"')));
  t.deepEqual(without(['sep-hairpin-masq@default/node', 'clusterip-mark-masq@node']).length, 4);
  const onePod = without(['sep-hairpin-masq@10.244.0.2']);
  t.is(onePod.length, 2);
  t.true(onePod.every((l) => l.includes('-s 10.244.0.2/32')));
  t.deepEqual(without(['services-jump']).length, 2);
  const filterKept = renderKubeProxyRules([cluster], { ...BLOG, omit: ['forward-mark-accept'] }).filter;
  t.false(filterKept.includes('-m mark --mark 0x4000/0x4000 -j ACCEPT'));
  t.true(filterKept.includes(':KUBE-FORWARD - [0:0]'));
});

test('omit rejects unknown ids, unknown scopes and ids that match nothing', (t) => {
  const err = (omit: string[]) =>
    t.throws(() => renderKubeProxyRules([cluster], { ...BLOG, omit: omit as ProxyOptions['omit'] }), {
      instanceOf: LabError,
    });
  t.regex(err(['nodeport-jump'])?.message ?? '', /unknown rule id/);
  t.regex(err(['sep-hairpin-masq@nosuch'])?.message ?? '', /names no service/);
  t.regex(err(['nodeport-mark-masq'])?.message ?? '', /matches no rule/); // no NodePort service
  t.regex(err(['affinity-rcheck'])?.message ?? '', /matches no rule/);
});

test('invalid services are LabErrors naming the service and field', (t) => {
  const bad = (s: Partial<Service>) =>
    t.throws(() => renderKubeProxyRules([{ ...cluster, ...s }], BLOG), { instanceOf: LabError })?.message ?? '';
  t.regex(bad({ clusterIP: '10.98.51' }), /k8s-nginx-cluster: clusterIP/);
  t.regex(bad({ endpoints: ['10.244.0.2', '10.244.0.2:80'] }), /listed twice/);
  t.regex(bad({ endpoints: ['pod-a'] }), /endpoint must be/);
  t.regex(bad({ type: 'NodePort' }), /needs nodePort/);
  t.regex(bad({ nodePort: 30000 }), /type is not 'NodePort'/);
  t.regex(bad({ name: 'Has Space' }), /DNS label/);
  t.regex(bad({ sessionAffinity: { timeoutSeconds: 0 } }), /timeoutSeconds/);
  t.throws(() => renderKubeProxyRules([cluster, cluster], BLOG), { instanceOf: LabError, message: /listed twice/ });
  t.throws(() => renderKubeProxyRules([cluster], { era: 'blog', clusterCIDR: '10.244.0.0' }), { instanceOf: LabError });
});

// ---- numbers -----------------------------------------------------------------------------------

test('numbers: saved probability text and numeric parsing (G5)', (t) => {
  t.is(savedProbability(0.33333), '0.33332999982');
  t.is(savedProbability(0.5), '0.50000000000');
  t.is(savedProbability(0.3333333333), '0.33333333349');
  t.is(probabilityOf('-A X -m statistic --mode random --probability 0.33332999982 -j Y'), 0.33332999982);
  t.is(probabilityOf('-A X -j Y'), undefined);
  t.true(closeTo(0.33332999982, 1 / 3));
  t.true(closeTo(0.33333333349, 1 / 3));
  t.false(closeTo(0.3332, 1 / 3));
});

test('numbers: MARK targets in every spelling give the same value/mask (G6)', (t) => {
  const or = markTargetOf('-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000');
  t.deepEqual(or, { value: 0x4000, mask: 0x4000, kind: 'or' });
  t.deepEqual(markTargetOf('-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000'), or);
  const xor = markTargetOf('-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000');
  t.deepEqual(xor, { value: 0x4000, mask: 0, kind: 'xor' });
  t.deepEqual(markTargetOf('-j MARK --set-xmark 0x4000/0x0'), xor);
  t.deepEqual(markTargetOf('-j MARK --set-mark 0x10'), { value: 0x10, mask: 0xffffffff, kind: 'set' });
  t.deepEqual(markTargetOf('-j MARK --and-mark 0xff'), { value: 0, mask: 0xffffff00, kind: 'and' });
  t.is(markTargetOf('-j ACCEPT'), undefined);
  t.is(applyMark(0x8001, or as NonNullable<typeof or>), 0xc001);
  t.is(applyMark(0xc001, xor as NonNullable<typeof xor>), 0x8001);
  t.deepEqual(markMatchOf('-m mark ! --mark 0x4000/0x4000 -j RETURN'), { value: 0x4000, mask: 0x4000, negated: true });
  t.deepEqual(markMatchOf('-m mark --mark 0x8000/0x8000 -j DROP'), { value: 0x8000, mask: 0x8000, negated: false });
});

test('savedArgs: the spellings iptables-save changes', (t) => {
  t.deepEqual(savedArgs(['-j', 'MARK', '--or-mark', '0x4000']), ['-j', 'MARK', '--set-xmark', '0x4000/0x4000']);
  t.deepEqual(savedArgs(['-j', 'MARK', '--xor-mark', '0x4000']), ['-j', 'MARK', '--set-xmark', '0x4000/0x0']);
  t.deepEqual(savedArgs(['-p', 'tcp', '--dport', '80', '-j', 'ACCEPT']), [
    '-p',
    'tcp',
    '-m',
    'tcp',
    '--dport',
    '80',
    '-j',
    'ACCEPT',
  ]);
  t.deepEqual(savedArgs(['-p', 'tcp', '-m', 'tcp', '--dport', '80', '-j', 'REJECT']), [
    '-p',
    'tcp',
    '-m',
    'tcp',
    '--dport',
    '80',
    '-j',
    'REJECT',
    '--reject-with',
    'icmp-port-unreachable',
  ]);
  t.deepEqual(savedArgs(['-m', 'statistic', '--mode', 'random', '--probability', '0.3333333333']), [
    '-m',
    'statistic',
    '--mode',
    'random',
    '--probability',
    '0.33333333349',
  ]);
});

// ---- the real kernel ---------------------------------------------------------------------------

function run(argv: string[], input?: string): string {
  const [cmd, ...args] = argv as [string, ...string[]];
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** A fresh, empty network namespace for one test, deleted when the test ends. */
function freshNamespace(t: { teardown: (fn: () => void) => void }): string {
  const ns = `hk2-${randomBytes(3).toString('hex')}`;
  run(['ip', 'netns', 'add', ns]);
  t.teardown(() => {
    spawnSync('ip', ['netns', 'del', ns]);
  });
  return ns;
}

/** iptables-save of one table without its timestamps and built-in chain declarations. */
function savedTable(ns: string, table: 'nat' | 'filter'): string[] {
  return lines(run(['ip', 'netns', 'exec', ns, 'iptables-save', '-t', table])).filter(
    (l) => !l.startsWith('#') && !/^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) /.test(l),
  );
}

test.serial(
  'real kernel: iptables-restore --noflush loads the rules and iptables-save reads back renderRulesAsSaved',
  (t) => {
    const services: Service[] = [
      cluster,
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
      {
        name: 'empty',
        clusterIP: '10.96.0.50',
        port: 53,
        protocol: 'udp',
        type: 'NodePort',
        nodePort: 30053,
        endpoints: [],
      },
    ];
    const ns = freshNamespace(t);
    const rendered = renderKubeProxyRules(services, BLOG);
    run(['ip', 'netns', 'exec', ns, 'iptables-restore', '--noflush'], rendered.nat + rendered.filter);

    const expected = renderRulesAsSaved(services, BLOG);
    const nat = savedTable(ns, 'nat');
    const filter = savedTable(ns, 'filter');
    t.deepEqual(nat, lines(expected.nat));
    t.deepEqual(filter, lines(expected.filter));

    // Chains: one KUBE-SVC per service with endpoints, one KUBE-SEP per endpoint.
    const set = buildKubeProxyRules(services, BLOG);
    for (const s of set.services.filter((x) => x.seps.length > 0)) {
      t.true(nat.includes(`:${s.svc} - [0:0]`), s.svc);
      for (const ep of s.seps) t.true(nat.includes(`:${ep.chain} - [0:0]`), ep.chain);
    }
    // Probabilities, numerically (G5): each KUBE-SVC chain picks 1/3, then 1/2, then the rest.
    for (const s of set.services.filter((x) => x.seps.length === 3)) {
      const probs = nat
        .filter((l) => l.startsWith(`-A ${s.svc} `) && !l.includes('--rcheck'))
        .map((l) => probabilityOf(l));
      t.is(probs.length, 3);
      t.true(closeTo(probs[0] as number, 1 / 3), String(probs[0]));
      t.true(closeTo(probs[1] as number, 1 / 2), String(probs[1]));
      t.is(probs[2], undefined);
    }
    // Marks, numerically (G6).
    const rule = (prefix: string) =>
      nat.find((l) => l.startsWith(prefix)) ?? filter.find((l) => l.startsWith(prefix)) ?? '';
    t.deepEqual(markTargetOf(rule('-A KUBE-MARK-MASQ ')), { value: 0x4000, mask: 0x4000, kind: 'or' });
    t.deepEqual(markTargetOf(rule('-A KUBE-MARK-DROP ')), { value: 0x8000, mask: 0x8000, kind: 'or' });
    t.deepEqual(markMatchOf(rule('-A KUBE-POSTROUTING ')), { value: 0x4000, mask: 0x4000, negated: false });
    t.deepEqual(markMatchOf(rule('-A KUBE-FIREWALL ')), { value: 0x8000, mask: 0x8000, negated: false });
  },
);

test.serial(
  'real kernel: savedArgs predicts iptables-save for the later-era spellings (or/xor-mark, %0.10f, implicit -m tcp)',
  (t) => {
    const ns = freshNamespace(t);
    const written = [
      ['-A', 'KUBE-MARK-MASQ', '-j', 'MARK', '--or-mark', '0x4000'],
      ['-A', 'KUBE-POSTROUTING', '-m', 'mark', '!', '--mark', '0x4000/0x4000', '-j', 'RETURN'],
      ['-A', 'KUBE-POSTROUTING', '-j', 'MARK', '--xor-mark', '0x4000'],
      ['-A', 'KUBE-SVC-X', '-m', 'statistic', '--mode', 'random', '--probability', '0.3333333333', '-j', 'RETURN'],
      ['-A', 'KUBE-SVC-X', '-d', '10.96.0.1/32', '-p', 'tcp', '--dport', '443', '-j', 'RETURN'],
    ];
    const input = [
      '*nat',
      ':KUBE-MARK-MASQ - [0:0]',
      ':KUBE-POSTROUTING - [0:0]',
      ':KUBE-SVC-X - [0:0]',
      ...written.map((w) => w.join(' ')),
      'COMMIT',
      '',
    ].join('\n');
    run(['ip', 'netns', 'exec', ns, 'iptables-restore', '--noflush'], input);
    const saved = savedTable(ns, 'nat').filter((l) => l.startsWith('-A '));
    t.deepEqual(
      saved,
      written.map((w) => savedArgs(w).join(' ')),
    );
    t.deepEqual(markTargetOf(saved[2] ?? ''), { value: 0x4000, mask: 0, kind: 'xor' });
  },
);
