// Bounded parallelism: at scale (hundreds of nodes) starting every process at once only makes the
// CPUs thrash and the memory peak; a few more processes than CPUs keep the machine busy.
import { availableParallelism } from 'node:os';

/** Processes to run at once by default: two per CPU (half of them wait on the kernel at any time). */
export function defaultParallelism(): number {
  return Math.max(2, availableParallelism() * 2);
}

/** Maps `items` through `fn` with at most `limit` calls in flight; results keep the input order.
 * The first rejection is raised after every started call has settled. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !failure) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  if (failure) throw failure.error;
  return results;
}
