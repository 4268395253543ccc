// Renders the iptables rules kube-proxy (iptables mode) would install for a set of Services, as
// iptables-restore input for `iptables-restore --noflush` (docs/labs.md#kube-proxy-blog-era, the L4 rule set),
// and as iptables-save prints them back (for `nflab show`).
//
// The input never flushes built-in chains: it declares only KUBE-* chains and *appends* its jumps to
// PREROUTING/OUTPUT/POSTROUTING/INPUT/FORWARD, so it is loaded once into a fresh node namespace.

import { LabError } from '../errors.ts';
import { chainsOf, type ServiceChains } from './hash.ts';
import { buildCurrentRules } from './render-current.ts';
import { savedProbability } from './numbers.ts';
import { savedWordOrder } from './saved-order.ts';
import {
  isIPv4Cidr,
  OMITTABLE_RULES,
  resolveService,
  type OmittableRule,
  type ProxyEra,
  type ProxyOptions,
  type ResolvedService,
  type Service,
} from './service.ts';

export type RuleTable = 'nat' | 'filter';

/** One `-A CHAIN args…` line. `args` are argv-like words; the word after `--comment` is printed quoted. */
export interface KubeRule {
  chain: string;
  args: string[];
  /** Set on rules a lab may omit (ProxyOptions.omit). */
  id?: OmittableRule;
  /** What `<id>@<scope>` may name for this rule: service name, namespace/name, endpoint IP. */
  scopes?: string[];
  /** Inserted at the top of its (built-in) chain, as kube-proxy's jump rules are: `-I CHAIN 1`. */
  insert?: boolean;
  /** The words as kube-proxy wrote them, when `args` holds iptables-save's spelling (lab-rules.ts). */
  written?: string[];
}

export interface KubeTable {
  /** User chains to declare (`:CHAIN - [0:0]`), in kube-proxy's order. */
  chains: string[];
  rules: KubeRule[];
}

export interface KubeRuleSet {
  nat: KubeTable;
  filter: KubeTable;
  /** Chain names per service, in input order (for labs that point at a KUBE-SVC / KUBE-SEP chain). */
  services: (ServiceChains & { service: ResolvedService })[];
}

export interface RenderedRules {
  nat: string;
  filter: string;
}

const MARK_MASQ = 'KUBE-MARK-MASQ';
const MARK_DROP = 'KUBE-MARK-DROP';
const MASQ_MARK = '0x4000';
const DROP_MARK = '0x8000';
const AFFINITY_MASK = ['--mask', '255.255.255.255', '--rsource'];

/** The parts of the rule set that changed between kube-proxy generations. */
interface EraStyle {
  /** The `--probability` text for the rule that picks one of `remaining` endpoints. */
  probability(remaining: number): string;
  /** KUBE-MARK-MASQ's one rule. */
  markMasq: string[];
  /** KUBE-POSTROUTING's rules. */
  postrouting: Pick<KubeRule, 'args' | 'id'>[];
}

function eraStyle(era: ProxyEra): EraStyle {
  switch (era) {
    case 'blog':
      return {
        probability: (remaining) => goFixed(1 / remaining, 5),
        markMasq: ['-j', 'MARK', '--set-xmark', `${MASQ_MARK}/${MASQ_MARK}`],
        postrouting: [
          {
            args: [
              '-m',
              'comment',
              '--comment',
              'kubernetes service traffic requiring SNAT',
              '-m',
              'mark',
              '--mark',
              `${MASQ_MARK}/${MASQ_MARK}`,
              '-j',
              'MASQUERADE',
            ],
            id: 'postrouting-masquerade',
          },
        ],
      };
    // v1.19: the blog's structure with PR #92035's marks (--or-mark, a three-rule KUBE-POSTROUTING)
    // and %0.10f probabilities; the hash drops the unnamed port's ':' (hash.ts).
    case 'v1.19':
      return {
        probability: (remaining) => goFixed(1 / remaining, 10),
        markMasq: ['-j', 'MARK', '--or-mark', MASQ_MARK],
        postrouting: [
          { args: ['-m', 'mark', '!', '--mark', `${MASQ_MARK}/${MASQ_MARK}`, '-j', 'RETURN'] },
          { args: ['-j', 'MARK', '--xor-mark', MASQ_MARK] },
          {
            args: ['-m', 'comment', '--comment', 'kubernetes service traffic requiring SNAT', '-j', 'MASQUERADE'],
            id: 'postrouting-masquerade',
          },
        ],
      };
    case 'current':
    case 'nftables':
      throw new LabError(`the ${era} profile is built by its own renderer`);
    default: {
      const unknown: never = era;
      throw new LabError(`unknown kube-proxy era ${JSON.stringify(unknown)}`);
    }
  }
}

