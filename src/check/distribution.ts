// The statistical tolerance for "N new connections spread over backends in shares p": each count
// is binomial(N, p), so it must lie within N·p ± k·sqrt(N·p(1−p)). With k = 4 a correct spread
// fails about once in 16 000 backends checked; a fixed count would fail all the time.

export const DEFAULT_SIGMAS = 4;

export function toleranceFormula(sigmas: number): string {
  return `each count within N·p ± ${sigmas}·sqrt(N·p(1−p))`;
}

/** The whole counts a backend with share p may receive out of n connections. */
export function shareRange(n: number, p: number, sigmas: number): { min: number; max: number } {
  const mean = n * p;
  const spread = sigmas * Math.sqrt(n * p * (1 - p));
  // A tiny epsilon keeps exact bounds (p = 0 or 1) from being lost to floating-point noise.
  return { min: Math.max(0, Math.ceil(mean - spread - 1e-9)), max: Math.min(n, Math.floor(mean + spread + 1e-9)) };
}
