// The path of each traced packet as a hook-by-hook picture for the terminal: the hooks in order
// (PREROUTING → FORWARD → POSTROUTING), then one row per table/chain the packet met, with the
// verdict, the interfaces, the header as the packet entered (NAT done earlier shows there) and
// the rule that matched.
import type { TraceHop } from '../observe/parse-trace.ts';
import { describeHop, hopsByPacket } from '../observe/trace.ts';

/** The netfilter hooks, named as iptables names their built-in chains. */
export const HOOKS = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING', 'BROUTING']);

export interface PacketPicture {
  /** The hops as path checks write them (`nat PREROUTING: DNAT`). */
  path: string[];
  /** The hooks the packet passed, in order (`bridge PREROUTING` for the bridge family). */
  hooks: string[];
  hops: TraceHop[];
}

export function packetPictures(hops: TraceHop[]): PacketPicture[] {
  return hopsByPacket(hops).map((packet) => ({ path: packet.map(describeHop), hooks: hooksOf(packet), hops: packet }));
}

/** The hooks a packet passed: built-in chains in order, user chains counted as their caller's hook. */
export function hooksOf(packet: TraceHop[]): string[] {
  const hooks: string[] = [];
  for (const hop of packet) {
    if (!HOOKS.has(hop.chain)) continue;
    const name = `${hop.family === 'bridge' ? 'bridge ' : ''}${hop.chain}`;
    if (hooks.at(-1) !== name) hooks.push(name);
  }
  return hooks;
}

function endpoint(address: string | undefined, port: number | undefined): string {
  return `${address ?? '?'}${port !== undefined ? `:${port}` : ''}`;
}

export function header(hop: TraceHop): string {
  return `${hop.proto ? `${hop.proto} ` : ''}${endpoint(hop.src, hop.sport)} → ${endpoint(hop.dst, hop.dport)}`;
}

export function interfaces(hop: TraceHop): string {
  const side = (dev: string | undefined, port: string | undefined) => (dev ? `${dev}${port && port !== dev ? ` (port ${port})` : ''}` : '');
  const inside = side(hop.iif, hop.physin);
  const outside = side(hop.oif, hop.physout);
  if (inside && outside) return `in ${inside}, out ${outside}`;
  return inside ? `in ${inside}` : outside ? `out ${outside}` : '';
}

/** What the hop did: `DNAT (ACCEPT)`, `policy DROP`, `jump KUBE-SERVICES`, `CONTINUE`. */
export function verdict(hop: TraceHop): string {
  if (hop.policy) return `policy ${hop.verdict ?? '?'}`;
  const target = hop.rule ? /\s-[jg]\s+(\S+)/.exec(hop.rule)?.[1] : undefined;
  if (hop.verdict?.startsWith('JUMP:')) return `jump ${hop.verdict.slice(5)}`;
  if (hop.verdict?.startsWith('GOTO:')) return `goto ${hop.verdict.slice(5)}`;
  if (target && hop.verdict && target !== hop.verdict) return `${target} (${hop.verdict})`;
  return target ?? hop.verdict ?? '?';
}

/** Text rows of one packet's picture, without a trailing newline. */
export function renderPacket(picture: PacketPicture, index: number, indent = '  '): string {
  const first = picture.hops[0];
  const lines = [`${indent}packet ${index}${first ? `  ${header(first)}` : ''}`];
  lines.push(`${indent}  ${picture.hooks.join(' → ') || '(no hook)'}`);
  const rows = picture.hops.map((hop) => {
    const chain = HOOKS.has(hop.chain) ? hop.chain : `↳ ${hop.chain}`;
    const table = `${hop.family && hop.family !== 'ip' ? `${hop.family} ` : ''}${hop.table}`;
    return { chain, table, verdict: verdict(hop), where: interfaces(hop), packet: header(hop), hop };
  });
  const width = (pick: (r: typeof rows[number]) => string) => Math.max(...rows.map((r) => pick(r).length), 0);
  const w = { chain: width((r) => r.chain), table: width((r) => r.table), verdict: width((r) => r.verdict), where: width((r) => r.where) };
  let previous = '';
  for (const r of rows) {
    // The header only where it changed: that is where NAT (or a bridge → routing hand-over) happened.
    const shownPacket = r.packet !== previous ? r.packet : '';
    previous = r.packet;
    lines.push(`${indent}  ${r.chain.padEnd(w.chain)}  ${r.table.padEnd(w.table)}  ${r.verdict.padEnd(w.verdict)}  ${r.where.padEnd(w.where)}  ${shownPacket}`.trimEnd());
    if (r.hop.rule) lines.push(`${indent}  ${''.padEnd(w.chain)}  ${''.padEnd(w.table)}  rule ${r.hop.ruleIndex ?? '?'}: ${r.hop.rule}`);
  }
  return lines.join('\n');
}
