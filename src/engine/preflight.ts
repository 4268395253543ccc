// Before a run: what would make results wrong or impossible, with the fix (exit 3).
import { EnvError } from '../errors.ts';
import type { Executor } from '../exec/types.ts';
import type { Lab } from '../lab/types.ts';
import type { IptablesBackend } from './iptables-backend.ts';

const TOOLS: Record<string, string> = {
  ip: 'iproute2',
  bridge: 'iproute2',
  tcpdump: 'tcpdump',
  conntrack: 'conntrack',
  ping: 'iputils-ping',
  socat: 'socat',
  sysctl: 'procps',
  nsenter: 'util-linux',
};

// One process lists the missing tools and ends with a marker. (Ten probes at once over SSH once
// lost an exit status on a busy machine, and a present `ip` was reported missing.)
const MISSING_TOOLS = 'for t; do command -v "$t" >/dev/null 2>&1 || echo "$t"; done; echo @@checked';

/** The tools that are not on the target's PATH; a probe that did not answer is asked again once. */
async function missingTools(exec: Executor, tools: string[]): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    const r = await exec.run(['sh', '-c', MISSING_TOOLS, 'sh', ...tools]);
    const lines = r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    if (r.code === 0 && lines[lines.length - 1] === '@@checked') return lines.slice(0, -1);
    if (attempt === 2) {
      throw new EnvError(
        `could not check which tools ${exec.name} has (exit ${r.code ?? 'unknown'}${r.stderr.trim() ? `: ${r.stderr.trim()}` : ''})`,
        `check that ${exec.name} is reachable and not overloaded, then run again`,
      );
    }
  }
}

/** Runs argv in the namespace to inspect (identity: the root namespace). */
export type Wrap = (argv: string[]) => string[];
const inRoot: Wrap = (argv) => argv;

/** The programs of one iptables backend that nflab calls by name (iptables-backend.ts). */
function backendTools(backend: IptablesBackend): Record<string, string> {
  return Object.fromEntries(
    ['iptables', 'iptables-save', 'iptables-restore'].map((t) => [
      t.replace('iptables', `iptables-${backend}`),
      'iptables',
    ]),
  );
}

export async function preflight(
  exec: Executor,
  labs: readonly Lab[] = [],
  backend: IptablesBackend = 'nft',
): Promise<void> {
  const who = await exec.run(['id', '-u']);
  if (who.stdout.trim() !== '0') {
    throw new EnvError(
      `nflab must run as root on ${exec.name}: it creates namespaces, links and iptables rules`,
      'run it with sudo (sudo nflab ...)',
    );
  }
  const tools = { ...TOOLS, ...backendTools(backend) };
  const missing = await missingTools(exec, Object.keys(tools));
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((t) => tools[t]!))].sort();
    throw new EnvError(
      `missing tools on ${exec.name}: ${missing.sort().join(', ')}`,
      `apt-get install -y ${packages.join(' ')}`,
    );
  }
  // nflab calls iptables-nft or iptables-legacy by name; the machine's own `iptables` alternative
  // is the user's and stays as it is (`up`, `show` and `run -v` say when it is the other one).
  const version = await exec.run([`iptables-${backend}`, '--version']);
  if (!version.stdout.includes(backend === 'nft' ? 'nf_tables' : 'legacy')) {
    throw new EnvError(
      `iptables-${backend} on ${exec.name} is not the ${backend} backend (${version.stdout.trim() || version.stderr.trim()}): counters would come from another rule set than the one the lab's commands write`,
      'apt-get install --reinstall iptables (its iptables-nft and iptables-legacy are one program acting by the name it is called with)',
    );
  }
  const [features, legacy, bridgeNf] = await Promise.all([
    missingKernelFeatures(exec),
    backend === 'nft' ? legacyRules(exec, inRoot) : undefined,
    bridgeNetfilterMissing(exec, labs),
  ]);
  if (features.length > 0) {
    throw new EnvError(
      `the kernel on ${exec.name} lacks what every lab needs: ${features.map((f) => `${f.what} (${f.option})`).join(', ')}`,
      "boot a kernel built with these options (Debian's linux-image-amd64 has them all), or run the labs in the VM: scripts/vm/boot.sh",
    );
  }
  if (legacy) {
    throw new EnvError(
      `the root namespace on ${exec.name} has iptables rules in the legacy backend (${legacy}) while nflab uses nf_tables: two rule sets are active at once, and what \`iptables\` shows and counts is not everything packets go through on this machine`,
      'run the labs with the backend that machine uses (nflab run --iptables legacy), or make everything use one backend: restart whatever wrote the legacy rules with iptables-nft (e.g. systemctl restart docker), then review and flush them (iptables-legacy-save; iptables-legacy -F; iptables-legacy -t nat -F)',
    );
  }
  if (bridgeNf.length > 0) {
    throw new EnvError(
      `br_netfilter is not loaded on ${exec.name} (no /proc/sys/net/bridge), and lab ${bridgeNf.join(', ')} sets net.bridge.* sysctls: bridged packets would not traverse iptables and the lab's verdicts would be wrong`,
      'modprobe br_netfilter (and to keep it: echo br_netfilter > /etc/modules-load.d/br_netfilter.conf)',
    );
  }
}

