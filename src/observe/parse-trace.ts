// Parses `xtables-monitor --trace` output (iptables 1.8.x, nf_tables backend) into hops: one per
// table/chain/rule a traced packet went through, grouped into packets.
//
// What the tool prints (recorded in test/fixtures/trace-*.txt):
//   PACKET: 2 0699f5a1 IN=eth1 OUT=hwchiu0 MACSRC=.. SRC=172.17.9.1 DST=10.55.66.2 LEN=60 TOS=0x0 TTL=63 ID=65004 DF SPORT=47462 DPORT=8000 SYN
//    TRACE: 2 0699f5a1 nat:PREROUTING:rule:0x4:ACCEPT  -4 -t nat -A PREROUTING -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000
//    TRACE: 2 0699f5a1 filter:FORWARD:policy:DROP
// A PACKET line comes before the first TRACE line of every base chain the packet enters. Only rules
// that matched appear (and a chain's policy when it decided); a user chain left without a verdict
// leaves no line. The number after PACKET/TRACE is the nfproto family (2 ip, 7 bridge, 10 ip6),
// the hex word the kernel's trace id. That id is NOT a packet identity: it hashes the skb address,
// flow hash and input ifindex, so later packets of a flow reuse it, and a bridged packet that is
// routed gets a new one between PREROUTING and FORWARD (often the FORWARD id of an earlier packet).
// Hops are therefore grouped by the tracer's own marking rule (see trace.ts), which every traced
// packet meets first, and by the IPv4 header (source, IP ID, length), which NAT before the hook keeps.

/** One table/chain (and rule) a traced packet went through. */
export interface TraceHop {
  /** Groups the hops of one packet within a trace session: the kernel trace id of its first hop, `#n` appended on reuse. */
  packetId: string;
  /** nftables family: 'ip', 'ip6', 'bridge' (ebtables-nft), 'arp', 'inet', 'netdev'. */
  family?: string;
  table: string;
  chain: string;
  /** 1-based position of the rule in its chain, as `iptables -L --line-numbers` counts (set by trace.ts from the rule handle). */
  ruleIndex?: number;
  /** The rule as `iptables-save` prints it, e.g. `-A FORWARD -i eth1 -o hwchiu0 -j ACCEPT`. */
  rule?: string;
  /** nft rule handle the kernel reported; used to find ruleIndex. */
  handle?: number;
  /** ACCEPT, DROP, CONTINUE (rule matched, no verdict: counters, MARK, LOG...), RETURN, JUMP:<chain>, GOTO:<chain>, QUEUE, STOLEN. NAT targets report ACCEPT; REJECT reports DROP. */
  verdict?: string;
  /** The chain's default policy decided (no rule gave a verdict). */
  policy?: boolean;
  iif?: string;
  oif?: string;
  /** The bridge port the packet came in on / leaves by, when `iif`/`oif` is a bridge. */
  physin?: string;
  physout?: string;
  /** Packet header as it was when it entered this chain's hook (NAT done earlier shows here, NAT done in this chain does not). */
  src?: string;
  dst?: string;
  proto?: string;
  sport?: number;
  dport?: number;
  /** TCP flags as xtables-monitor printed them for this hop (SYN, ACK, FIN, RST, PSH, URG). */
  tcpFlags?: string[];
  /** IPv4 identification and total length: NAT keeps both, so they recognise the packet in another namespace. */
  ipId?: number;
  len?: number;
}

/** Tables whose name starts with this belong to the tracer, not to the lab. */
export const TRACER_TABLE_PREFIX = 'nflab_trace';

const FAMILIES: Record<string, string> = {
  '1': 'inet',
  '2': 'ip',
  '3': 'arp',
  '5': 'netdev',
  '7': 'bridge',
  '10': 'ip6',
};

/** NFT_RETURN (-5) has no name in xtables-monitor 1.8.9; it prints the raw number. */
const VERDICT_NAMES: Record<string, string> = {
  '0xfffffffb': 'RETURN',
  '0xfffffffc': 'GOTO',
  '0xfffffffd': 'JUMP',
  '0xfffffffe': 'BREAK',
  '0xffffffff': 'CONTINUE',
};

const TCP_FLAGS = new Set(['SYN', 'ACK', 'FIN', 'RST', 'PSH', 'URG']);

