// Which iptables a lab's commands run: iptables-nft or iptables-legacy, chosen per run
// (--iptables), never by the machine's `iptables` alternative (update-alternatives), which is the
// user's own and may point at the other one. Every command that enters a node passes backendArgv.
import type { Executor } from '../exec/types.ts';

export type IptablesBackend = 'nft' | 'legacy';
export const IPTABLES_BACKENDS: readonly IptablesBackend[] = ['nft', 'legacy'];

// The front ends of the x_tables family that exist in both backends: `iptables-save` becomes
// `iptables-nft-save` or `iptables-legacy-save`.
const FAMILY = /^(ip6?tables)(-save|-restore)?$/;

/** argv with its iptables program named for the backend; any other argv unchanged. (ebtables
 * stays as it is: a kernel without ebtables' legacy tables, like 6.18 here, has only ebtables-nft.) */
export function backendArgv(argv: string[], backend: IptablesBackend = 'nft'): string[] {
  const m = FAMILY.exec(argv[0] ?? '');
  if (!m) return argv;
  return [`${m[1]}-${backend}${m[2] ?? ''}`, ...argv.slice(1)];
}

/** The backend the machine's own `iptables` command is (from `iptables -V`), if it can tell. */
export async function machineBackend(exec: Executor): Promise<IptablesBackend | undefined> {
  const r = await exec.run(['iptables', '-V']).catch(() => undefined);
  if (!r || r.code !== 0) return undefined;
  if (/nf_tables/.test(r.stdout)) return 'nft';
  if (/legacy/.test(r.stdout)) return 'legacy';
  return undefined;
}

/** A note for the user when `iptables` typed on that machine would show the other backend's
 * tables than the ones the lab's rules are in; undefined when they agree. */
export function backendNote(
  machine: IptablesBackend | undefined,
  lab: IptablesBackend,
  where: string,
): string | undefined {
  if (machine === lab) return undefined;
  const typed = machine === undefined ? 'has no `iptables` command nflab could ask' : `runs iptables-${machine}`;
  return (
    `note: \`iptables\` on ${where} ${typed}, and this lab's rules are in iptables-${lab}: ` +
    `type iptables-${lab} (and iptables-${lab}-save) to see them${machine === undefined ? '' : `; plain \`iptables\` shows the ${machine} tables`}`
  );
}
