#!/usr/bin/env -S node --import tsx
// Lab 06 (docs/labs.md#l6): sessionAffinity: ClientIP. kube-proxy remembers each client address in
// an xt_recent list named after the chosen endpoint chain (`-m recent --set`) and checks those
// lists before the random choice (`--rcheck --seconds 10800 --reap`).
import {
  BACKENDS,
  CLIENTS,
  CLUSTER_CIDR,
  defineLab,
  kubeChains,
  kubeProxyRules,
  kubeRuleCommand,
  kubeRules,
  output,
  podTopology,
  recent,
  rule,
  rules,
  ruleText,
  runIfMain,
  tcp,
  write,
  type KubeProxySpec,
  endpointChoices,
  savedRuleLine,
  nftChains,
  nftCommand,
  nftRules,
  nftAddRule,
  NFT_TABLE,
  type Step,
  kubeProxyProfile,
} from 'nflab';

const VIP = '10.109.59.245';
const SECONDS = 10800;
const PROXY: KubeProxySpec = {
  node: 'node',
  services: [
    {
      name: 'k8s-nginx-affinity',
      clusterIP: VIP,
      port: 80,
      protocol: 'tcp',
      endpoints: Object.values(BACKENDS),
      sessionAffinity: { timeoutSeconds: SECONDS },
    },
  ],
  options: { era: kubeProxyProfile(), clusterCIDR: CLUSTER_CIDR },
};
// nftables mode (v1.33+): affinity sets with timeouts instead of xt_recent lists.
const NFTABLES = kubeProxyProfile() === 'nftables';

const N = 20;
const { pc: PC, pd: PD } = CLIENTS;
const fromPc = tcp('pc', VIP, 80, { connections: N });
const fromPd = tcp('pd', VIP, 80, { connections: N });
const SPREAD = 150;

export default defineLab({
  id: '06',
  title: NFTABLES
    ? 'Kubernetes SessionAffinity: ClientIP with nftables affinity sets'
    : 'Kubernetes SessionAffinity: ClientIP with -m recent',
  summary: NFTABLES
    ? "With sessionAffinity: ClientIP, kube-proxy's nftables mode adds each client address to the timed set of the endpoint it chose and looks the sets up before numgen's random choice, so every connection of a client goes to the same pod, until the sets are flushed or the look-up rules are gone."
    : 'With sessionAffinity: ClientIP, kube-proxy records each client address in the recent list of the endpoint it chose and checks the lists before choosing at random, so every connection of a client goes to the same pod, until the lists are reset or the check rules are gone.',
  source: {
    title:
      '[Kubernetes] How to Implement Kubernetes Service - SessionAffinity (hwchiu); kubeDemo services/service/nginx-affinity.yml',
    url: 'https://www.hwchiu.com/docs/2018/kubernetes-service-iiii',
    spec: 'L6',
  },
  requires: NFTABLES ? ['br_netfilter'] : ['br_netfilter', 'xt_recent'],
  kubeProxy: PROXY,
  topology: podTopology({ setup: kubeProxyRules(PROXY) }),
  steps: [...(NFTABLES ? nftablesSteps() : iptablesSteps())],
});