/** The header fields of one PACKET line. */
interface PacketHeader {
  family: string;
  iif?: string;
  oif?: string;
  src?: string;
  dst?: string;
  ipId?: string;
  len?: string;
  sport?: number;
  dport?: number;
  tcp: boolean;
  flags: string[];
  /** IP protocol, known only from a raw network header (NH=, printed for the bridge family). */
  proto?: string;
}

interface TraceEvent {
  family: string;
  traceId: string;
  table: string;
  chain: string;
  kind: 'rule' | 'policy' | 'return';
  handle?: number;
  verdict?: string;
  /** The rule as xtables-monitor printed it (`-4 -t nat -A PREROUTING ...`). */
  ruleText?: string;
}

interface PacketGroup {
  id: string;
  /** The marking chains (`family table chain`) this packet has met. */
  marks: Set<string>;
  proto?: string;
  physin?: string;
  physout?: string;
  /** Last IPv4 header seen, to recognise the packet again when the kernel changes its trace id. */
  header?: PacketHeader;
  sawPorts: boolean;
  sawTcpFlags: boolean;
  hops: TraceHop[];
}

function parsePacketLine(rest: string): { traceId: string; header: PacketHeader } | undefined {
  const words = rest.trim().split(/\s+/);
  if (words.length < 2) return undefined;
  const header: PacketHeader = { family: FAMILIES[words[0]!] ?? words[0]!, tcp: false, flags: [] };
  for (const word of words.slice(2)) {
    const eq = word.indexOf('=');
    if (eq < 0) {
      if (TCP_FLAGS.has(word)) {
        header.tcp = true;
        header.flags.push(word);
      }
      continue;
    }
    const key = word.slice(0, eq);
    const value = word.slice(eq + 1);
    if (key === 'IN') header.iif = value;
    else if (key === 'OUT') header.oif = value;
    else if (key === 'SRC') header.src = value;
    else if (key === 'DST') header.dst = value;
    else if (key === 'ID') header.ipId = value;
    else if (key === 'LEN') header.len = value;
    else if (key === 'SPORT') header.sport = Number(value);
    else if (key === 'DPORT') header.dport = Number(value);
    else if (key === 'NH') Object.assign(header, ipv4FromHex(value));
  }
  return { traceId: words[1]!, header };
}

const IP_PROTOCOLS: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp' };

/** Decodes NH=<hex>: xtables-monitor 1.8.9 prints the network header of non-IP families (bridge)
 * byte by byte as signed chars, so bytes >= 0x80 come out as `ffffffXX`. */
function ipv4FromHex(hex: string): Partial<PacketHeader> {
  const bytes: number[] = [];
  for (let i = 0; i < hex.length;) {
    const wide = hex.startsWith('ffffff', i) && i + 8 <= hex.length;
    bytes.push(parseInt(hex.slice(wide ? i + 6 : i, wide ? i + 8 : i + 2), 16));
    i += wide ? 8 : 2;
  }
  if (bytes.length < 20 || bytes[0]! >> 4 !== 4 || bytes.some(Number.isNaN)) return {};
  const protocol = bytes[9]!;
  return {
    src: bytes.slice(12, 16).join('.'),
    dst: bytes.slice(16, 20).join('.'),
    proto: IP_PROTOCOLS[protocol] ?? String(protocol),
  };
}

function parseTraceLine(rest: string): TraceEvent | undefined {
  const m = /^\s*(\d+)\s+([0-9a-f]+)\s+(\S.*)$/.exec(rest);
  if (!m) return undefined;
  const family = FAMILIES[m[1]!] ?? m[1]!;
  const traceId = m[2]!;
  const body = m[3]!;
  // Table names have no ':'; chain names might, so anchor on the kind keyword.
  const rule = /^([^:]+):(.+?):rule:0x([0-9a-f]+):(\S+)(?:\s+(.*))?$/.exec(body);
  if (rule) {
    const printed = (rule[5] ?? '').trim();
    return {
      family,
      traceId,
      table: rule[1]!,
      chain: rule[2]!,
      kind: 'rule',
      handle: parseInt(rule[3]!, 16),
      verdict: VERDICT_NAMES[rule[4]!] ?? rule[4]!,
      ruleText: printed === '' ? undefined : printed,
    };
  }
  const policy = /^([^:]+):(.+?):policy:(\S+)\s*$/.exec(body);
  if (policy)
    return {
      family,
      traceId,
      table: policy[1]!,
      chain: policy[2]!,
      kind: 'policy',
      verdict: VERDICT_NAMES[policy[3]!] ?? policy[3]!,
    };
  const ret = /^([^:]+):(.+?):return:(\S*)\s*$/.exec(body);
  if (ret) return { family, traceId, table: ret[1]!, chain: ret[2]!, kind: 'return', verdict: 'RETURN' };
  return undefined;
}

