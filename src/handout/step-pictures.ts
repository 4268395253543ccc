// Which hook pictures a step gets: one per node whose packets the step traces, drawn from the
// paths the run observed (or, without a run, the paths the lab expects), with the counters the step
// read on that node's base chains.
import type { Check, Lab } from '../lab/types.ts';
import type { HandoutStep } from './model.ts';
import { filterWords } from '../check/path.ts';
import type { HookPictureInput, PicturePacket } from './hook-picture.ts';
import { HOOKS } from './hook-picture.ts';

/** At most this many packets on one picture: more lines stop being readable. */
const MAX_PACKETS = 4;

export function stepPictures(lab: Lab, step: HandoutStep, idPrefix: string): HookPictureInput[] {
  const checks: Check[] = lab.steps[step.number - 1]?.expect ?? [];
  const byNode = new Map<string, { packets: PicturePacket[]; seen: Set<string>; counters: Map<string, number> }>();
  const entry = (node: string) =>
    byNode.get(node) ?? byNode.set(node, { packets: [], seen: new Set(), counters: new Map() }).get(node)!;
  checks.forEach((check, j) => {
    if (check.kind !== 'path') return;
    const e = entry(check.node);
    const observed = step.expect[j]?.evidence?.observed as { packets?: string[][] } | undefined;
    const what = filterWords(check.filter);
    const paths: Array<{ hops: string[]; expected?: boolean }> = observed?.packets
      ? judgedPackets(observed.packets, check.packet ?? 'first').map((hops) => ({ hops }))
      : step.expect[j]?.evidence
        ? []
        : check.through
          ? [{ hops: check.through, expected: true }]
          : [];
    for (const p of paths) {
      const k = p.hops.join('|');
      if (e.seen.has(k) || e.packets.length >= MAX_PACKETS) continue;
      e.seen.add(k);
      e.packets.push({ label: what, hops: p.hops, ...(p.expected ? { expected: true } : {}) });
    }
  });
  checks.forEach((check, j) => {
    if (check.kind !== 'counter' || !byNode.has(check.node) || !(HOOKS as readonly string[]).includes(check.chain))
      return;
    const observed = step.expect[j]?.evidence?.observed as { packets?: number } | undefined;
    if (typeof observed?.packets === 'number')
      byNode.get(check.node)!.counters.set(`${check.family ?? 'ip'} ${check.table} ${check.chain}`, observed.packets);
  });
  return [...byNode]
    .filter(([, e]) => e.packets.length > 0)
    .map(([node, e]) => ({ id: `${idPrefix}s${step.number}-${node}`, node, packets: e.packets, counters: e.counters }));
}

/** The packets a path check judged: the first, the n-th, or each (up to the picture's limit). */
function judgedPackets(packets: string[][], which: 'first' | 'each' | number): string[][] {
  if (which === 'each') return packets.slice(0, MAX_PACKETS);
  const p = packets[(which === 'first' ? 1 : which) - 1];
  return p ? [p] : [];
}
