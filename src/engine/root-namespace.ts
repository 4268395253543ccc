// --root-namespace: the lab's host node is the target machine's own root network namespace, as in
// the articles (whose labs ran on a Vagrant VM, bridge and iptables rules in the VM itself).
// Containers and the outside world stay namespaces of the run.
//
// The root namespace is shared with everything else on the machine, so this mode is guarded:
// - only on a virtual machine (systemd-detect-virt / the CPU's hypervisor flag), never on the
//   machine someone works on;
// - refused before anything is created when the lab would collide with what is there (an
//   interface name, an overlapping subnet, a route to the same destination);
// - what the lab may change (iptables tables, the sysctls it writes, IPVS services, ipsets, the
//   links it creates) is snapshotted into the run's journal before the first change, and teardown,
//   `nflab clean` and the watchdog put it back from there, whichever way the run ends.
import { backendArgv, type IptablesBackend } from './iptables-backend.ts';
import type { Command, Lab } from '../lab/types.ts';
import { planTopology } from '../topology/plan.ts';
import type { Executor } from '../exec/types.ts';
import { EnvError } from '../errors.ts';
import { ipToNumber, parseCidr } from '../net/cidr.ts';
import { sysctlFile } from './sysctl-file.ts';

/** What the run found in the root namespace before changing it: enough to put it back. */
export interface RootSnapshot {
  /** The lab node realised as the root namespace. */
  node: string;
  /** Links that existed before (never deleted). */
  links: string[];
  /** Links the lab may create there; deleted on restore when they did not exist before. */
  labLinks: string[];
  /** `iptables-save` before (no counters), and the tables it listed. */
  iptables: string;
  tables: string[];
  /** iptables-nft: a table the run created is deleted as an nftables table. */
  nftBackend: boolean;
  /** The backend the run's iptables commands used (--iptables); snapshot and restore call that one.
   * Absent in records written before: the machine's `iptables` then. */
  backend?: IptablesBackend;
  /** `nft list tables` before ("family name" each): any other table (ebtables' bridge tables, the
   * lab's own nft tables) is deleted on restore. Undefined without nft. */
  nftTables?: string[];
  /** `ebtables-save` before, when the bridge family had tables: they get their old contents back. */
  ebtables?: string;
  /** /proc/sys file → value before, for every sysctl the lab writes there (absent files left out). */
  sysctls: Record<string, string>;
  /** `ipvsadm -Sn` before; undefined when ip_vs was not loaded. */
  ipvs?: string;
  /** ipset names before; undefined when ipset is not installed. */
  ipsets?: string[];
  /** The lab's subnets: conntrack entries in them are deleted on restore (they would be seen by the next run). */
  subnets: string[];
}

/** Sysctls every lab in root mode may touch through the engine or its steps, beyond those it names. */
const ALWAYS_SAVED = [
  'net.ipv4.ip_forward',
  'net.ipv4.conf.all.route_localnet',
  'net.ipv4.conf.all.rp_filter',
  'net.ipv4.conf.default.rp_filter',
  'net.bridge.bridge-nf-call-iptables',
  'net.bridge.bridge-nf-call-ip6tables',
  'net.bridge.bridge-nf-call-arptables',
  'net.ipv4.vs.conntrack',
  'net.ipv6.conf.all.disable_ipv6',
  'net.ipv6.conf.default.disable_ipv6',
];

/** The node's commands: set-up, then every step's. */
function commandsOf(lab: Lab, node: string): Command[] {
  return [...(lab.topology.setup ?? []), ...lab.steps.flatMap((s) => s.run ?? [])].filter((c) => c.node === node);
}

/** The /proc/sys files a node's sysctls and commands (`sysctl -w k=v`, `tee /proc/sys/...`) write. */
export function sysctlFilesOf(lab: Lab, node: string): string[] {
  const plan = planTopology(lab.topology);
  const files = new Set<string>(ALWAYS_SAVED.map((k) => sysctlFile(`${k}=`)[0]));
  for (const a of plan.perNode.get(node)?.sysctls ?? []) files.add(sysctlFile(a)[0]);
  for (const { argv } of commandsOf(lab, node)) {
    for (const word of argv) {
      if (word.startsWith('/proc/sys/')) files.add(word);
      else if (argv[0] === 'sysctl' && /^[a-z0-9_.\/-]+=/i.test(word)) files.add(sysctlFile(word)[0]);
    }
  }
  return [...files].sort();
}