/**
 * Go's fmt %0.Nf of a probability 1/k: the exact binary value rounded half-to-even. JavaScript's
 * toFixed rounds the same exact value but breaks ties upwards; a true tie needs k a power of two.
 */
function goFixed(x: number, digits: number): string {
  const scaled = x * 10 ** digits;
  const floor = Math.floor(scaled);
  const powerOfTwo = Number.isInteger(Math.log2(1 / x));
  if (powerOfTwo && scaled - floor === 0.5)
    return ((floor % 2 === 0 ? floor : floor + 1) / 10 ** digits).toFixed(digits);
  return x.toFixed(digits);
}

function comment(text: string): string[] {
  return ['-m', 'comment', '--comment', text];
}

function serviceScopes(s: ResolvedService): string[] {
  return [s.name, `${s.namespace}/${s.name}`];
}

/** Builds the rule model; both renderers print it. Throws LabError on invalid services or options. */
export function buildKubeProxyRules(services: Service[], opts: ProxyOptions): KubeRuleSet {
  if (opts.era === 'nftables')
    throw new LabError(
      'the nftables profile writes no iptables rules (a lab that checks iptables rules cannot run under it yet)',
    );
  if (!PROFILE_ERAS.includes(opts.era))
    throw new LabError(
      `proxy options: unknown kube-proxy profile ${JSON.stringify(opts.era)} (known: ${PROFILE_ERAS.join(', ')})`,
    );
  if (opts.clusterCIDR !== undefined && !isIPv4Cidr(opts.clusterCIDR)) {
    throw new LabError(`proxy options: clusterCIDR must be an IPv4 CIDR, got ${JSON.stringify(opts.clusterCIDR)}`);
  }
  const resolved = services.map(resolveService);
  if (opts.era === 'current') {
    const set = buildCurrentRules(resolved, opts);
    checkUnique(set.services);
    const omitted = applyOmissions([set.nat, set.filter], opts.omit ?? [], set.services);
    return { nat: omitted[0], filter: omitted[1], services: set.services };
  }
  refuseUnsupported(resolved, opts.era);
  const style = eraStyle(opts.era);
  const chained = resolved.map((s) => ({ ...chainsOf(s, opts.era), service: s }));
  checkUnique(chained);

  const nat: KubeTable = {
    chains: ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', MARK_MASQ, MARK_DROP],
    rules: [],
  };
  const filter: KubeTable = { chains: ['KUBE-FORWARD', 'KUBE-FIREWALL'], rules: [] };
  const addNat = (chain: string, args: string[], id?: OmittableRule, scopes?: string[]) =>
    nat.rules.push({ chain, args, ...(id && { id }), ...(scopes && { scopes }) });
  const addFilter = (chain: string, args: string[], id?: OmittableRule, scopes?: string[]) =>
    filter.rules.push({ chain, args, ...(id && { id }), ...(scopes && { scopes }) });

  // Jumps from the built-in chains, then the mark and postrouting chains.
  const portals = [...comment('kubernetes service portals'), '-j', 'KUBE-SERVICES'];
  addNat('PREROUTING', portals, 'services-jump');
  addNat('OUTPUT', portals, 'services-jump');
  addNat('POSTROUTING', [...comment('kubernetes postrouting rules'), '-j', 'KUBE-POSTROUTING'], 'postrouting-jump');
  addNat(MARK_MASQ, style.markMasq);
  addNat(MARK_DROP, ['-j', 'MARK', '--set-xmark', `${DROP_MARK}/${DROP_MARK}`]);
  for (const r of style.postrouting) addNat('KUBE-POSTROUTING', r.args, r.id);

  const rejectClusterIP: KubeRule[] = [];
  const rejectNodePort: KubeRule[] = [];

  for (const { service: s, portName, svc, seps } of chained) {
    const proto = s.protocol;
    const scopes = serviceScopes(s);
    if (s.endpoints.length === 0) {
      // kube-proxy creates no KUBE-SVC chain for it; the filter table refuses new connections instead.
      const why = comment(`${portName} has no endpoints`);
      rejectClusterIP.push({
        chain: 'KUBE-SERVICES',
        args: ['-d', `${s.clusterIP}/32`, '-p', proto, ...why, '-m', proto, '--dport', String(s.port), '-j', 'REJECT'],
        id: 'no-endpoints-reject',
        scopes,
      });
      if (s.nodePort !== undefined) {
        rejectNodePort.push({
          chain: 'KUBE-EXTERNAL-SERVICES',
          args: [
            '-p',
            proto,
            ...why,
            '-m',
            'addrtype',
            '--dst-type',
            'LOCAL',
            '-m',
            proto,
            '--dport',
            String(s.nodePort),
            '-j',
            'REJECT',
          ],
          id: 'no-endpoints-reject',
          scopes,
        });
      }
      continue;
    }
    nat.chains.push(svc, ...seps.map((e) => e.chain));

    const clusterIPMatch = [
      '-d',
      `${s.clusterIP}/32`,
      '-p',
      proto,
      ...comment(`${portName} cluster IP`),
      '-m',
      proto,
      '--dport',
      String(s.port),
    ];
    if (opts.clusterCIDR !== undefined)
      addNat(
        'KUBE-SERVICES',
        ['!', '-s', opts.clusterCIDR, ...clusterIPMatch, '-j', MARK_MASQ],
        'clusterip-mark-masq',
        scopes,
      );
    addNat('KUBE-SERVICES', [...clusterIPMatch, '-j', svc]);

    if (s.nodePort !== undefined) {
      const nodePortMatch = ['-p', proto, ...comment(portName), '-m', proto, '--dport', String(s.nodePort)];
      addNat('KUBE-NODEPORTS', [...nodePortMatch, '-j', MARK_MASQ], 'nodeport-mark-masq', scopes);
      addNat('KUBE-NODEPORTS', [...nodePortMatch, '-j', svc], 'nodeport-svc-jump', scopes);
    }

    // KUBE-SVC: affinity look-ups first, so a known client skips the random choice.
    if (s.affinitySeconds !== undefined) {
      for (const ep of seps) {
        addNat(
          svc,
          [
            ...comment(portName),
            '-m',
            'recent',
            '--rcheck',
            '--seconds',
            String(s.affinitySeconds),
            '--reap',
            '--name',
            ep.chain,
            ...AFFINITY_MASK,
            '-j',
            ep.chain,
          ],
          'affinity-rcheck',
          [...scopes, ep.ip],
        );
      }
    }
    // Rule i (0-based) of n matches 1/(n-i) of what reaches it, so each endpoint gets 1/n overall.
    const n = seps.length;
    seps.forEach((ep, i) => {
      const statistic =
        i < n - 1 ? ['-m', 'statistic', '--mode', 'random', '--probability', style.probability(n - i)] : [];
      addNat(svc, [...comment(portName), ...statistic, '-j', ep.chain]);
    });

    // KUBE-SEP: hairpin masquerade (a pod reaching itself), then the DNAT.
    for (const ep of seps) {
      addNat(ep.chain, ['-s', `${ep.ip}/32`, ...comment(portName), '-j', MARK_MASQ], 'sep-hairpin-masq', [
        ...scopes,
        ep.ip,
      ]);
      const remember =
        s.affinitySeconds !== undefined ? ['-m', 'recent', '--set', '--name', ep.chain, ...AFFINITY_MASK] : [];
      addNat(ep.chain, [
        '-p',
        proto,
        ...comment(portName),
        ...remember,
        '-m',
        proto,
        '-j',
        'DNAT',
        '--to-destination',
        ep.endpoint,
      ]);
    }
  }

  addNat(
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
    'nodeports-jump',
  );

  // filter: kubelet's KUBE-FIREWALL and kube-proxy's KUBE-FORWARD (the L4 rule set) ...
  addFilter('INPUT', ['-j', 'KUBE-FIREWALL'], 'firewall-drop');
  addFilter('OUTPUT', ['-j', 'KUBE-FIREWALL'], 'firewall-drop');
  addFilter('FORWARD', [...comment('kubernetes forwarding rules'), '-j', 'KUBE-FORWARD'], 'forward-jump');
  // ... plus, only when some service has no endpoints, the chains that reject its new connections
  // (FORWARD for pods, OUTPUT for the node, INPUT for node ports).
  const newOnly = ['-m', 'conntrack', '--ctstate', 'NEW'];
  if (rejectNodePort.length > 0) {
    filter.chains.push('KUBE-EXTERNAL-SERVICES');
    addFilter('INPUT', [
      ...newOnly,
      ...comment('kubernetes externally-visible service portals'),
      '-j',
      'KUBE-EXTERNAL-SERVICES',
    ]);
  }
  if (rejectClusterIP.length > 0) {
    filter.chains.push('KUBE-SERVICES');
    addFilter('FORWARD', [...newOnly, ...comment('kubernetes service portals'), '-j', 'KUBE-SERVICES']);
    addFilter('OUTPUT', [...newOnly, ...comment('kubernetes service portals'), '-j', 'KUBE-SERVICES']);
  }
  addFilter(
    'KUBE-FIREWALL',
    [
      ...comment('kubernetes firewall for dropping marked packets'),
      '-m',
      'mark',
      '--mark',
      `${DROP_MARK}/${DROP_MARK}`,
      '-j',
      'DROP',
    ],
    'firewall-drop',
  );
  addFilter('KUBE-FORWARD', ['-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP']);
  addFilter(
    'KUBE-FORWARD',
    [...comment('kubernetes forwarding rules'), '-m', 'mark', '--mark', `${MASQ_MARK}/${MASQ_MARK}`, '-j', 'ACCEPT'],
    'forward-mark-accept',
  );
  if (opts.clusterCIDR !== undefined) {
    const established = ['-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'];
    addFilter('KUBE-FORWARD', [
      '-s',
      opts.clusterCIDR,
      ...comment('kubernetes forwarding conntrack pod source rule'),
      ...established,
    ]);
    addFilter('KUBE-FORWARD', [
      '-d',
      opts.clusterCIDR,
      ...comment('kubernetes forwarding conntrack pod destination rule'),
      ...established,
    ]);
  }
  filter.rules.push(...rejectClusterIP, ...rejectNodePort);

  const omitted = applyOmissions([nat, filter], opts.omit ?? [], chained);
  return { nat: omitted[0], filter: omitted[1], services: chained };
}

