// nflab typed inside `nflab shell` runs in the mount namespace the shell was started from: in the
// shell's own, /run/netns holds only the lab's names (c1, host), and `ip netns add/del` there would
// create or remove namespaces nobody else sees. The shell's environment names the waiting
// `nflab shell` process (pid:starttime); nflab re-runs itself in that process's mount namespace
// (and network namespace: `nflab shell 02 c1` is a shell inside c1's).
import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { EnvError } from '../errors.ts';
import { isAlive } from '../engine/journal.ts';
import { OUTER_ENV } from '../engine/lab-shell.ts';

/** The exit status of nflab re-run outside, or undefined when this process is outside already. */
export function runInOuterNamespace(argv: string[]): number | undefined {
  const value = process.env[OUTER_ENV];
  if (!value) return undefined;
  const [pidText, startTime] = value.split(':');
  const pid = Number(pidText);
  const mine = readlinkSync('/proc/self/ns/mnt');
  if (!isAlive(pid, startTime || undefined)) {
    // The shell outlived its nflab shell (killed): this mount namespace is the only one left to use.
    throw new EnvError(
      `this shell's nflab shell (process ${pidText}) is gone, so nflab cannot reach the machine's own /run/netns from here`,
      'leave this shell (exit) and run nflab from a terminal outside it',
    );
  }
  if (readlinkSync(`/proc/${pid}/ns/mnt`) === mine) return undefined;
  const env = { ...process.env };
  delete env[OUTER_ENV];
  // The signals of Ctrl-C reach the nflab inside too, which handles them; this one only waits.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  process.on('SIGTERM', ignore);
  const r = spawnSync(
    'nsenter',
    [
      `--mount=/proc/${pid}/ns/mnt`,
      `--net=/proc/${pid}/ns/net`,
      `--wd=${process.cwd()}`,
      '--',
      process.execPath,
      ...process.execArgv,
      process.argv[1]!,
      ...argv,
    ],
    { stdio: 'inherit', env },
  );
  process.off('SIGINT', ignore);
  process.off('SIGTERM', ignore);
  if (r.error)
    throw new EnvError(
      `nsenter could not re-run nflab outside this shell's mount namespace: ${r.error.message}`,
      'apt-get install util-linux, or run nflab from a terminal outside the shell',
    );
  return r.status ?? 1;
}