/** Link names the node's topology and commands create: its link ends, its bridges, `ip link add NAME`. */
export function linkNamesOf(lab: Lab, node: string): string[] {
  const names = new Set<string>();
  for (const link of lab.topology.links) for (const end of [link.a, link.b]) if (end.node === node) names.add(end.name);
  for (const [bridge, spec] of Object.entries(lab.topology.bridges ?? {})) if (spec.node === node) names.add(bridge);
  for (const { argv } of commandsOf(lab, node)) {
    if (argv[0] === 'brctl' && argv[1] === 'addbr' && argv[2]) names.add(argv[2]);
    if (argv[0] !== 'ip') continue;
    const words = argv.slice(1).filter((w) => !w.startsWith('-'));
    if (!/^l(i(nk?)?)?$/.test(words[0] ?? '') || words[1] !== 'add') continue;
    const name = ['name', 'dev'].includes(words[2] ?? '') ? words[3] : words[2];
    if (name) names.add(name);
    const peer = words.indexOf('peer');
    if (peer > 0 && words[peer + 1] === 'name' && words[peer + 2]) names.add(words[peer + 2]!);
  }
  return [...names].sort();
}

/** Named objects outside iptables that the node's commands create: ipsets and IPVS virtual services
 * (`ipvsadm -A -t 10.0.0.1:80` → `-t 10.0.0.1:80`, as `ipvsadm -Sn` prints them). */
export function namedObjectsOf(lab: Lab, node: string): { ipsets: string[]; ipvs: string[] } {
  const ipsets = new Set<string>();
  const ipvs = new Set<string>();
  for (const { argv } of commandsOf(lab, node)) {
    if (argv[0] === 'ipset' && ['create', '-N', '-exist'].includes(argv[1] ?? '') && argv[2])
      ipsets.add(argv[argv[1] === '-exist' ? 3 : 2] ?? '');
    if (argv[0] === 'ipvsadm' && ['-A', '--add-service'].includes(argv[1] ?? '')) {
      const i = argv.findIndex((w) =>
        ['-t', '-u', '-f', '--tcp-service', '--udp-service', '--fwmark-service'].includes(w),
      );
      if (i > 0 && argv[i + 1])
        ipvs.add(
          `${({ '--tcp-service': '-t', '--udp-service': '-u', '--fwmark-service': '-f' } as Record<string, string>)[argv[i]!] ?? argv[i]} ${argv[i + 1]}`,
        );
    }
  }
  ipsets.delete('');
  return { ipsets: [...ipsets].sort(), ipvs: [...ipvs].sort() };
}

/** The node's addresses: on its link ends, its bridges, its other interfaces, and `ip addr add` in its commands. */
function addressesOf(lab: Lab, node: string): { cidr: string; iface: string }[] {
  const out: { cidr: string; iface: string }[] = [];
  for (const link of lab.topology.links)
    for (const end of [link.a, link.b])
      if (end.node === node) out.push(...(end.addresses ?? []).map((cidr) => ({ cidr, iface: end.name })));
  for (const [bridge, spec] of Object.entries(lab.topology.bridges ?? {}))
    if (spec.node === node) out.push(...(spec.addresses ?? []).map((cidr) => ({ cidr, iface: bridge })));
  for (const [iface, cidrs] of Object.entries(lab.topology.nodes[node]?.addresses ?? {}))
    out.push(...cidrs.map((cidr) => ({ cidr, iface })));
  for (const { argv } of commandsOf(lab, node)) {
    const words = argv.slice(1).filter((w) => !w.startsWith('-'));
    if (argv[0] === 'ip' && /^a(d(dr?)?)?$/.test(words[0] ?? '') && words[1] === 'add' && parseCidr(words[2] ?? '')) {
      const dev = words.indexOf('dev');
      out.push({ cidr: words[2]!, iface: dev > 0 ? (words[dev + 1] ?? '?') : '?' });
    }
  }
  return out;
}

/** Every subnet of the lab, all nodes: where the run's conntrack entries are, and the only traffic
 * a tracer in the root namespace marks. */