const PROFILE_ERAS: ProxyEra[] = ['blog', 'v1.19', 'current'];

/** Features the blog-era and v1.19 renderers do not model: refused by name, never rendered wrongly. */
function refuseUnsupported(resolved: ResolvedService[], era: ProxyEra): void {
  for (const s of resolved) {
    const where = `service ${s.namespace}/${s.name}${s.portName ? `:${s.portName}` : ''}`;
    const refuse = (field: string): never => {
      throw new LabError(`${where}: field "${field}" is not supported by the ${era} profile (use --profile current)`);
    };
    if (s.type === 'LoadBalancer') refuse('type: LoadBalancer');
    // (the current profile accepts a NodePort without its port, as kube-proxy's own test has one)
    if (s.type === 'NodePort' && s.nodePort === undefined)
      throw new LabError(`${where}: type NodePort needs nodePort (1-65535)`);
    if (s.externalIPs.length > 0) refuse('externalIPs');
    if (s.externalLocal) refuse('externalTrafficPolicy: Local');
  }
}

function checkUnique(chained: { svc: string; portName: string; service: ResolvedService }[]): void {
  const chains = new Map<string, string>();
  const nodePorts = new Map<string, string>();
  for (const { svc, portName, service } of chained) {
    const key = `${portName} (${service.protocol})`;
    if (chains.has(svc)) throw new LabError(`service ${key} is listed twice (both would use chain ${svc})`);
    chains.set(svc, key);
    if (service.nodePort !== undefined) {
      const np = `${service.protocol}/${service.nodePort}`;
      const other = nodePorts.get(np);
      if (other)
        throw new LabError(
          `service ${key}: nodePort ${np} is already used by ${other}; node ports share KUBE-NODEPORTS and must be unique`,
        );
      nodePorts.set(np, key);
    }
  }
}

