// Packet-path tracing in one node's network namespace: which tables, chains and rules a packet
// went through, and which verdict it got ("who dropped my packet").
//
// How: a dedicated nftables table (nflab_trace_<id>) sets `meta nftrace` on packets that match the
// filter, at priority -350 (before iptables' raw table and conntrack), and `xtables-monitor --trace`
// prints every table/chain/rule the marked packet then meets, the rules in iptables-save syntax.
// `-j LOG` cannot do this: it is silent in a non-initial netns (docs/kernel-facts.md#g2).
// A table of our own (instead of `-j TRACE` rules in raw) leaves the lab's iptables-save untouched:
// no raw table appears, no rule positions shift, and one `nft delete table` removes everything.
// It also hooks the bridge family, whose chains see the bridge ports (PHYSIN/PHYSOUT).
// Tracing is per netns: a monitor hears only its own namespace, so trace each node a packet crosses.
import { randomBytes } from 'node:crypto';
import { EnvError, LabError } from '../errors.ts';
import type { Executor, Process } from '../exec/types.ts';
import { parseTraceLines, TRACER_TABLE_PREFIX } from './parse-trace.ts';
import type { ParseTraceOptions, TraceHop } from './parse-trace.ts';

export type { ParseTraceOptions, TraceHop } from './parse-trace.ts';

/** Which packets to trace. Everything given must match; an empty filter traces all IPv4 packets. */
export interface TraceFilter {
  proto?: 'icmp' | 'tcp' | 'udp';
  /** IPv4 address or CIDR, as the packet enters the node (before any NAT there). */
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  /** Either address: the source, or else the destination (pcap's `host`). */
  host?: string;
  /** Either port: the source port, or else the destination port (pcap's `port`). */
  port?: number;
}

export interface TraceSession {
  /** The nftables table this session added (family ip, and bridge when the kernel has it). */
  readonly table: string;
  /** Everything xtables-monitor printed, kept as evidence. */
  readonly lines: string[];
  /** What went wrong while tracing (the monitor died, cleanup failed); empty when all went well. */
  readonly problems: string[];
  /** Stops the monitor, removes the tracer's table and returns the hops in the order the kernel
   * reported them. Calling it again returns the same hops. */
  stop(options?: ParseTraceOptions): Promise<TraceHop[]>;
}

export interface TraceOptions {
  /** How long to wait for the monitor to be listening. */
  readyTimeoutMs?: number;
  /** The monitor ends itself after this long even if stop() is never called (a crash of nflab). */
  maxSeconds?: number;
  /** Mark only packets from or to these networks: in a machine's root namespace (--root-namespace)
   * a filter like "tcp" would also trace the SSH session nflab runs over, and flood the monitor. */
  within?: string[];
}

/** Tools the tracer runs in the node, and the Debian package of each. */
const TOOLS: Record<string, string> = {
  'xtables-monitor': 'iptables',
  nft: 'nftables',
  stdbuf: 'coreutils',
  timeout: 'coreutils',
  chrt: 'util-linux',
};
const POLL_MS = 100;

/** Tools are looked up in the system directories only: under `npx ava` or `npm test`, PATH starts
 * with node_modules/.bin, where ava's dependency @vercel/nft installs a `nft` of its own. */
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const sys = (argv: string[]): string[] => ['env', `PATH=${SYSTEM_PATH}`, ...argv];