export function labSubnets(lab: Lab): string[] {
  const all = new Set<string>();
  for (const node of Object.keys(lab.topology.nodes))
    for (const { cidr } of addressesOf(lab, node)) all.add(network(cidr));
  return [...all].sort();
}

function network(cidr: string): string {
  const c = parseCidr(cidr)!;
  const size = 2 ** (32 - c.prefix);
  const base = Math.floor(ipToNumber(c.address) / size) * size;
  return `${[24, 16, 8, 0].map((s) => Math.floor(base / 2 ** s) % 256).join('.')}/${c.prefix}`;
}

function overlaps(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (!x || !y) return false;
  const prefix = Math.min(x.prefix, y.prefix);
  const size = 2 ** (32 - prefix);
  return Math.floor(ipToNumber(x.address) / size) === Math.floor(ipToNumber(y.address) / size);
}

/** Whether the target is a virtual machine: `systemd-detect-virt --vm` output (exit status aside), else the
 * hypervisor CPU flag. Pure, so the refusal on bare metal can be tested without bare metal. */
export function isVirtualMachine(detectVirt: string | undefined, cpuinfo: string): boolean {
  const virt = detectVirt?.trim();
  if (virt !== undefined && virt !== '') return virt !== 'none';
  return /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo);
}

export async function assertVirtualMachine(exec: Executor, labId: string): Promise<void> {
  const [virt, cpu] = await Promise.all([
    exec.run(['sh', '-c', 'command -v systemd-detect-virt >/dev/null && systemd-detect-virt --vm || true']),
    exec.run(['cat', '/proc/cpuinfo']),
  ]);
  if (!isVirtualMachine(virt.stdout, cpu.stdout)) {
    throw new EnvError(
      `lab ${labId}: --root-namespace changes the firewall, sysctls and links of ${exec.name}'s own root namespace, and ${exec.name} is not a virtual machine`,
      'run it in a VM (nflab run ... --target vagrant, or scripts/vm/boot.sh and --target ssh://...), or leave out --root-namespace to use the sandbox',
    );
  }
}

// Each section starts with "@@name"; sysctl lines are "FILE VALUE" (VALUE @@absent when the file is missing).
// $1: the iptables program of the run's backend (iptables-nft, iptables-legacy); then the sysctl files.
const SNAPSHOT = [
  'ipt=$1; shift',
  'echo @@links; ip -o link show',
  'echo @@addrs; ip -o -4 addr show',
  'echo @@routes; ip -4 route show table main',
  'echo @@iptables-version; "$ipt" -V',
  'echo @@iptables; "$ipt-save"',
  'if command -v nft >/dev/null; then echo @@nft-tables; nft list tables; fi',
  'if command -v ebtables-save >/dev/null && nft list tables 2>/dev/null | grep -q "^table bridge "; then echo @@ebtables; ebtables-save; fi',
  'echo @@sysctls; for f; do if [ -e "$f" ]; then printf "%s %s\\n" "$f" "$(cat "$f")"; fi; done',
  'if [ -e /proc/net/ip_vs ] && command -v ipvsadm >/dev/null; then echo @@ipvs; ipvsadm -Sn; fi',
  'if command -v ipset >/dev/null; then echo @@ipsets; ipset list -n; fi',
  'true',
].join('; ');

function sectionsOf(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    const m = /^@@([a-z-]+)$/.exec(line);
    if (m) {
      current = [];
      out.set(m[1]!, current);
      continue;
    }
    current?.push(line);
  }
  return out;
}

const IPTABLES_HEADER = /^# (Generated|Completed)/;

