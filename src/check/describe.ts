// Default one-line descriptions of checks, in the words a student would use.
import type { Check, CountExpectation, PacketMatch, TupleMatch } from '../lab/types.ts';

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
    case 'counter':
      return check.rule
        ? `${check.table} ${check.chain} rule "${check.rule}" counts ${deltaWords(check)}`
        : `${check.table} ${check.chain} policy counts ${deltaWords(check)}`;
    case 'conntrack':
      return `conntrack on ${check.node} holds ${countWords(check.count, 'entry', 'entries')}${check.proto ? ` ${check.proto}` : ''}${tupleWords('original', check.orig)}${tupleWords('reply', check.reply)}`;
    case 'output':
      return `\`${check.command.argv.join(' ')}\` on ${check.command.node} ${check.includes ? `shows ${check.includes.map((s) => `"${s}"`).join(', ')}` : ''}${check.includes && check.excludes ? ' and ' : ''}${check.excludes ? `does not show ${check.excludes.map((s) => `"${s}"`).join(', ')}` : ''}`;
  }
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
