// Runs a kernel feature probe (src/lab/features.ts) inside a namespace of the run.
import type { Executor } from '../exec/types.ts';
import type { FeatureProbe } from '../lab/features.ts';

/** Returns the reason the feature is missing, or undefined when it is there. `wrap` enters a namespace of the run. */
export async function missingFeature(
  exec: Executor,
  wrap: (argv: string[]) => string[],
  probe: FeatureProbe,
): Promise<string | undefined> {
  const result = await exec.run(wrap(probe.argv));
  if (result.code === probe.okStatus && probe.cleanup) await exec.run(wrap(probe.cleanup));
  return result.code === probe.okStatus ? undefined : probe.missing;
}
