// Default one-line descriptions of checks, in the words a student would use.
import type { Check, CountExpectation, PacketMatch, TupleMatch } from '../lab/types.ts';
import { DEFAULT_SIGMAS, toleranceFormula } from './distribution.ts';
import { describePath } from './path.ts';

export function describeCheck(check: Check): string {
  switch (check.kind) {
    case 'ping': {
      const t = check.traffic;
      return `ping from ${t.from} to ${t.to} ${check.expect === 'succeeds' ? 'succeeds' : `fails${check.error ? ` with "${check.error}"` : ''}`}`;
    }
    case 'tcp': {
      const t = check.traffic;
      const what = { connects: 'connects', refused: 'is refused', timeout: 'times out', unreachable: 'is unreachable' }[check.expect];
      const n = t.connections && t.connections > 1 ? `${t.connections} TCP connections` : 'a TCP connection';
      return `${n} from ${t.from} to ${t.to}:${t.port} ${what}${check.answeredBy ? `, answered by ${check.answeredBy}` : ''}${check.clientSeen ? `, which sees client ${check.clientSeen}` : ''}`;
    }
    case 'packets':
      return `tcpdump on ${check.node}:${check.iface} sees ${countWords(check.count, 'packet')}${matchWords(check.match)}`;
    case 'counter': {
      const counts = check.answersOf
        ? `as many packets as connections ${check.answersOf.answeredBy} answered${check.bytes !== undefined ? ` and ${countWords(check.bytes, 'byte')}` : ''}`
        : deltaWords(check);
      if (check.rules) return `${check.table} ${check.chain} rules ${check.rules.map((r) => `"${r}"`).join(', ')} count ${counts} in all`;
      return check.rule
        ? `${check.table} ${check.chain} rule "${check.rule}" counts ${counts}`
        : `${check.table} ${check.chain} policy counts ${counts}`;
    }
    case 'distribution': {
      const t = check.traffic;
      const shares = Object.entries(check.shares).map(([node, p]) => `${node} ${Math.round(p * 1000) / 10}%`).join(', ');
      return `${t.connections ?? 1} TCP connections from ${t.from} to ${t.to}:${t.port} spread over ${shares} (${toleranceFormula(check.sigmas ?? DEFAULT_SIGMAS)})`;
    }
    case 'sticky': {
      const t = check.traffic;
      return `all ${t.connections ?? 1} TCP connections from ${t.from} to ${t.to}:${t.port} are answered by the same backend${check.among ? ` (one of ${check.among.join(', ')})` : ''}`;
    }
    case 'recent': {
      const lists = typeof check.lists === 'string' ? `xt_recent list ${check.lists}` : `the xt_recent lists ${Object.values(check.lists).join(', ')}`;
      if (check.expect === 'empty') return `on ${check.node}, ${lists} ${typeof check.lists === 'string' ? 'is' : 'are'} empty`;
      if (check.expect === 'lacks') return typeof check.lists === 'string' ? `on ${check.node}, ${lists} does not hold ${check.address}` : `on ${check.node}, none of ${lists} holds ${check.address}`;
      return check.chosenBy
        ? `on ${check.node}, only the xt_recent list of the backend that answered ${check.chosenBy.from}'s connections holds ${check.address}`
        : `on ${check.node}, ${lists} holds ${check.address}`;
    }
    case 'all-pairs': {
      const nodes = Object.keys(check.nodes);
      return `every pair of the ${nodes.length} nodes ${nodeRange(nodes)} ${check.expect === 'succeeds' ? 'reaches each other' : 'fails to reach each other'} by ping (${nodes.length * (nodes.length - 1)} pings)`;
    }
    case 'all-reach':
      return `each of the ${check.from.length} nodes ${nodeRange(check.from)} ${check.expect === 'succeeds' ? 'reaches' : 'fails to reach'} ${check.to} by ping`;
    case 'conntrack':
      return `conntrack on ${check.node} holds ${countWords(check.count, 'entry', 'entries')}${check.proto ? ` ${check.proto}` : ''}${tupleWords('original', check.orig)}${tupleWords('reply', check.reply)}${check.mark !== undefined ? `, mark ${check.mark} (0x${check.mark.toString(16)})` : ''}`;
    case 'path':
      return describePath(check);
    case 'output':
      return `\`${check.command.argv.join(' ')}\` on ${check.command.node} ${check.includes ? `shows ${check.includes.map((s) => `"${s}"`).join(', ')}` : ''}${check.includes && check.excludes ? ' and ' : ''}${check.excludes ? `does not show ${check.excludes.map((s) => `"${s}"`).join(', ')}` : ''}`;
  }
}

/** `c1, c2` or `c1 … c50` for a long list. */
function nodeRange(nodes: string[]): string {
  return nodes.length <= 3 ? `(${nodes.join(', ')})` : `(${nodes[0]} … ${nodes[nodes.length - 1]})`;
}

export function countWords(count: CountExpectation, one: string, many = `${one}s`): string {
  if (typeof count === 'number') return count === 0 ? `no ${many}` : `${count} ${count === 1 ? one : many}`;
  if (count.min !== undefined && count.max !== undefined) return `${count.min}-${count.max} ${many}`;
  if (count.min !== undefined) return count.min <= 1 ? `at least one ${one}` : `at least ${count.min} ${many}`;
  return `at most ${count.max} ${many}`;
}

function deltaWords(check: { packets?: CountExpectation; bytes?: CountExpectation }): string {
  const parts = [];
  if (check.packets !== undefined) parts.push(countWords(check.packets, 'packet'));
  if (check.bytes !== undefined) parts.push(countWords(check.bytes, 'byte'));
  return parts.join(' and ');
}

function matchWords(m: PacketMatch): string {
  const parts = [m.proto, m.icmp ? `ICMP ${m.icmp}` : undefined, m.flags ? `flags [${m.flags}]` : undefined,
    m.src ? `from ${m.src}${m.sport ? `.${m.sport}` : ''}` : undefined, m.dst ? `to ${m.dst}${m.dport ? `.${m.dport}` : ''}` : undefined].filter(Boolean);
  return parts.length ? ` (${parts.join(' ')})` : '';
}

function tupleWords(side: string, t: TupleMatch | undefined): string {
  if (!t) return '';
  const port = (p: TupleMatch['sport']) => (p === undefined ? '' : typeof p === 'number' ? `:${p}` : `:[${p.min ?? ''}-${p.max ?? ''}]`);
  return `, ${side} ${t.src ?? '*'}${port(t.sport)} → ${t.dst ?? '*'}${port(t.dport)}`;
}