function applyOmissions(
  tables: [KubeTable, KubeTable],
  omit: string[],
  chained: { service: ResolvedService }[],
): [KubeTable, KubeTable] {
  const knownScopes = new Set(
    chained.flatMap(({ service: s }) => [...serviceScopes(s), ...s.endpoints.map((e) => e.ip)]),
  );
  const requests = omit.map((entry) => {
    const at = entry.indexOf('@');
    const id = at < 0 ? entry : entry.slice(0, at);
    const scope = at < 0 ? undefined : entry.slice(at + 1);
    if (!(id in OMITTABLE_RULES)) {
      throw new LabError(
        `proxy options: omit ${JSON.stringify(entry)}: unknown rule id; known ids: ${Object.keys(OMITTABLE_RULES).join(', ')}`,
      );
    }
    if (scope !== undefined && !knownScopes.has(scope)) {
      throw new LabError(
        `proxy options: omit ${JSON.stringify(entry)}: ${JSON.stringify(scope)} names no service (name or namespace/name) or endpoint IP`,
      );
    }
    return { entry, id, scope, used: false };
  });
  const keep = (rule: KubeRule): boolean => {
    let dropped = false;
    for (const r of requests) {
      if (rule.id !== r.id) continue;
      if (r.scope !== undefined && !rule.scopes?.includes(r.scope)) continue;
      r.used = true;
      dropped = true;
    }
    return !dropped;
  };
  const result: [KubeTable, KubeTable] = [
    { chains: tables[0].chains, rules: tables[0].rules.filter(keep) },
    { chains: tables[1].chains, rules: tables[1].rules.filter(keep) },
  ];
  const unused = requests.find((r) => !r.used);
  if (unused)
    throw new LabError(`proxy options: omit ${JSON.stringify(unused.entry)} matches no rule of this rule set`);
  return result;
}

