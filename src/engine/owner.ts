// Who a run belongs to. nflab runs as root (namespaces, iptables), usually through sudo: the user
// is then the one who typed sudo (SUDO_UID), else the process's own uid. A run's owner is written
// in its journal record by `nflab up`; check, trace, shell, exec, solve, reset and down pick only
// the caller's runs (select-run.ts).
import { readFileSync } from 'node:fs';
import type { RunOwner, RunRecord } from './journal.ts';

/** The user nflab acts for. SUDO_UID counts only when it is a uid (sudo sets it; a user cannot
 * choose it without being root already). */
export function callerOwner(env: NodeJS.ProcessEnv = process.env): RunOwner {
  const sudo = env.SUDO_UID !== undefined && /^\d+$/.test(env.SUDO_UID) ? Number(env.SUDO_UID) : undefined;
  const uid = sudo ?? process.getuid?.() ?? 0;
  const user = (sudo !== undefined ? env.SUDO_USER : undefined) ?? userName(uid);
  return { uid, ...(user ? { user } : {}) };
}

/** The name of a uid from /etc/passwd (no NSS lookup: nothing to wait on), if it has one. */
export function userName(uid: number): string | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (name && Number(id) === uid) return name;
    }
  } catch {
    /* no passwd file: the uid alone */
  }
  return undefined;
}

export function ownsRun(owner: RunOwner, record: RunRecord): boolean {
  return record.owner !== undefined && record.owner.uid === owner.uid;
}

/** How a run's owner is shown: "alice (uid 1000)"; records older than owners: "unknown". */
export function ownerWords(owner: RunOwner | undefined): string {
  if (!owner) return 'unknown (recorded before runs had owners)';
  return owner.user ? `${owner.user} (uid ${owner.uid})` : `uid ${owner.uid}`;
}
