// The size of a scale lab: NFLAB_N (default 50). All pairs are checked up to NFLAB_PAIRS_MAX
// nodes (default 50): N·(N−1) pings grow fast (50 → 2450, 200 → 39800).
export function scaleSize(): { n: number; pairs: boolean } {
  const n = Number(process.env.NFLAB_N ?? 50);
  if (!Number.isInteger(n) || n < 2 || n > 4000)
    throw new Error(`NFLAB_N must be an integer 2-4000 (got ${process.env.NFLAB_N})`);
  const max = Number(process.env.NFLAB_PAIRS_MAX ?? 50);
  return { n, pairs: n <= max };
}