/** `-4 -t nat -A PREROUTING -p tcp ...` -> `-A PREROUTING -p tcp ...` (the iptables-save line). */
function saveForm(printed: string | undefined): string | undefined {
  if (printed === undefined) return undefined;
  const m = /^-[046]\s+-t\s+\S+\s+(-A\s.*)$/.exec(printed);
  return m ? m[1]! : printed;
}

/** The protocol the tracer's marking rule named (`-p icmp`), which tells what the packet is. */
function protoOfMarkRule(printed: string | undefined): string | undefined {
  const m = printed ? /(?:^|\s)-p\s+(\S+)/.exec(printed) : null;
  return m ? m[1] : undefined;
}

function sameIpPacket(a: PacketHeader | undefined, b: PacketHeader): boolean {
  return a !== undefined && a.src !== undefined && a.src === b.src && a.ipId === b.ipId && a.len === b.len;
}

/** Both IPv4 headers are known and cannot be the same packet (NAT before this hook keeps the source, IP ID and length). */
function otherPacket(a: PacketHeader | undefined, b: PacketHeader): boolean {
  return (
    a?.ipId !== undefined && b.ipId !== undefined && a.src !== undefined && b.src !== undefined && !sameIpPacket(a, b)
  );
}

export interface ParseTraceOptions {
  /** Also return the hops in the tracer's own table (nflab_trace*). A packet whose only hops are
   * the tracer's bridge-family ones was bridged without meeting iptables (bridge-nf-call-iptables=0). */
  includeTracer?: boolean;
  /** Only packets this tracer table marked. Sessions side by side in one namespace share the
   * kernel's trace flag, so each sees the packets the other marked too. */
  markedBy?: string;
}

/** Parses xtables-monitor output into the lab's hops, in the order the kernel reported them. The
 * tracer's own table (nflab_trace*) is used for grouping and bridge ports and left out unless asked for. */
