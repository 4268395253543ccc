// Words several check descriptions share: counts, node ranges, conntrack tuples.
import type { CountExpectation, TupleMatch } from '../lab/types.ts';

export function countWords(count: CountExpectation, one: string, many = `${one}s`): string {
  if (typeof count === 'number') return count === 0 ? `no ${many}` : `${count} ${count === 1 ? one : many}`;
  if (count.min !== undefined && count.max !== undefined) return `${count.min}-${count.max} ${many}`;
  if (count.min !== undefined) return count.min <= 1 ? `at least one ${one}` : `at least ${count.min} ${many}`;
  return `at most ${count.max} ${many}`;
}

/** `(c1, c2)` or `(c1 … c50)` for a long list. */
export function nodeRange(nodes: string[]): string {
  return nodes.length <= 3 ? `(${nodes.join(', ')})` : `(${nodes[0]} … ${nodes[nodes.length - 1]})`;
}

export function tupleWords(side: string, t: TupleMatch | undefined): string {
  if (!t) return '';
  const port = (p: TupleMatch['sport']) =>
    p === undefined ? '' : typeof p === 'number' ? `:${p}` : `:[${p.min ?? ''}-${p.max ?? ''}]`;
  return `, ${side} ${t.src ?? '*'}${port(t.sport)} → ${t.dst ?? '*'}${port(t.dport)}`;
}