/** iptables mode: -m recent lists named after the KUBE-SEP chains, rcheck rules before the random choice. */
function iptablesSteps(): Step[] {
  const { svc, sep } = kubeChains(PROXY, 'k8s-nginx-affinity');
  /** Each backend's xt_recent list: kube-proxy names it after the backend's KUBE-SEP chain. */
  const LISTS = { p1: sep[BACKENDS.p1]!, p2: sep[BACKENDS.p2]!, p3: sep[BACKENDS.p3]! };
  const rcheckRules = kubeRules(PROXY, 'nat', { id: 'affinity-rcheck' });
  const rcheck = rcheckRules.map(ruleText);
  // The random choice: 1/3, 1/2, the rest (the rules of KUBE-SVC after the rcheck rules).
  const randomChoice = endpointChoices(kubeRules(PROXY, 'nat', { chain: svc })).map(ruleText);
  const [rcheckP1] = rcheckRules.filter((r) => r.args.at(-1) === LISTS.p1).map(savedRuleLine);
  const [dnatP3] = kubeRules(PROXY, 'nat', { chain: LISTS.p3 })
    .filter((r) => r.args.includes('DNAT'))
    .map(savedRuleLine);
  return [
    {
      title: 'The rules: one recent check per endpoint before the random choice',
      teaches:
        'Each endpoint has a list named after its KUBE-SEP chain: `--set` in the KUBE-SEP chain writes the client address, `--rcheck --seconds 10800 --reap` in KUBE-SVC reads it. Loading the rules creates the lists, still empty.',
      expect: [
        {
          description: "iptables-save shows p1's --rcheck rule in KUBE-SVC and the --set before p3's DNAT",
          ...output('node', 'iptables-save -t nat').includes(rcheckP1!, dnatP3!),
        },
        recent('node', LISTS).empty('the three lists exist and are empty'),
      ],
    },
    {
      title: `pc and pd each open ${N} connections: each client sticks to one backend`,
      teaches: `Each client's first connection takes the random path; its address lands in the chosen endpoint's list, and the other ${N - 1} connections match that list's rcheck rule. Two clients may well land on the same backend.`,
      expect: [
        fromPc.sticks(),
        fromPd.sticks(),
        recent('node', LISTS).has(PC, { chosenBy: fromPc.traffic }),
        recent('node', LISTS).has(PD, { chosenBy: fromPd.traffic }),
        rules('node', `nat ${svc}`, rcheck).delta(
          { packets: 2 * (N - 1) },
          `the rcheck rules count the repeat connections: 2 × ${N - 1}`,
        ),
        rules('node', `nat ${svc}`, randomChoice).delta(
          { packets: 2 },
          'the random choice is made twice, once per client',
        ),
      ],
    },
    {
      title: 'Reset the lists: echo / > /proc/net/xt_recent/<list>',
      run: Object.values(LISTS).map((list) => write('node', `/proc/net/xt_recent/${list}`, '/')),
      expect: [recent('node', LISTS).empty()],
    },
    {
      title: 'pc again: a new random choice, and it sticks',
      teaches:
        'With the lists empty the first connection goes through the random choice again (it may pick the same backend as before).',
      expect: [
        fromPc.sticks(),
        recent('node', LISTS).has(PC, { chosenBy: fromPc.traffic }),
        recent('node', LISTS).lacks(PD, "pd's entry is gone too"),
        rules('node', `nat ${svc}`, randomChoice).delta({ packets: 1 }, 'one random choice'),
        rules('node', `nat ${svc}`, rcheck).delta({ packets: N - 1 }, `${N - 1} connections follow the list`),
      ],
    },
    {
      title: 'Break: delete the rcheck rules, keep the random choice',
      teaches:
        'Without the look-ups the lists are still written but never read: every connection is balanced at random again, as in lab 04.',
      run: rcheckRules.map((r) => kubeRuleCommand('node', 'nat', '-D', r)),
      expect: [
        tcp('pc', VIP, 80, { connections: SPREAD }).spreads({ p1: 1 / 3, p2: 1 / 3, p3: 1 / 3 }),
        rules('node', `nat ${svc}`, randomChoice).delta({ packets: SPREAD }, 'every connection takes the random path'),
      ],
    },
  ];
}

/**
 * nftables mode: one affinity set per endpoint (`flags dynamic,timeout ; timeout 10800s`). The
 * endpoint chain writes the client into its set (`update @set { ip saddr }`); the service chain
 * looks the client up in each set (`ip saddr @set goto endpoint`) before numgen's random choice.
 */
