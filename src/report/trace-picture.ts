// The parts of a traced packet's hook-by-hook picture (trace-view.ts draws it): the hooks in order
// (PREROUTING → FORWARD → POSTROUTING), and for each hop its verdict, interfaces and the header as
// the packet entered (NAT done earlier shows there).
import type { TraceHop } from '../observe/parse-trace.ts';

/** The netfilter hooks, named as iptables names their built-in chains. */
export const HOOKS = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING', 'BROUTING']);

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
  const side = (dev: string | undefined, port: string | undefined) =>
    dev ? `${dev}${port && port !== dev ? ` (port ${port})` : ''}` : '';
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