export function parseTraceLines(text: string, options: ParseTraceOptions = {}): TraceHop[] {
  const groups: PacketGroup[] = [];
  const groupOfTraceId = new Map<string, PacketGroup>();
  const headerOfTraceId = new Map<string, PacketHeader>();
  const usedIds = new Map<string, number>();
  const ordered: { hop: TraceHop; group: PacketGroup }[] = [];
  let lastGroup: PacketGroup | undefined;

  const newGroup = (traceId: string): PacketGroup => {
    const seen = (usedIds.get(traceId) ?? 0) + 1;
    usedIds.set(traceId, seen);
    const group: PacketGroup = {
      id: seen === 1 ? traceId : `${traceId}#${seen}`,
      marks: new Set(),
      sawPorts: false,
      sawTcpFlags: false,
      hops: [],
    };
    groups.push(group);
    groupOfTraceId.set(traceId, group);
    return group;
  };

  for (const raw of text.split('\n')) {
    const line = raw.trimStart();
    if (line.startsWith('PACKET:')) {
      const parsed = parsePacketLine(line.slice('PACKET:'.length));
      if (parsed) headerOfTraceId.set(parsed.traceId, parsed.header);
      continue;
    }
    if (!line.startsWith('TRACE:')) continue; // EVENT:, NEWGEN: and anything else
    const event = parseTraceLine(line.slice('TRACE:'.length));
    if (!event) continue;
    const header = headerOfTraceId.get(event.traceId);
    const isTracer = event.table.startsWith(TRACER_TABLE_PREFIX);
    const known = groupOfTraceId.get(event.traceId);
    let group: PacketGroup;
    if (isTracer && event.kind === 'rule') {
      // The marking rule: the first thing every traced packet meets. A bridged IPv4 packet meets
      // it twice (bridge family, then ip family through br_netfilter), and meets every tracer table
      // of sessions running side by side, all with the same trace id. A later packet reusing the
      // id (same flow, same input interface) meets a marking chain the earlier one already met.
      const mark = `${event.family} ${event.table} ${event.chain}`;
      const otherIpId =
        header?.ipId !== undefined && known?.header?.ipId !== undefined && header.ipId !== known.header.ipId;
      const sameMarking = known !== undefined && !known.marks.has(mark) && !otherIpId;
      group = sameMarking ? known : newGroup(event.traceId);
      group.marks.add(mark);
    } else if (known !== undefined && !(header && otherPacket(known.header, header))) {
      group = known;
    } else {
      // The kernel re-keyed a packet we already follow (bridge -> routing changes the input
      // interface it hashes), and the new id is unknown or still names an earlier packet.
      // Recognise the packet by its IPv4 header; failing that, it was marked by something else
      // (the lab's own TRACE rule).
      // On older kernels (6.1) xtables-monitor prints a PACKET line only before rule events, so a
      // re-keyed packet's first events (FORWARD return, policy) come with no header at all: they
      // continue the packet reported just before them.
      const previous = header ? [...groups].reverse().find((g) => sameIpPacket(g.header, header)) : lastGroup;
      group = previous ?? newGroup(event.traceId);
      groupOfTraceId.set(event.traceId, group);
    }
    lastGroup = group;
    if (header && header.family !== 'bridge' && header.src !== undefined) group.header = header;
    if (header?.sport !== undefined) group.sawPorts = true;
    if (header?.tcp) group.sawTcpFlags = true;

    if (header?.proto !== undefined && group.proto === undefined) group.proto = header.proto;
    if (isTracer) {
      if (event.kind === 'rule' && group.proto === undefined) group.proto = protoOfMarkRule(event.ruleText);
      // The tracer's bridge chains see the bridge ports themselves.
      if (event.family === 'bridge' && header) {
        if (header.iif && group.physin === undefined) group.physin = header.iif;
        if (header.oif) group.physout = header.oif;
      }
      if (!options.includeTracer) continue;
    }

    const hop: TraceHop = {
      packetId: group.id,
      family: event.family,
      table: event.table,
      chain: event.chain,
    };
    if (event.kind === 'rule') {
      hop.handle = event.handle;
      const rule = saveForm(event.ruleText);
      if (rule !== undefined) hop.rule = rule;
    }
    if (event.verdict !== undefined) hop.verdict = event.verdict;
    if (event.kind === 'policy') hop.policy = true;
    if (header) {
      if (header.iif !== undefined) hop.iif = header.iif;
      if (header.oif !== undefined) hop.oif = header.oif;
      if (header.src !== undefined) hop.src = header.src;
      if (header.dst !== undefined) hop.dst = header.dst;
      if (header.sport !== undefined) hop.sport = header.sport;
      if (header.dport !== undefined) hop.dport = header.dport;
      if (header.flags.length > 0) hop.tcpFlags = [...header.flags];
      if (header.ipId !== undefined && /^\d+$/.test(header.ipId)) hop.ipId = Number(header.ipId);
      if (header.len !== undefined && /^\d+$/.test(header.len)) hop.len = Number(header.len);
    }
    // Older kernels (6.1) report falling off the end of a base chain as a return event just before
    // its policy event; newer ones report only the policy. The policy hop says it all.
    const last = group.hops[group.hops.length - 1];
    if (
      hop.policy &&
      last &&
      last.verdict === 'RETURN' &&
      last.handle === undefined &&
      last.table === hop.table &&
      last.chain === hop.chain
    ) {
      group.hops.pop();
      ordered.splice(
        ordered.findIndex((o) => o.hop === last),
        1,
      );
    }
    group.hops.push(hop);
    ordered.push({ hop, group });
  }

  // Facts learnt later about a packet (its protocol, its bridge ports) apply to all its hops.
  for (const { hop, group } of ordered) {
    // xtables-monitor prints no protocol for IPv4: the tracer's marking rule names it (`-p icmp`);
    // failing that, TCP flags or bare ports tell TCP from UDP.
    const proto = group.proto ?? (group.sawTcpFlags ? 'tcp' : group.sawPorts ? 'udp' : undefined);
    if (proto !== undefined) hop.proto = proto;
    if (hop.family !== 'bridge') {
      if (group.physin !== undefined && hop.iif !== undefined) hop.physin = group.physin;
      if (group.physout !== undefined && hop.oif !== undefined) hop.physout = group.physout;
    } else {
      // ebtables-nft chains see the ports as iif/oif already.
      if (hop.iif !== undefined) hop.physin = hop.iif;
      if (hop.oif !== undefined) hop.physout = hop.oif;
    }
  }
  const mine = (group: PacketGroup) =>
    options.markedBy === undefined || [...group.marks].some((m) => m.split(' ')[1] === options.markedBy);
  return ordered.filter((o) => mine(o.group)).map((o) => o.hop);
}
