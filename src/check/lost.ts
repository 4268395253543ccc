// Transport loss apart from the kernel's choice. On a loaded machine a connection can be set up
// (the kernel chose its backend: DNAT, IPVS) and still come back without the responder's answer:
// the client's wait ran out before the forked responder wrote its line. Which backend it reached
// is then unknown, so it is no scheduling result: counting checks report it as `lost`, leave it out
// of the counts, and hold when some placement of the lost connections on the backends would
// satisfy them (nothing observed contradicts the expectation). More than a few lost connections
// is not load but a fault: the check is then not met.
import type { TcpOutcome } from '../observe/types.ts';

/** At most this share of the connections may be lost (and always at least one). */
const MAX_LOST_SHARE = 0.05;

/** Connected, no answer: the backend is unknown. (A refused or timed-out connection is a result.) */
export function isLost(o: TcpOutcome): boolean {
  return o.result === 'connects' && o.answeredBy === undefined;
}

export function maxLost(n: number): number {
  return Math.max(1, Math.floor(n * MAX_LOST_SHARE));
}

/** Whether `lost` connections, each on some backend, can bring every count within its range. */
export function placeable(
  counts: Record<string, number>,
  ranges: Record<string, { min?: number; max?: number }>,
  lost: number,
): boolean {
  let need = 0;
  let room = 0;
  for (const [node, range] of Object.entries(ranges)) {
    const count = counts[node] ?? 0;
    const max = range.max ?? Infinity;
    if (count > max) return false;
    need += Math.max(0, (range.min ?? 0) - count);
    room += max - count;
  }
  // A count for a node outside the ranges is an answer from a backend that should get none.
  if (Object.keys(counts).some((node) => !Object.hasOwn(ranges, node) && (counts[node] ?? 0) > 0)) return false;
  return need <= lost && room >= lost;
}

/** The words for a report's `reason` when lost connections were set aside. */
export function lostReason(lost: number, n: number): string {
  return (
    `${lost} of ${n} connection${n === 1 ? '' : 's'} connected but brought no answer before the client stopped waiting (transport loss: the backend it reached is unknown); ` +
    `left out of the counts, and the check holds only if ${lost === 1 ? 'it' : 'they'} could have gone to backends that keep every count within range (at most ${maxLost(n)} may be lost)`
  );
}