/** A rule's words; the comment quoted always (`always`) or, as kube-proxy ≥1.2x writes it, only when it holds a space. */
export function printArgs(args: string[], quote: 'always' | 'when-needed' = 'always'): string {
  return args
    .map((word, i) => (args[i - 1] === '--comment' && (quote === 'always' || /\s/.test(word)) ? `"${word}"` : word))
    .join(' ');
}

function printRule(r: KubeRule, args: string[], quote: 'always' | 'when-needed'): string {
  return `${r.insert ? `-I ${r.chain} 1` : `-A ${r.chain}`} ${printArgs(args, quote)}`.trimEnd();
}

function printTable(
  name: RuleTable,
  table: KubeTable,
  rules: KubeRule[],
  transform: (args: string[]) => string[],
  quote: 'always' | 'when-needed' = 'always',
): string {
  const lines = [
    `*${name}`,
    ...table.chains.map((c) => `:${c} - [0:0]`),
    ...rules.map((r) => printRule(r, transform(r.args), quote)),
    'COMMIT',
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * iptables-restore input (`iptables-restore --noflush`), one `*table … COMMIT` block per table.
 * For 'current' the jump rules kube-proxy inserts into the built-in chains come first as `-I … 1`,
 * the rest is what kube-proxy hands iptables-restore (its tests' expected text).
 */
export function renderKubeProxyRules(services: Service[], opts: ProxyOptions): RenderedRules {
  const set = buildKubeProxyRules(services, opts);
  const quote = opts.era === 'current' ? 'when-needed' : 'always';
  const ordered = (t: KubeTable) =>
    opts.era === 'current' ? [...t.rules.filter((r) => r.insert), ...t.rules.filter((r) => !r.insert)] : t.rules;
  return {
    nat: printTable('nat', set.nat, ordered(set.nat), (a) => a, quote),
    filter: printTable('filter', set.filter, ordered(set.filter), (a) => a, quote),
  };
}

const BUILTIN_CHAINS: Record<RuleTable, string[]> = {
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
};

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The same rules as iptables-save (1.8.9, nf_tables) prints them after loading: user chains sorted
 * by name, rules grouped per chain (built-in chains first, in hook order), and each rule in saved
 * spelling (see savedArgs). Built-in chain declarations are left out: their policies and other
 * rules belong to the node, not to kube-proxy.
 */
export function renderRulesAsSaved(services: Service[], opts: ProxyOptions): RenderedRules {
  const set = buildKubeProxyRules(services, opts);
  const transform = opts.era === 'current' ? savedWordOrder : savedArgs;
  const saved = (name: RuleTable, table: KubeTable): string => {
    const chains = [...new Set(table.chains)].sort(byCodeUnits);
    const order = [...BUILTIN_CHAINS[name], ...chains];
    // Each `-I CHAIN 1` lands above the ones before it.
    const inChain = (chain: string) => [
      ...table.rules.filter((r) => r.chain === chain && r.insert).reverse(),
      ...table.rules.filter((r) => r.chain === chain && !r.insert),
    ];
    const rules = order.flatMap(inChain).map((r) => ({ ...r, insert: false }));
    return printTable(name, { chains, rules }, rules, transform);
  };
  return { nat: saved('nat', set.nat), filter: saved('filter', set.filter) };
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/**
 * One rule's words as iptables-save prints them: probabilities at the kernel's 2^-31 resolution with
 * 11 decimals (G5), every MARK target as --set-xmark value/mask (G6), `--dport` preceded by its
 * `-m tcp|udp`, and REJECT with its default `--reject-with icmp-port-unreachable`.
 */
export function savedArgs(args: string[]): string[] {
  const out: string[] = [];
  let protocol: string | undefined;
  let protocolMatched = false;
  for (let i = 0; i < args.length; i++) {
    const word = args[i] as string;
    const next = args[i + 1];
    if (word === '-p' && next !== undefined) protocol = next;
    if (word === '-m' && next !== undefined && next === protocol) protocolMatched = true;
    if (word === '--probability' && next !== undefined) {
      out.push(word, savedProbability(Number(next)));
      i++;
    } else if ((word === '--or-mark' || word === '--xor-mark') && next !== undefined) {
      const value = Number(next);
      out.push('--set-xmark', `${hex(value)}/${word === '--or-mark' ? hex(value) : '0x0'}`);
      i++;
    } else if (word === '--set-xmark' && next !== undefined && !next.includes('/')) {
      out.push(word, `${hex(Number(next))}/0xffffffff`);
      i++;
    } else if ((word === '--dport' || word === '--sport') && protocol !== undefined && !protocolMatched) {
      // `-p tcp [!] --dport N` loads the tcp match implicitly; iptables-save names it.
      const negated = out[out.length - 1] === '!';
      if (negated) out.pop();
      out.push('-m', protocol, ...(negated ? ['!'] : []), word);
      protocolMatched = true;
    } else {
      out.push(word);
    }
  }
  const reject = out.indexOf('REJECT');
  if (reject > 0 && out[reject - 1] === '-j' && !out.includes('--reject-with'))
    out.push('--reject-with', 'icmp-port-unreachable');
  return out;
}