function nftablesSteps(): Step[] {
  const { service, endpoint, affinity } = nftChains(PROXY, 'k8s-nginx-affinity');
  const at = (chain: string) => `${NFT_TABLE} ${chain}`;
  const SETS = Object.fromEntries(
    Object.entries(BACKENDS).map(([pod, ip]) => [pod, `${NFT_TABLE} ${affinity[ip]!}`]),
  ) as Record<keyof typeof BACKENDS, string>;
  const serviceRules = nftRules(PROXY, service);
  const lookups = serviceRules.filter((r) => r.startsWith('ip saddr @'));
  const lookupWords = lookups.map((r) => r.replace(' counter', ''));
  const randomChoice = rule('node', at(service), 'numgen random mod 3');
  return [
    {
      title: 'The rules: one affinity set per endpoint, looked up before the random choice',
      teaches:
        'Each endpoint has an nft set with a 10800 s timeout: its endpoint chain adds the client address (`update @set { ip saddr }`), the service chain reads it (`ip saddr @set goto endpoint-…`). Loading the rules creates the sets, still empty.',
      expect: [
        {
          description:
            "the service chain looks up p1's set before numgen; p3's endpoint chain updates its set before the dnat",
          ...output('node', `nft list chain ${at(service)}`).includes(
            `ip saddr @${affinity[BACKENDS.p1]} `,
            'numgen random mod 3',
          ),
        },
        output('node', `nft list chain ${at(endpoint[BACKENDS.p3]!)}`).includes(
          `update @${affinity[BACKENDS.p3]} { ip saddr }`,
          `dnat to ${BACKENDS.p3}:80`,
        ),
        output('node', `nft list set ${SETS.p1}`).includes('timeout 3h'),
        recent('node', SETS).empty('the three sets exist and are empty'),
      ],
    },
    {
      title: `pc and pd each open ${N} connections: each client sticks to one backend`,
      teaches: `Each client's first connection takes numgen's random path; its address lands in the chosen endpoint's set, and the other ${N - 1} connections match that set's look-up rule.`,
      expect: [
        fromPc.sticks(),
        fromPd.sticks(),
        recent('node', SETS).has(PC, { chosenBy: fromPc.traffic }),
        recent('node', SETS).has(PD, { chosenBy: fromPd.traffic }),
        rules('node', at(service), lookupWords).delta(
          { packets: 2 * (N - 1) },
          `the look-up rules count the repeat connections: 2 × ${N - 1}`,
        ),
        randomChoice.delta({ packets: 2 }, 'the random choice is made twice, once per client'),
      ],
    },
    {
      title: 'Reset the sets: nft flush set',
      run: Object.values(SETS).map((set) => nftCommand('node', 'flush', 'set', ...set.split(' '))),
      expect: [recent('node', SETS).empty()],
    },
    {
      title: 'pc again: a new random choice, and it sticks',
      teaches:
        'With the sets empty the first connection goes through the random choice again (it may pick the same backend as before).',
      expect: [
        fromPc.sticks(),
        recent('node', SETS).has(PC, { chosenBy: fromPc.traffic }),
        recent('node', SETS).lacks(PD, "pd's entry is gone too"),
        randomChoice.delta({ packets: 1 }, 'one random choice'),
        rules('node', at(service), lookupWords).delta({ packets: N - 1 }, `${N - 1} connections follow the set`),
      ],
    },
    {
      title: 'Break: remove the look-up rules, keep the random choice',
      teaches:
        'The service chain is flushed and written again without its `ip saddr @set` rules: the sets are still written but never read, so every connection is balanced at random again, as in lab 04.',
      run: [
        nftCommand('node', 'flush', 'chain', ...at(service).split(' ')),
        ...serviceRules.filter((r) => !lookups.includes(r)).map((r) => nftAddRule('node', service, r)),
      ],
      expect: [
        tcp('pc', VIP, 80, { connections: SPREAD }).spreads({ p1: 1 / 3, p2: 1 / 3, p3: 1 / 3 }),
        randomChoice.delta({ packets: SPREAD }, 'every connection takes the random path'),
      ],
    },
  ];
}

runIfMain(import.meta.url);
