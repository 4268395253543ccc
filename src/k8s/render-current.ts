// kube-proxy's iptables rules as v1.30 and later write them (the 'current' profile): the clusterIP
// masquerade rule inside KUBE-SVC, NodePorts / external IPs / load-balancer IPs through KUBE-EXT
// (and KUBE-FW for source ranges), `"<svc> -> ip:port"` endpoint comments, %0.10f probabilities,
// --or-mark / the three-rule KUBE-POSTROUTING, the localhost NodePort rule, and the filter chains
// that are always present. Checked rule by rule against TestOverallIPTablesRules
// (test/fixtures/kube-proxy/current). The words are in kube-proxy's own order (`-m tcp -p tcp -d …`).

import { LabError } from '../errors.ts';
import { chainsOf, endpointChainName } from './hash.ts';
import type { KubeRule, KubeRuleSet, KubeTable } from './render-iptables.ts';
import type { OmittableRule, ProxyOptions, ResolvedService } from './service.ts';

const MASQ = 'KUBE-MARK-MASQ';

/** Go's %0.10f of 1/n (no tie can occur at 10 digits for 1/n with n > 1 except powers of two, exact). */
export function probability10(n: number): string {
  return (1 / n).toFixed(10);
}

function hashOf(chain: string): string {
  return chain.slice('KUBE-SVC-'.length);
}

/** The comment word as kube-proxy writes it: quoted only when it holds a space. */
function comment(text: string): string[] {
  return ['-m', 'comment', '--comment', text];
}

/** Endpoints in kube-proxy's order: sorted by their "ip:port" string. */
function sortedEndpoints(s: ResolvedService): ResolvedService['endpoints'] {
  return [...s.endpoints].sort((a, b) => (a.hostPort < b.hostPort ? -1 : a.hostPort > b.hostPort ? 1 : 0));
}

/** kube-proxy drops most comments past this many endpoints ("large cluster mode"); not modelled. */
const LARGE_CLUSTER_ENDPOINTS = 1000;