/** Starts tracing packets that match `filter` in the netns `wrap` leads into; resolves once the monitor is listening. */
export async function startTrace(
  exec: Executor,
  wrap: (argv: string[]) => string[],
  filter: TraceFilter,
  options: TraceOptions = {},
): Promise<TraceSession> {
  const rules = limitToNetworks(markMatches(filter), options.within);
  await requireTools(exec, wrap);
  const table = `${TRACER_TABLE_PREFIX}_${randomBytes(3).toString('hex')}`;
  const lines: string[] = [];
  const problems: string[] = [];
  const stderr: string[] = [];
  // --event as well as --trace: the monitor subscribes to both in one bind(), so the first ruleset
  // event it prints proves it is already hearing traces. stdbuf: it does not flush event lines.
  // chrt -f: xtables-monitor asks the kernel for every rule it prints, and a burst of trace events
  // (a TCP connection through a dozen chains) overflows its socket buffer ("No buffer space
  // available", and it exits) whenever a busy machine leaves it waiting for a CPU. Real-time
  // priority lets it drain the socket as events arrive; it sleeps in recv() otherwise.
  const monitor: Process = exec.spawn(
    wrap(
      sys([
        'timeout',
        String(options.maxSeconds ?? 3600),
        'chrt',
        '-f',
        '10',
        'stdbuf',
        '-oL',
        'xtables-monitor',
        '--trace',
        '--event',
      ]),
    ),
  );
  monitor.onStdoutLine((line) => lines.push(line));
  monitor.onStderrLine((line) => stderr.push(line));
  let exited = false;
  void monitor.exited.then(() => {
    exited = true;
  });

  const families: string[] = [];
  const cleanup = async (): Promise<void> => {
    monitor.kill('SIGTERM');
    await monitor.exited;
    for (const family of families) {
      const r = await exec.run(wrap(sys(['nft', 'delete', 'table', family, table])));
      if (r.code !== 0) problems.push(`could not delete nft table ${family} ${table}: ${r.stderr.trim()}`);
    }
  };

  try {
    families.push(...(await addTracerTable(exec, wrap, table, rules)));
    await waitForEvent(exec, wrap, table, 'ready', lines, () => exited, options.readyTimeoutMs ?? 5000);
  } catch (err) {
    await cleanup();
    if (!(err instanceof MonitorGone) && err instanceof Error) {
      err.message += ` (monitor said: ${[...lines.slice(0, 5), ...stderr].join(' | ') || 'nothing'})`;
    }
    if (err instanceof MonitorGone) {
      throw new EnvError(
        `xtables-monitor stopped before it was listening on ${exec.name}: ${stderr.join(' ').trim() || 'no message'}`,
        'check that iptables is the nf_tables variant (iptables -V says nf_tables) and that you are root',
      );
    }
    throw err;
  }

  // Stopping happens once; each stop() call then parses what was recorded.
  let finished: Promise<Map<string, number[]>> | undefined;
  const finish = async (): Promise<Map<string, number[]>> => {
    if (exited) problems.push(`xtables-monitor ended early: ${stderr.join(' ').trim() || 'no message'}`);
    else {
      // Barrier: traces of packets already handled were queued on the monitor's socket before this
      // event, so once it is printed, they are too.
      try {
        await waitForEvent(exec, wrap, table, 'flushed', lines, () => exited, 3000);
      } catch (err) {
        problems.push(`trace output may be incomplete: ${(err as Error).message}`);
      }
    }
    const handles = await ruleHandles(exec, wrap).catch((err: Error) => {
      problems.push(`could not read rule positions: ${err.message}`);
      return new Map<string, number[]>();
    });
    await cleanup();
    return handles;
  };

  return {
    table,
    lines,
    problems,
    async stop(parseOptions?: ParseTraceOptions) {
      finished ??= finish();
      const handles = await finished;
      const hops = parseTraceLines(lines.join('\n'), { markedBy: table, ...parseOptions });
      for (const hop of hops) {
        if (hop.handle === undefined) continue;
        const position = handles.get(`${hop.family ?? 'ip'} ${hop.table} ${hop.chain}`)?.indexOf(hop.handle);
        if (position !== undefined && position >= 0) hop.ruleIndex = position + 1;
      }
      await addBridgeRuleText(exec, wrap, hops);
      return hops;
    },
  };
}

/** One short description per hop, the form a lab's path expectation is written in:
 * `nat PREROUTING: DNAT`, `filter FORWARD: policy DROP`, `filter FORWARD: ACCEPT`, `bridge filter FORWARD: ACCEPT`. */
export function describeHop(hop: TraceHop): string {
  const where = `${hop.family && hop.family !== 'ip' ? `${hop.family} ` : ''}${hop.table} ${hop.chain}`;
  if (hop.policy) return `${where}: policy ${hop.verdict ?? '?'}`;
  const target = hop.rule ? /\s-[jg]\s+(\S+)/.exec(hop.rule)?.[1] : undefined;
  return `${where}: ${target ?? hop.verdict ?? '?'}`;
}

/** The hops of each packet, packets in the order they were first seen. */
export function hopsByPacket(hops: TraceHop[]): TraceHop[][] {
  const packets = new Map<string, TraceHop[]>();
  for (const hop of hops) {
    const list = packets.get(hop.packetId) ?? [];
    list.push(hop);
    packets.set(hop.packetId, list);
  }
  return [...packets.values()];
}

class MonitorGone extends Error {}