/** Reads the root namespace and refuses (EnvError, nothing changed) when the lab would collide with it. */
export async function snapshotRoot(
  exec: Executor,
  lab: Lab,
  node: string,
  backend: IptablesBackend = 'nft',
): Promise<RootSnapshot> {
  const files = sysctlFilesOf(lab, node);
  const r = await exec.run(['sh', '-c', SNAPSHOT, 'sh', backendArgv(['iptables'], backend)[0]!, ...files]);
  if (r.code !== 0)
    throw new EnvError(
      `lab ${lab.id}: could not read the root namespace of ${exec.name}: ${r.stderr.trim()}`,
      'check that iproute2 and iptables are installed there',
    );
  const s = sectionsOf(r.stdout);
  const links = (s.get('links') ?? []).flatMap((l) => /^\d+: ([^\s:@]+)/.exec(l)?.[1] ?? []);
  const addrs = (s.get('addrs') ?? []).flatMap((l) => {
    const m = /^\d+: (\S+)\s+inet (\S+)/.exec(l);
    return m ? [{ iface: m[1]!, cidr: m[2]! }] : [];
  });
  const routes = (s.get('routes') ?? []).filter(Boolean);
  const iptables = (s.get('iptables') ?? []).filter((l) => !IPTABLES_HEADER.test(l)).join('\n');

  const problems: string[] = [];
  const labLinks = linkNamesOf(lab, node);
  for (const name of labLinks.filter((n) => links.includes(n))) problems.push(`interface ${name} already exists there`);
  for (const mine of addressesOf(lab, node)) {
    for (const theirs of addrs.filter((a) => overlaps(a.cidr, mine.cidr))) {
      problems.push(`address ${mine.cidr} (${mine.iface}) overlaps ${theirs.cidr} on ${theirs.iface}`);
    }
  }
  for (const route of lab.topology.nodes[node]?.routes ?? []) {
    const clash = routes.find((l) =>
      route.to === 'default'
        ? l.startsWith('default ')
        : parseCidr(route.to) !== undefined && l.split(' ')[0] === network(route.to),
    );
    if (clash) problems.push(`route ${route.to} already exists there (${clash.trim()})`);
  }
  const named = namedObjectsOf(lab, node);
  const existingSets = s.get('ipsets') ?? [];
  for (const set of named.ipsets.filter((n) => existingSets.includes(n)))
    problems.push(`ipset ${set} already exists there`);
  const services = (s.get('ipvs') ?? []).flatMap((l) => /^-A (-[tuf] \S+)/.exec(l)?.[1] ?? []);
  for (const service of named.ipvs.filter((v) => services.includes(v)))
    problems.push(`IPVS virtual service ${service} already exists there`);
  if (problems.length > 0) {
    throw new EnvError(
      `lab ${lab.id}: node ${node} cannot be the root namespace of ${exec.name}:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      'use a VM whose own interfaces and subnets do not collide with the lab, or leave out --root-namespace to use the sandbox',
    );
  }
  return {
    node,
    links,
    labLinks,
    iptables,
    tables: iptables
      .split('\n')
      .filter((l) => l.startsWith('*'))
      .map((l) => l.slice(1)),
    nftBackend: /nf_tables/.test((s.get('iptables-version') ?? []).join('\n')),
    backend,
    ...(s.has('nft-tables') ? { nftTables: nftTablesOf(s.get('nft-tables')!.join('\n')) } : {}),
    ...(s.has('ebtables')
      ? {
          ebtables: s
            .get('ebtables')!
            .filter((l) => !l.startsWith('#'))
            .join('\n'),
        }
      : {}),
    sysctls: Object.fromEntries(
      (s.get('sysctls') ?? []).flatMap((l) => {
        const sp = l.indexOf(' ');
        return sp > 0 ? [[l.slice(0, sp), l.slice(sp + 1)]] : [];
      }),
    ),
    ...(s.has('ipvs') ? { ipvs: s.get('ipvs')!.filter(Boolean).join('\n') } : {}),
    ...(s.has('ipsets') ? { ipsets: s.get('ipsets')!.filter(Boolean) } : {}),
    subnets: labSubnets(lab),
  };
}

/** `nft list tables` output as "family name" entries. */
function nftTablesOf(text: string): string[] {
  return text.split('\n').flatMap((l) => /^table (\S+) (\S+)$/.exec(l.trim())?.slice(1, 3).join(' ') ?? []);
}

/** Puts the root namespace back as the snapshot found it. Returns what could not be restored
 * (empty when all went well); never throws, since teardown must always finish. */
export async function restoreRoot(exec: Executor, snap: RootSnapshot): Promise<string[]> {
  const problems: string[] = [];
  const step = async (what: string, argv: string[], stdin?: string) => {
    const r = await exec
      .run(argv, stdin === undefined ? {} : { stdin })
      .catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
    if (r.code !== 0) problems.push(`${what}: ${r.stderr.trim() || `exit ${r.code}`}`);
    return r;
  };
  // 1. The links the lab created (a bridge outlives the namespaces of its ports' peers).
  const now = await step('list links', ['ip', '-o', 'link', 'show']);
  const present = new Set(now.stdout.split('\n').flatMap((l) => /^\d+: ([^\s:@]+)/.exec(l)?.[1] ?? []));
  const created = snap.labLinks.filter((n) => present.has(n) && !snap.links.includes(n));
  if (created.length > 0)
    await step('delete links', ['ip', '-force', '-batch', '-'], created.map((n) => `link del ${n}\n`).join(''));
  // 2. iptables: the tables that were there get their old contents; the ones the run added go.
  const ipt = (argv: string[]) => (snap.backend ? backendArgv(argv, snap.backend) : argv);
  const after = await step('read iptables', ipt(['iptables-save']));
  const added = after.stdout
    .split('\n')
    .filter((l) => l.startsWith('*'))
    .map((l) => l.slice(1))
    .filter((t) => !snap.tables.includes(t));
  if (snap.tables.length > 0) await step('iptables-restore', ipt(['iptables-restore']), `${snap.iptables.trim()}\n`);
  for (const table of added) {
    if (snap.nftBackend) await step(`delete table ${table}`, ['nft', 'delete', 'table', 'ip', table]);
    // x_tables (legacy): a table once used stays until its module is unloaded; emptied, with the
    // ACCEPT policies of a fresh one (a lab's `-P FORWARD DROP` would otherwise outlive the run).
    else
      await step(`empty table ${table}`, [
        'sh',
        '-c',
        'set -e; "$2" -t "$1" -F; "$2" -t "$1" -X; for c in $("$2-save" -t "$1" | sed -n "s/^:\\([A-Z]*\\) [A-Z]* .*/\\1/p"); do "$2" -t "$1" -P "$c" ACCEPT; done',
        'sh',
        table,
        ipt(['iptables'])[0]!,
      ]);
  }
  // 2b. nftables tables the run added (ebtables' bridge tables, a lab's own); bridge tables that
  // were there get their ebtables rules back.
  if (snap.nftTables !== undefined) {
    const listed = await exec.run(['nft', 'list', 'tables']);
    for (const table of nftTablesOf(listed.stdout).filter((t) => !snap.nftTables!.includes(t))) {
      await step(`delete table ${table}`, ['nft', 'delete', 'table', ...table.split(' ')]);
    }
    if (snap.ebtables !== undefined) await step('ebtables-restore', ['ebtables-restore'], `${snap.ebtables.trim()}\n`);
  }
  // 3. ipsets the run created (only now: a set referenced by a rule cannot be destroyed).
  if (snap.ipsets !== undefined) {
    const sets = await exec.run(['ipset', 'list', '-n']).catch(() => ({ code: -1, stdout: '', stderr: '' }));
    for (const set of sets.stdout.split('\n').filter((n) => n && !snap.ipsets!.includes(n)))
      await step(`ipset destroy ${set}`, ['ipset', 'destroy', set]);
  }
  // 4. IPVS services: the old table, or none.
  const ipvsLoaded = (await exec.run(['test', '-e', '/proc/net/ip_vs'])).code === 0;
  if (ipvsLoaded) {
    await step('ipvsadm -C', ['ipvsadm', '-C']);
    if (snap.ipvs) await step('ipvsadm -R', ['ipvsadm', '-R'], `${snap.ipvs}\n`);
  }
  // 5. Sysctls, written back as they were.
  const files = Object.entries(snap.sysctls);
  if (files.length > 0) {
    await step('restore sysctls', [
      'sh',
      '-c',
      'while [ $# -ge 2 ]; do if [ -e "$1" ] && [ "$(cat "$1")" != "$2" ]; then printf "%s\\n" "$2" > "$1" || exit; fi; shift 2; done',
      'sh',
      ...files.flat(),
    ]);
  }
  // 6. Conntrack entries of the lab's subnets (the next run would count them). Exit 1 = none there.
  for (const subnet of snap.subnets) {
    for (const dir of ['-s', '-d']) {
      const r = await exec.run(['conntrack', '-D', dir, subnet]).catch(() => ({ code: 0, stdout: '', stderr: '' }));
      if (r.code !== 0 && r.code !== 1) problems.push(`conntrack -D ${dir} ${subnet}: ${r.stderr.trim()}`);
    }
  }
  return problems;
}
