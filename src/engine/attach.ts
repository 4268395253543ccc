// A run that `nflab up` kept, found again from its record as a built run: for check, trace and
// what comes next, in both node modes.
import type { Executor } from '../exec/types.ts';
import type { DriverKind, Lab } from '../lab/types.ts';
import { loadLabFile, resolveLabs } from '../resolve/load.ts';
import { resolveLab } from '../resolve/resolve-lab.ts';
import type { RunRecord } from './journal.ts';
import { Sandbox } from './sandbox.ts';
import { LabError } from '../errors.ts';
import { PROFILE_ENV, parseProfile } from '../k8s/profiles.ts';

/** The lab a record was made from (its file, else its id among the numbered labs), loaded with the
 * kube-proxy profile the run was brought up with: its checks then name the rules in the node. */
export async function labOf(record: RunRecord): Promise<Lab> {
  if (record.kubeProxy !== undefined) {
    const asked = process.env[PROFILE_ENV];
    if (asked !== undefined && asked !== '' && asked !== record.kubeProxy) {
      throw new LabError(
        `lab ${record.labId} is up with --kube-proxy ${record.kubeProxy} (run ${record.runId}), not ${asked}: leave --kube-proxy out, or bring it up again with --kube-proxy ${asked}`,
      );
    }
    process.env[PROFILE_ENV] = parseProfile(record.kubeProxy, `run ${record.runId}'s record: kubeProxy`);
  }
  return record.labFile ? await loadLabFile(record.labFile) : (await resolveLabs([record.labId]))[0]!;
}

export async function attach(record: RunRecord, exec: Executor, lab?: Lab): Promise<Sandbox> {
  const resolved = resolveLab(lab ?? (await labOf(record)), {
    driver: record.driver === 'docker' ? 'docker' : ('netns' as DriverKind),
    rootNamespace: record.root !== undefined,
  });
  return Sandbox.attach(resolved, exec, record);
}
