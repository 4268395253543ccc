// A run that `nflab up` kept, found again from its record as a built run: for check, trace and
// what comes next, in both node modes.
import type { Executor } from '../exec/types.ts';
import type { DriverKind, Lab } from '../lab/types.ts';
import { loadLabFile, resolveLabs } from '../resolve/load.ts';
import { resolveLab } from '../resolve/resolve-lab.ts';
import type { RunRecord } from './journal.ts';
import { Sandbox } from './sandbox.ts';

/** The lab a record was made from (its file, else its id among the numbered labs). */
export async function labOf(record: RunRecord): Promise<Lab> {
  return record.labFile ? await loadLabFile(record.labFile) : (await resolveLabs([record.labId]))[0]!;
}

export async function attach(record: RunRecord, exec: Executor, lab?: Lab): Promise<Sandbox> {
  const resolved = resolveLab(lab ?? await labOf(record), { driver: record.driver === 'docker' ? 'docker' : 'netns' as DriverKind, rootNamespace: record.root !== undefined });
  return Sandbox.attach(resolved, exec, record);
}