async function requireTools(exec: Executor, wrap: (argv: string[]) => string[]): Promise<void> {
  const names = Object.keys(TOOLS);
  const r = await exec.run(
    wrap(sys(['sh', '-c', 'for t in "$@"; do command -v "$t" >/dev/null || echo "$t"; done', 'sh', ...names])),
  );
  const missing = r.stdout
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => names.includes(s));
  if (missing.length > 0) {
    throw new EnvError(
      `packet tracing needs ${missing.join(', ')} on ${exec.name}`,
      `apt-get install -y ${[...new Set(missing.map((t) => TOOLS[t]!))].join(' ')}`,
    );
  }
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(\/(\d{1,2}))?$/;

function checkAddress(what: string, value: string): string {
  const m = IPV4.exec(value);
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || (m[6] !== undefined && Number(m[6]) > 32)) {
    throw new LabError(`trace filter ${what} must be an IPv4 address or CIDR, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkPort(what: string, value: number): string {
  if (!Number.isInteger(value) || value < 1 || value > 65535)
    throw new LabError(`trace filter ${what} must be a port 1-65535, got ${value}`);
  return String(value);
}

/** The nft match expressions of the marking rules: one rule per protocol, because xtables-monitor
 * prints no protocol for IPv4 packets and the marking rule's `-p` then says what the packet is. */
export function markMatches(filter: TraceFilter): string[] {
  const common: string[] = [];
  if (filter.src !== undefined) common.push(`ip saddr ${checkAddress('src', filter.src)}`);
  if (filter.dst !== undefined) common.push(`ip daddr ${checkAddress('dst', filter.dst)}`);
  const ports: string[] = [];
  if (filter.sport !== undefined) ports.push(`th sport ${checkPort('sport', filter.sport)}`);
  if (filter.dport !== undefined) ports.push(`th dport ${checkPort('dport', filter.dport)}`);
  if (filter.proto !== undefined && !['icmp', 'tcp', 'udp'].includes(filter.proto)) {
    throw new LabError(`trace filter proto must be icmp, tcp or udp, got ${JSON.stringify(filter.proto)}`);
  }
  if (filter.port !== undefined) ports.push(`th sport ${checkPort('port', filter.port)}`);
  if (filter.proto === 'icmp' && ports.length > 0) throw new LabError('trace filter: icmp has no ports');
  const protos = filter.proto ? [filter.proto] : ports.length > 0 ? ['tcp', 'udp'] : ['icmp', 'tcp', 'udp'];
  let matches = protos.map((p) => [`meta l4proto ${p}`, ...common, ...(p === 'icmp' ? [] : ports)].join(' '));
  if (!filter.proto && ports.length === 0) matches.push(['meta l4proto != { icmp, tcp, udp }', ...common].join(' '));
  // `host A` / `port P` are "either side": one rule for each side, the second excluding the first
  // (a packet must be marked by one rule of a chain only).
  if (filter.host !== undefined) {
    const a = checkAddress('host', filter.host);
    matches = matches.flatMap((m) => [`${m} ip saddr ${a}`, `${m} ip saddr != ${a} ip daddr ${a}`]);
  }
  if (filter.port !== undefined) {
    const p = String(filter.port);
    matches = matches.flatMap((m) =>
      m.includes(`th sport ${p}`) ? [m, m.replace(`th sport ${p}`, `th sport != ${p} th dport ${p}`)] : [m],
    );
  }
  return matches;
}

/** Each match once for packets from the networks, once for packets to them but not from them (a
 * packet must be marked by one rule of a chain only: a second mark reads as a second tracer). */
export function limitToNetworks(matches: string[], networks?: string[]): string[] {
  if (!networks || networks.length === 0) return matches;
  const set = `{ ${networks.map((n) => checkAddress('network', n)).join(', ')} }`;
  return matches.flatMap((m) => [`${m} ip saddr ${set}`, `${m} ip saddr != ${set} ip daddr ${set}`]);
}

function tracerScript(table: string, matches: string[], withBridge: boolean): string {
  const mark = (family: string, chain: string, prefix: string) =>
    matches
      .map((m) => `add rule ${family} ${table} ${chain} ${prefix}${m} meta nftrace set 1 comment "nflab-trace"\n`)
      .join('');
  let script = `table ip ${table} {
  chain mark_pre { type filter hook prerouting priority -350; policy accept; }
  chain mark_out { type filter hook output priority -350; policy accept; }
}
${mark('ip', 'mark_pre', '')}${mark('ip', 'mark_out', '')}`;
  if (withBridge) {
    // Rule-less chains in forward and postrouting: their policy events carry the outgoing bridge port.
    script += `table bridge ${table} {
  chain mark_pre { type filter hook prerouting priority -350; policy accept; }
  chain port_fwd { type filter hook forward priority -350; policy accept; }
  chain port_post { type filter hook postrouting priority -350; policy accept; }
}
${mark('bridge', 'mark_pre', 'ether type ip ')}`;
  }
  return script;
}

/** Adds the tracer table; without the bridge family if this kernel lacks nf_tables for bridges. */
async function addTracerTable(
  exec: Executor,
  wrap: (argv: string[]) => string[],
  table: string,
  matches: string[],
): Promise<string[]> {
  const both = await exec.run(wrap(sys(['nft', '-f', '-'])), { stdin: tracerScript(table, matches, true) });
  if (both.code === 0) return ['ip', 'bridge'];
  const ipOnly = await exec.run(wrap(sys(['nft', '-f', '-'])), { stdin: tracerScript(table, matches, false) });
  if (ipOnly.code === 0) return ['ip'];
  throw new EnvError(
    `could not add the tracer's nftables table on ${exec.name}: ${ipOnly.stderr.trim() || both.stderr.trim()}`,
    'packet tracing needs nf_tables in the kernel (CONFIG_NF_TABLES) and the nft tool (apt-get install -y nftables)',
  );
}