/**
 * Rules in the legacy backend of a namespace, as a short description ("filter: 3 rules"), or
 * undefined. The kernel lists a namespace's legacy tables in /proc/net/ip_tables_names only once
 * something used them there; an instantiated table with only ACCEPT policies and no rule is harmless.
 */
export async function legacyRules(exec: Executor, wrap: Wrap): Promise<string | undefined> {
  const names = await exec.run(wrap(['cat', '/proc/net/ip_tables_names']));
  if (names.code !== 0 || names.stdout.trim() === '') return undefined;
  const saved = await exec.run(wrap(['iptables-legacy-save']));
  if (saved.code !== 0) return `tables ${names.stdout.trim().split('\n').join(', ')}`;
  const perTable = new Map<string, number>();
  let table = '';
  for (const line of saved.stdout.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1);
    else if (line.startsWith('-A ') || (line.startsWith(':') && !/^:\S+ (ACCEPT|-) /.test(line)))
      perTable.set(table, (perTable.get(table) ?? 0) + 1);
  }
  if (perTable.size === 0) return undefined;
  return [...perTable].map(([t, n]) => `${t}: ${n} rule${n === 1 ? '' : 's'} or policies`).join(', ');
}

/** Kernel options every lab needs, and what each one is for. */
export const REQUIRED_OPTIONS: { option: string; what: string }[] = [
  { option: 'CONFIG_NET_NS', what: 'network namespaces' },
  { option: 'CONFIG_VETH', what: 'veth pairs' },
  { option: 'CONFIG_BRIDGE', what: 'Linux bridges' },
  { option: 'CONFIG_NF_TABLES', what: 'nf_tables (iptables-nft)' },
  { option: 'CONFIG_NFT_COMPAT', what: 'iptables matches and targets on nf_tables' },
  { option: 'CONFIG_NF_CONNTRACK', what: 'connection tracking' },
  { option: 'CONFIG_NF_NAT', what: 'NAT' },
];

/**
 * Options the running kernel's configuration (/proc/config.gz, else /boot/config-<release>) sets
 * to neither y nor m. Without a readable configuration nothing is reported: the labs' own steps
 * then show what is missing.
 */
export async function missingKernelFeatures(exec: Executor): Promise<{ option: string; what: string }[]> {
  const r = await exec.run([
    'sh',
    '-c',
    'if [ -r /proc/config.gz ]; then zcat /proc/config.gz; else cat "/boot/config-$(uname -r)"; fi',
  ]);
  if (r.code !== 0 || !r.stdout.includes('CONFIG_')) return [];
  const set = new Set(
    r.stdout
      .split('\n')
      .filter((l) => /^CONFIG_\w+=[ym]$/.test(l))
      .map((l) => l.split('=')[0]!),
  );
  return REQUIRED_OPTIONS.filter((o) => !set.has(o.option));
}

/** Labs (ids) that set net.bridge.* sysctls, when this kernel has no br_netfilter loaded. Labs that
 * declare `requires: ['br_netfilter']` are skipped with the reason instead. */
export async function bridgeNetfilterMissing(exec: Executor, labs: readonly Lab[]): Promise<string[]> {
  const needing = labs.filter((lab) => !(lab.requires ?? []).includes('br_netfilter') && usesBridgeSysctls(lab));
  if (needing.length === 0) return [];
  const r = await exec.run(['test', '-e', '/proc/sys/net/bridge/bridge-nf-call-iptables']);
  return r.code === 0 ? [] : needing.map((l) => l.id);
}

function usesBridgeSysctls(lab: Lab): boolean {
  const words = [
    ...Object.values(lab.topology.nodes).flatMap((n) => Object.keys(n.sysctls ?? {})),
    ...[...(lab.topology.setup ?? []), ...lab.steps.flatMap((s) => s.run ?? [])].flatMap((c) =>
      c.argv[0] === 'sysctl' ? c.argv : [],
    ),
  ];
  return words.some((w) => /^net[./]bridge[./]/.test(w));
}

/**
 * After the lab's set-up: no node may hold rules in the legacy backend. nflab reads counters and
 * traces from nf_tables (with the host's tools); a node whose own `iptables` is iptables-legacy (a
 * container image of the user's choice) would put the lab's rules where nothing observes them.
 */
export async function assertNoLegacyRulesInNodes(
  exec: Executor,
  nodes: readonly string[],
  wrap: (node: string, argv: string[]) => string[],
): Promise<void> {
  const found = (
    await Promise.all(nodes.map(async (node) => [node, await legacyRules(exec, (argv) => wrap(node, argv))] as const))
  ).filter(([, d]) => d !== undefined);
  if (found.length === 0) return;
  throw new EnvError(
    `iptables rules in the legacy backend inside the lab (${found.map(([n, d]) => `node ${n}: ${d}`).join('; ')}): nflab counts and traces nf_tables rules, so the lab's verdicts would be about a rule set its commands did not write`,
    "run the lab with iptables-nft in every node: leave out --image (nflab's image uses the host's iptables-nft) or use an image whose iptables is iptables-nft",
  );
}
