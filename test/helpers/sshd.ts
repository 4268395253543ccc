// A real OpenSSH sshd (Debian's openssh-server) inside a network namespace a test creates, for
// SSH tests that must not give the root namespace an address or a route. sshd needs its privilege
// separation directory /run/sshd: `ip netns exec` gives the command a mount namespace that is a
// slave of ours, so a tmpfs on /run there never shows on this machine (and neither do the
// namespaces a lab run through that sshd creates: they live in that tmpfs's /run/netns).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function sh(argv: string[]): string {
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** ed25519 key pairs NAME and NAME.pub in dir. */
export function makeKeys(dir: string, names: string[]): void {
  for (const k of names)
    sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `nflab-test-${k}`, '-f', join(dir, k)]);
}

export interface SshdOptions {
  /** The namespace sshd runs in (it must exist). */
  ns: string;
  /** e.g. 127.0.0.1:2200 */
  listen: string;
  /** A directory for its config, pid file and log. */
  dir: string;
  /** A name for its files in dir. */
  name: string;
  hostKey: string;
  authorizedKeys: string;
}

/** Starts sshd and waits until it listens. */
export async function startSshd(o: SshdOptions): Promise<ChildProcess> {
  if (!existsSync('/usr/sbin/sshd')) throw new Error('/usr/sbin/sshd missing: apt-get install -y openssh-server socat');
  const config = join(o.dir, `${o.name}.sshd_config`);
  writeFileSync(
    config,
    [
      `ListenAddress ${o.listen}`,
      `HostKey ${o.hostKey}`,
      `AuthorizedKeysFile ${o.authorizedKeys}`,
      `PidFile ${join(o.dir, `${o.name}.pid`)}`,
      // Tests connect concurrently: sshd's default MaxStartups (10:30:100) would drop some handshakes.
      'MaxStartups 100',
      'StrictModes no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const log = join(o.dir, `${o.name}.sshd.log`);
  const sshd = spawn(
    'ip',
    [
      'netns',
      'exec',
      o.ns,
      'sh',
      '-c',
      'mount -t tmpfs -o mode=755 nflab-sshd /run && mkdir /run/sshd && exec /usr/sbin/sshd -D -e -f "$1"',
      'sh',
      config,
    ],
    { stdio: ['ignore', 'ignore', openSync(log, 'w')] },
  );
  const port = o.listen.slice(o.listen.lastIndexOf(':') + 1);
  for (let i = 0; i < 100; i++) {
    if (sh(['ip', 'netns', 'exec', o.ns, 'ss', '-Hltn', `sport = :${port}`]).trim() !== '') return sshd;
    await sleep(50);
  }
  throw new Error(`sshd did not start listening on ${o.listen}: ${readFileSync(log, 'utf8')}`);
}

/**
 * If the test process dies without its test.after (a crash, ava's timeout), this watchdog sees its
 * stdin close and kills the sshds, deletes the namespaces and removes the directory.
 */
export function cleanupWatchdog(pids: number[], namespaces: string[], dir: string): ChildProcess {
  return spawn(
    'sh',
    [
      '-c',
      'read _; for p in $1; do kill "$p"; done; sleep 0.5; for n in $2; do ip netns del "$n"; done; rm -rf "$3"',
      'sh',
      pids.join(' '),
      namespaces.join(' '),
      dir,
    ],
    { stdio: ['pipe', 'ignore', 'ignore'] },
  );
}

/** Stops an sshd, then whatever a failed test left running in its namespace (all started through it). */
export async function stopSshd(sshd: ChildProcess | undefined, ns: string): Promise<void> {
  if (sshd?.pid && sshd.exitCode === null) {
    sshd.kill('SIGTERM');
    await new Promise((r) => sshd.once('exit', r));
  }
  try {
    for (const pid of sh(['ip', 'netns', 'pids', ns]).split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
  } catch {
    /* namespace never created */
  }
}