export function buildCurrentRules(resolved: ResolvedService[], opts: ProxyOptions): KubeRuleSet {
  const endpoints = resolved.reduce((n, s) => n + s.endpoints.length, 0);
  if (endpoints > LARGE_CLUSTER_ENDPOINTS) {
    throw new LabError(
      `services: ${endpoints} endpoints: kube-proxy's large-cluster mode (over ${LARGE_CLUSTER_ENDPOINTS} endpoints, comments left out) is not supported by the current profile`,
    );
  }
  const nfacct = opts.nfacct ?? true;
  const localhostNodePorts = opts.localhostNodePorts ?? true;
  const nat: KubeTable = { chains: ['KUBE-NODEPORTS', 'KUBE-SERVICES', MASQ, 'KUBE-POSTROUTING'], rules: [] };
  const filter: KubeTable = {
    chains: [
      'KUBE-NODEPORTS',
      'KUBE-SERVICES',
      'KUBE-EXTERNAL-SERVICES',
      'KUBE-FIREWALL',
      'KUBE-FORWARD',
      'KUBE-PROXY-FIREWALL',
    ],
    rules: [],
  };
  const add = (table: KubeTable, chain: string, args: string[], extra: Partial<KubeRule> = {}) =>
    table.rules.push({ chain, args, ...extra });

  // Jumps from the built-in chains, inserted at the top (kube-proxy's iptablesJumpChains, in order).
  const NEW = ['-m', 'conntrack', '--ctstate', 'NEW'];
  const jumps: [KubeTable, string, string, string, string[], OmittableRule?][] = [
    [filter, 'INPUT', 'KUBE-EXTERNAL-SERVICES', 'kubernetes externally-visible service portals', NEW],
    [filter, 'FORWARD', 'KUBE-EXTERNAL-SERVICES', 'kubernetes externally-visible service portals', NEW],
    [filter, 'INPUT', 'KUBE-NODEPORTS', 'kubernetes health check service ports', []],
    [filter, 'FORWARD', 'KUBE-SERVICES', 'kubernetes service portals', NEW],
    [filter, 'OUTPUT', 'KUBE-SERVICES', 'kubernetes service portals', NEW],
    [filter, 'FORWARD', 'KUBE-FORWARD', 'kubernetes forwarding rules', [], 'forward-jump'],
    [filter, 'INPUT', 'KUBE-PROXY-FIREWALL', 'kubernetes load balancer firewall', NEW],
    [filter, 'OUTPUT', 'KUBE-PROXY-FIREWALL', 'kubernetes load balancer firewall', NEW],
    [filter, 'FORWARD', 'KUBE-PROXY-FIREWALL', 'kubernetes load balancer firewall', NEW],
    [nat, 'OUTPUT', 'KUBE-SERVICES', 'kubernetes service portals', [], 'services-jump'],
    [nat, 'PREROUTING', 'KUBE-SERVICES', 'kubernetes service portals', [], 'services-jump'],
    [nat, 'POSTROUTING', 'KUBE-POSTROUTING', 'kubernetes postrouting rules', [], 'postrouting-jump'],
  ];
  for (const [table, from, to, text, match, id] of jumps)
    add(table, from, [...comment(text), ...match, '-j', to], { insert: true, ...(id && { id }) });
  add(filter, 'INPUT', ['-j', 'KUBE-FIREWALL'], { insert: true });
  add(filter, 'OUTPUT', ['-j', 'KUBE-FIREWALL'], { insert: true });

  // Constant rules.
  if (localhostNodePorts) {
    add(filter, 'KUBE-FIREWALL', [
      ...comment('block incoming localnet connections'),
      '-d',
      '127.0.0.0/8',
      '!',
      '-s',
      '127.0.0.0/8',
      '-m',
      'conntrack',
      '!',
      '--ctstate',
      'RELATED,ESTABLISHED,DNAT',
      '-j',
      'DROP',
    ]);
  }
  add(filter, 'KUBE-FORWARD', [
    '-m',
    'conntrack',
    '--ctstate',
    'INVALID',
    ...(nfacct ? ['-m', 'nfacct', '--nfacct-name', 'ct_state_invalid_dropped_pkts'] : []),
    '-j',
    'DROP',
  ]);
  add(
    filter,
    'KUBE-FORWARD',
    [...comment('kubernetes forwarding rules'), '-m', 'mark', '--mark', '0x4000/0x4000', '-j', 'ACCEPT'],
    { id: 'forward-mark-accept' },
  );
  add(filter, 'KUBE-FORWARD', [
    ...comment('kubernetes forwarding conntrack rule'),
    '-m',
    'conntrack',
    '--ctstate',
    'RELATED,ESTABLISHED',
    '-j',
    'ACCEPT',
  ]);
  add(nat, MASQ, ['-j', 'MARK', '--or-mark', '0x4000']);
  add(nat, 'KUBE-POSTROUTING', ['-m', 'mark', '!', '--mark', '0x4000/0x4000', '-j', 'RETURN']);
  add(nat, 'KUBE-POSTROUTING', ['-j', 'MARK', '--xor-mark', '0x4000']);
  add(
    nat,
    'KUBE-POSTROUTING',
    [
      ...comment('kubernetes service traffic requiring SNAT'),
      '-j',
      'MASQUERADE',
      ...(opts.randomFully ? ['--random-fully'] : []),
    ],
    { id: 'postrouting-masquerade' },
  );

  const services: KubeRuleSet['services'] = [];
  for (const s of resolved) {
    const chains = chainsOf(s, 'current');
    services.push({ ...chains, service: s });
    const name = chains.portName;
    const scopes = [s.name, `${s.namespace}/${s.name}`];
    const proto = s.protocol;
    const hash = hashOf(chains.svc);
    const svcChain = chains.svc;
    const svlChain = `KUBE-SVL-${hash}`;
    const extChain = `KUBE-EXT-${hash}`;
    const fwChain = `KUBE-FW-${hash}`;
    const all = sortedEndpoints(s);
    const local = all.filter((e) => e.local);
    const clusterEps = all;
    const externalEps = s.externalLocal ? local : clusterEps;
    const hasEndpoints = all.length > 0;
    const hasInternal = clusterEps.length > 0;
    const hasExternal = externalEps.length > 0;
    const usesCluster = clusterEps.length > 0;
    const usesLocal = s.externalLocal && local.length > 0;
    const externallyReachable = s.nodePort !== undefined || s.externalIPs.length > 0 || s.loadBalancerIPs.length > 0;
    const usesExt = hasEndpoints && externallyReachable;
    const externalPolicyChain = s.externalLocal ? svlChain : svcChain;
    const externalTraffic = usesExt ? extChain : externalPolicyChain;
    const usesFW = hasEndpoints && s.loadBalancerIPs.length > 0 && s.sourceRanges.length > 0;
    const lbTraffic = usesFW ? fwChain : externalTraffic;
    const portMatch = (dst?: string) => [
      '-m',
      proto,
      '-p',
      proto,
      ...(dst ? ['-d', dst] : []),
      '--dport',
      String(s.port),
    ];
    const filterTarget = hasEndpoints ? 'DROP' : 'REJECT';
    const filterComment = hasEndpoints ? `${name} has no local endpoints` : `${name} has no endpoints`;
    const chainFor = (ep: { hostPort: string }) => endpointChainName(name, proto, ep.hostPort);

    if (usesCluster) nat.chains.push(svcChain);
    if (usesLocal) nat.chains.push(svlChain);
    if (usesExt) nat.chains.push(extChain);
    if (usesFW) nat.chains.push(fwChain);

    // Cluster IP: the masquerade rule lives in the service chain.
    if (hasInternal) {
      const args = [...comment(`${name} cluster IP`), ...portMatch(s.clusterIP)];
      if (opts.clusterCIDR !== undefined)
        add(nat, svcChain, [...args, '!', '-s', opts.clusterCIDR, '-j', MASQ], { id: 'clusterip-mark-masq', scopes });
      add(nat, 'KUBE-SERVICES', [...args, '-j', svcChain]);
    } else {
      add(
        filter,
        'KUBE-SERVICES',
        [...comment(`${name} has no endpoints`), ...portMatch(s.clusterIP), '-j', 'REJECT'],
        { id: 'no-endpoints-reject', scopes },
      );
    }
    for (const ip of s.externalIPs) {
      if (hasEndpoints)
        add(nat, 'KUBE-SERVICES', [...comment(`${name} external IP`), ...portMatch(ip), '-j', externalTraffic]);
      if (!hasExternal)
        add(filter, 'KUBE-EXTERNAL-SERVICES', [...comment(filterComment), ...portMatch(ip), '-j', filterTarget], {
          id: 'no-endpoints-reject',
          scopes,
        });
    }
    for (const ip of s.loadBalancerIPs) {
      if (hasEndpoints)
        add(nat, 'KUBE-SERVICES', [...comment(`${name} loadbalancer IP`), ...portMatch(ip), '-j', lbTraffic]);
      if (usesFW)
        add(filter, 'KUBE-PROXY-FIREWALL', [
          ...comment(`${name} traffic not accepted by ${fwChain}`),
          ...portMatch(ip),
          '-j',
          'DROP',
        ]);
    }
    if (!hasExternal) {
      for (const ip of s.loadBalancerIPs)
        add(filter, 'KUBE-EXTERNAL-SERVICES', [...comment(filterComment), ...portMatch(ip), '-j', filterTarget], {
          id: 'no-endpoints-reject',
          scopes,
        });
    }
    if (s.nodePort !== undefined) {
      const np = ['-m', proto, '-p', proto];
      if (hasEndpoints) {
        if (localhostNodePorts) {
          add(
            nat,
            'KUBE-NODEPORTS',
            [
              ...comment(name),
              ...np,
              '-d',
              '127.0.0.0/8',
              '--dport',
              String(s.nodePort),
              ...(nfacct ? ['-m', 'nfacct', '--nfacct-name', 'localhost_nps_accepted_pkts'] : []),
              '-j',
              externalTraffic,
            ],
            { id: 'nodeport-svc-jump', scopes },
          );
        }
        add(nat, 'KUBE-NODEPORTS', [...comment(name), ...np, '--dport', String(s.nodePort), '-j', externalTraffic], {
          id: 'nodeport-svc-jump',
          scopes,
        });
      }
      if (!hasExternal) {
        add(
          filter,
          'KUBE-EXTERNAL-SERVICES',
          [
            ...comment(filterComment),
            '-m',
            'addrtype',
            '--dst-type',
            'LOCAL',
            ...np,
            '--dport',
            String(s.nodePort),
            '-j',
            filterTarget,
          ],
          { id: 'no-endpoints-reject', scopes },
        );
      }
    }
    if (s.healthCheckNodePort !== undefined) {
      add(filter, 'KUBE-NODEPORTS', [
        ...comment(`${name} health check node port`),
        '-m',
        'tcp',
        '-p',
        'tcp',
        '--dport',
        String(s.healthCheckNodePort),
        '-j',
        'ACCEPT',
      ]);
    }

    if (usesExt) {
      if (!s.externalLocal) {
        add(nat, extChain, [...comment(`masquerade traffic for ${name} external destinations`), '-j', MASQ], {
          id: 'nodeport-mark-masq',
          scopes,
        });
      } else {
        if (opts.clusterCIDR !== undefined)
          add(nat, extChain, [
            ...comment(`pod traffic for ${name} external destinations`),
            '-s',
            opts.clusterCIDR,
            '-j',
            svcChain,
          ]);
        add(nat, extChain, [
          ...comment(`masquerade LOCAL traffic for ${name} external destinations`),
          '-m',
          'addrtype',
          '--src-type',
          'LOCAL',
          '-j',
          MASQ,
        ]);
        add(nat, extChain, [
          ...comment(`route LOCAL traffic for ${name} external destinations`),
          '-m',
          'addrtype',
          '--src-type',
          'LOCAL',
          '-j',
          svcChain,
        ]);
      }
      if (hasExternal) add(nat, extChain, ['-j', externalPolicyChain]);
    }
    if (usesFW) {
      for (const src of s.sourceRanges)
        add(nat, fwChain, [...comment(`${name} loadbalancer IP`), '-s', src, '-j', externalTraffic]);
      add(nat, fwChain, [...comment(`other traffic to ${name} will be dropped by KUBE-PROXY-FIREWALL`)]);
    }

    const toEndpoints = (chain: string, eps: ResolvedService['endpoints']) => {
      if (s.affinitySeconds !== undefined) {
        for (const ep of eps) {
          const sep = chainFor(ep);
          add(
            nat,
            chain,
            [
              ...comment(`${name} -> ${ep.hostPort}`),
              '-m',
              'recent',
              '--name',
              sep,
              '--rcheck',
              '--seconds',
              String(s.affinitySeconds),
              '--reap',
              '-j',
              sep,
            ],
            { id: 'affinity-rcheck', scopes: [...scopes, ep.ip] },
          );
        }
      }
      eps.forEach((ep, i) => {
        const statistic =
          i < eps.length - 1
            ? ['-m', 'statistic', '--mode', 'random', '--probability', probability10(eps.length - i)]
            : [];
        add(nat, chain, [...comment(`${name} -> ${ep.hostPort}`), ...statistic, '-j', chainFor(ep)]);
      });
    };
    if (usesCluster) toEndpoints(svcChain, clusterEps);
    if (usesLocal) toEndpoints(svlChain, local);

    for (const ep of all) {
      const sep = chainFor(ep);
      nat.chains.push(sep);
      add(nat, sep, [...comment(name), '-s', ep.ip, '-j', MASQ], {
        id: 'sep-hairpin-masq',
        scopes: [...scopes, ep.ip],
      });
      const remember = s.affinitySeconds !== undefined ? ['-m', 'recent', '--name', sep, '--set'] : [];
      add(nat, sep, [
        ...comment(name),
        ...remember,
        '-m',
        proto,
        '-p',
        proto,
        '-j',
        'DNAT',
        '--to-destination',
        ep.hostPort,
      ]);
    }
  }
  add(
    nat,
    'KUBE-SERVICES',
    [
      ...comment('kubernetes service nodeports; NOTE: this must be the last rule in this chain'),
      '-m',
      'addrtype',
      '--dst-type',
      'LOCAL',
      '-j',
      'KUBE-NODEPORTS',
    ],
    { id: 'nodeports-jump' },
  );
  return { nat, filter, services };
}