/** Waits until the monitor prints a ruleset event of our table, nudging it with empty chains named
 * `<label>_<n>`: events are heard only once the monitor has bound its socket, and an event queued
 * after some traces is printed after them. 'ready' also accepts the events of the table's creation. */
async function waitForEvent(
  exec: Executor,
  wrap: (argv: string[]) => string[],
  table: string,
  label: string,
  lines: string[],
  gone: () => boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const from = lines.length;
  const marker = label === 'ready' ? table : `${label}_`;
  const heard = () =>
    lines
      .slice(label === 'ready' ? 0 : from)
      .some((l) => l.startsWith(' EVENT:') && l.includes(table) && l.includes(marker));
  for (let n = 1; ; n++) {
    if (label !== 'ready' || n > 1) {
      const r = await exec.run(wrap(sys(['nft', 'add', 'chain', 'ip', table, `${label}_${n}`])));
      if (r.code !== 0) throw new Error(`nft add chain failed: ${r.stderr.trim()}`);
    }
    const until = Math.min(deadline, Date.now() + POLL_MS);
    while (Date.now() < until && !heard() && !gone()) await sleep(2);
    if (heard()) return;
    if (gone()) throw new MonitorGone('xtables-monitor exited');
    if (Date.now() >= deadline)
      throw new Error(`xtables-monitor printed no event for table ${table} within ${timeoutMs} ms`);
  }
}

/** For every chain, its rule handles in order (the order iptables numbers rules in). */
async function ruleHandles(exec: Executor, wrap: (argv: string[]) => string[]): Promise<Map<string, number[]>> {
  const r = await exec.run(wrap(sys(['nft', '-j', '-a', 'list', 'ruleset'])));
  if (r.code !== 0) throw new Error(r.stderr.trim());
  const doc = JSON.parse(r.stdout) as {
    nftables: { rule?: { family: string; table: string; chain: string; handle: number } }[];
  };
  const handles = new Map<string, number[]>();
  for (const item of doc.nftables) {
    if (!item.rule) continue;
    const key = `${item.rule.family} ${item.rule.table} ${item.rule.chain}`;
    handles.set(key, [...(handles.get(key) ?? []), item.rule.handle]);
  }
  return handles;
}

/** xtables-monitor prints no text for ebtables-nft rules: take it from ebtables-save by position. */
async function addBridgeRuleText(exec: Executor, wrap: (argv: string[]) => string[], hops: TraceHop[]): Promise<void> {
  const wanted = hops.filter(
    (h) =>
      h.family === 'bridge' &&
      h.rule === undefined &&
      h.ruleIndex !== undefined &&
      !h.table.startsWith(TRACER_TABLE_PREFIX),
  );
  if (wanted.length === 0) return;
  const r = await exec.run(wrap(sys(['ebtables-save'])));
  if (r.code !== 0) return;
  let table = '';
  const rules = new Map<string, string[]>();
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    const m = /^-A (\S+) /.exec(line);
    if (m) rules.set(`${table} ${m[1]}`, [...(rules.get(`${table} ${m[1]}`) ?? []), line.trim()]);
  }
  for (const hop of wanted) {
    const text = rules.get(`${hop.table} ${hop.chain}`)?.[hop.ruleIndex! - 1];
    if (text !== undefined) hop.rule = text;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
