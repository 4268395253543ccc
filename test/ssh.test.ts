// SshExecutor against a real OpenSSH sshd (Debian's openssh-server) running inside a network
// namespace this test creates. The root namespace gets nothing: sshd listens on 127.0.0.1:2200
// inside the namespace, and the client reaches it through `ip netns exec NS socat` (the `sock`
// option). Port 2200 (not 22) makes every known_hosts entry use the `[host]:port` form.
import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvError } from '../src/errors.ts';
import { socketThroughNetns } from '../src/exec/netns-socket.ts';
import { SshExecutor, parseSshTarget, type SshConnectOptions } from '../src/exec/ssh.ts';
import { cleanupWatchdog, makeKeys, sh, startSshd, stopSshd } from './helpers/sshd.ts';

const NS = `hs6-ssh-${process.pid % 100000}`;
const PORT = 2200;
const TARGET = `ssh://root@127.0.0.1:${PORT}`;
const HOST_NAME = `[127.0.0.1]:${PORT}`;
const dir = mkdtempSync(join(tmpdir(), 'nflab-ssh-test-'));
const path = (f: string) => join(dir, f);
let sshd: ChildProcess | undefined;
let watchdog: ChildProcess | undefined;

/** The fingerprint OpenSSH itself computes for a public key file. */
function sshKeygenFingerprint(pub: string): string {
  return sh(['ssh-keygen', '-l', '-E', 'sha256', '-f', pub]).split(' ')[1]!;
}

/** A known_hosts file holding `key` for the test host. */
function knownHostsWith(file: string, pubFile: string): string {
  const [type, b64] = readFileSync(pubFile, 'utf8').trim().split(' ');
  writeFileSync(path(file), `${HOST_NAME} ${type} ${b64}\n`);
  return path(file);
}

function connect(extra: Partial<SshConnectOptions> = {}): Promise<SshExecutor> {
  return SshExecutor.connect({
    target: TARGET,
    identity: path('client'),
    knownHosts: path('known_hosts'),
    sock: () => socketThroughNetns(NS, '127.0.0.1', PORT),
    ...extra,
  });
}

test.before(async () => {
  makeKeys(dir, ['host', 'other_host', 'client', 'stranger']);
  writeFileSync(path('authorized_keys'), readFileSync(path('client.pub')));
  knownHostsWith('known_hosts', path('host.pub'));
  sh(['ip', 'netns', 'add', NS]);
  sh(['ip', '-n', NS, 'link', 'set', 'lo', 'up']);
  sshd = await startSshd({
    ns: NS,
    listen: `127.0.0.1:${PORT}`,
    dir,
    name: 'sshd',
    hostKey: path('host'),
    authorizedKeys: path('authorized_keys'),
  });
  watchdog = cleanupWatchdog([sshd.pid!], [NS], dir);
});

test.after.always(async () => {
  watchdog?.kill('SIGKILL');
  await stopSshd(sshd, NS);
  try {
    sh(['ip', 'netns', 'del', NS]);
  } catch {
    /* never created */
  }
  rmSync(dir, { recursive: true, force: true });
});

test('parseSshTarget reads user, host, port and IPv6 brackets', (t) => {
  t.deepEqual(parseSshTarget('ssh://vagrant@10.0.0.2'), { user: 'vagrant', host: '10.0.0.2', port: 22 });
  t.deepEqual(parseSshTarget('ssh://root@127.0.0.1:2222'), { user: 'root', host: '127.0.0.1', port: 2222 });
  t.deepEqual(parseSshTarget('ssh://root@[fd00::1]:22'), { user: 'root', host: 'fd00::1', port: 22 });
  t.throws(() => parseSshTarget('root@host'), { message: /expected ssh:\/\/user@host/ });
  t.throws(() => parseSshTarget('ssh://root@host:70000'), { message: /out of range/ });
});

test('a command runs over SSH: exit code, stdout and stderr come back separately', async (t) => {
  const ssh = await connect();
  try {
    t.is(ssh.name, TARGET);
    t.false(ssh.usesSudo);
    const r = await ssh.run(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    t.deepEqual(r, { code: 3, stdout: 'out\n', stderr: 'err\n' });
    t.is((await ssh.run(['id', '-u'])).stdout, '0\n');
    // The command really ran inside the namespace: its only link is lo.
    t.regex((await ssh.run(['ip', '-o', 'link'])).stdout, /^1: lo:[^\n]*\n$/);
  } finally {
    await ssh.close();
  }
});

test('argv reaches the remote command word for word, whatever the shell would make of it', async (t) => {
  const ssh = await connect();
  try {
    const words = [
      'a b',
      "it's",
      '"dq"',
      '$HOME',
      '`id`',
      '$(id)',
      'back\\slash',
      '*',
      'semi;colon',
      'new\nline',
      '',
      '-n',
      '!x',
      '~',
    ];
    const r = await ssh.run(['printf', '%s\\0', ...words]);
    t.deepEqual(r.stdout.split('\0').slice(0, -1), words);
  } finally {
    await ssh.close();
  }
});

test('stdin is delivered to the remote command', async (t) => {
  const ssh = await connect();
  try {
    t.is((await ssh.run(['cat'], { stdin: 'hello\nworld\n' })).stdout, 'hello\nworld\n');
    const big = 'x'.repeat(1 << 20);
    t.is((await ssh.run(['wc', '-c'], { stdin: big })).stdout.trim(), String(1 << 20));
  } finally {
    await ssh.close();
  }
});

test('timeoutMs kills the remote command (code null) instead of leaving it running', async (t) => {
  const ssh = await connect();
  try {
    const started = Date.now();
    const r = await ssh.run(['sleep', '41.5'], { timeoutMs: 500 });
    t.is(r.code, null);
    t.true(Date.now() - started < 10_000);
    t.is((await ssh.run(['pgrep', '-f', 'sleep 41.5'])).code, 1);
  } finally {
    await ssh.close();
  }
});

test('spawn streams lines while the command runs, and kill stops it by its remote PID', async (t) => {
  const ssh = await connect();
  try {
    const proc = ssh.spawn(['sh', '-c', 'echo ready; echo warn >&2; exec sleep 42.5']);
    const lines: string[] = [];
    const errLines: string[] = [];
    proc.onStderrLine((l) => errLines.push(l));
    await new Promise<void>((resolve) =>
      proc.onStdoutLine((l) => {
        lines.push(l);
        if (l === 'ready') resolve();
      }),
    );
    t.is(typeof proc.pid, 'number');
    t.is((await ssh.run(['ps', '-o', 'args=', '-p', String(proc.pid)])).stdout.trim(), 'sleep 42.5');
    proc.kill('SIGTERM');
    const r = await proc.exited;
    t.is(r.code, null);
    t.is(r.stdout, 'ready');
    t.deepEqual(lines, ['ready']);
    t.deepEqual(errLines, ['warn']);
    t.is((await ssh.run(['kill', '-0', String(proc.pid)])).code, 1);
  } finally {
    await ssh.close();
  }
});

test('close stops spawned commands on the remote side', async (t) => {
  const ssh = await connect();
  const proc = ssh.spawn(['sleep', '43.5']);
  await new Promise<void>((resolve) => {
    const check = () => (proc.pid ? resolve() : setTimeout(check, 20));
    check();
  });
  await ssh.close();
  t.is((await proc.exited).code, null);
  const again = await connect();
  try {
    t.is((await again.run(['pgrep', '-f', 'sleep 43.5'])).code, 1);
  } finally {
    await again.close();
  }
});

test('more commands at once than sshd allows per connection are spread over several connections', async (t) => {
  const ssh = await connect();
  try {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => ssh.run(['sh', '-c', `sleep 0.5; echo ${i}`])),
    );
    t.deepEqual(
      results.map((r) => r.stdout),
      Array.from({ length: 20 }, (_, i) => `${i}\n`),
    );
  } finally {
    await ssh.close();
  }
});

test('a missing remote command is an EnvError naming the host and exit 127', async (t) => {
  const ssh = await connect();
  try {
    const err = await t.throwsAsync(ssh.run(['nflab-no-such-command', 'x']), { instanceOf: EnvError });
    t.regex(err!.message, /nflab-no-such-command/);
    t.regex(err!.message, /exit 127/);
    t.true(err!.message.includes(TARGET));
    // A long-running command that cannot start reports 127 as its exit code.
    t.is((await ssh.spawn(['nflab-no-such-command']).exited).code, 127);
  } finally {
    await ssh.close();
  }
});

test('an unknown host key is refused with its SHA256 fingerprint and how to accept it', async (t) => {
  writeFileSync(path('empty_known_hosts'), '');
  const err = await t.throwsAsync(connect({ knownHosts: path('empty_known_hosts') }), { instanceOf: EnvError });
  t.true(err!.message.includes(HOST_NAME));
  t.true(err!.message.includes(sshKeygenFingerprint(path('host.pub'))));
  t.regex(err!.message, /--accept-new-host-key/);
  t.is(readFileSync(path('empty_known_hosts'), 'utf8'), '');
});

test('--accept-new-host-key writes the key to known_hosts once, in a form OpenSSH reads', async (t) => {
  const file = path('fresh/known_hosts');
  const first = await connect({ knownHosts: file, acceptNewHostKey: true });
  t.is((await first.run(['echo', 'ok'])).stdout, 'ok\n');
  await first.close();
  const written = readFileSync(file, 'utf8');
  t.is(written.trim().split('\n').length, 1);
  // ssh-keygen -F looks the host up the way ssh does.
  t.true(
    sh(['ssh-keygen', '-F', HOST_NAME, '-f', file]).includes(readFileSync(path('host.pub'), 'utf8').split(' ')[1]!),
  );
  // From now on the key is known: a plain connection works and nothing more is appended.
  const second = await connect({ knownHosts: file, acceptNewHostKey: true });
  await second.close();
  const third = await connect({ knownHosts: file });
  await third.close();
  t.is(readFileSync(file, 'utf8'), written);
});

test('a changed host key is refused loudly, even with --accept-new-host-key', async (t) => {
  const file = knownHostsWith('changed_known_hosts', path('other_host.pub'));
  const before = readFileSync(file, 'utf8');
  const err = await t.throwsAsync(connect({ knownHosts: file, acceptNewHostKey: true }), { instanceOf: EnvError });
  t.regex(err!.message, /HOST KEY OF \[127\.0\.0\.1\]:2200 .*HAS CHANGED/);
  t.true(err!.message.includes(sshKeygenFingerprint(path('host.pub'))));
  t.true(err!.message.includes(sshKeygenFingerprint(path('other_host.pub'))));
  t.is(readFileSync(file, 'utf8'), before);
});

test('hashed known_hosts entries (ssh-keygen -H) are matched', async (t) => {
  const file = knownHostsWith('hashed_known_hosts', path('host.pub'));
  sh(['ssh-keygen', '-q', '-H', '-f', file]);
  t.regex(readFileSync(file, 'utf8'), /^\|1\|/);
  const ssh = await connect({ knownHosts: file });
  t.is((await ssh.run(['true'])).code, 0);
  await ssh.close();
});

test('an authentication failure is an EnvError naming the host', async (t) => {
  const err = await t.throwsAsync(connect({ identity: path('stranger') }), { instanceOf: EnvError });
  t.regex(err!.message, /authentication failed/);
  t.true(err!.message.includes(TARGET));
  t.regex(err!.message, /--identity/);
});

test('an unreachable host is an EnvError naming the host', async (t) => {
  const err = await t.throwsAsync(
    connect({ target: 'ssh://root@127.0.0.1:2299', sock: () => socketThroughNetns(NS, '127.0.0.1', 2299) }),
    { instanceOf: EnvError },
  );
  t.regex(err!.message, /cannot reach ssh:\/\/root@127\.0\.0\.1:2299/);
  t.regex(err!.message, /Connection refused/);
});

test("a key marked @revoked is refused even when it is also listed as the host's key", async (t) => {
  const [type, b64] = readFileSync(path('host.pub'), 'utf8').trim().split(' ');
  writeFileSync(path('revoked_known_hosts'), `${HOST_NAME} ${type} ${b64}\n@revoked * ${type} ${b64}\n`);
  const err = await t.throwsAsync(connect({ knownHosts: path('revoked_known_hosts') }), { instanceOf: EnvError });
  t.regex(err!.message, /@revoked/);
});

test('Vagrant\'s "no host key checking" (known_hosts /dev/null + accept-new) connects and leaves /dev/null alone', async (t) => {
  const ssh = await connect({ knownHosts: '/dev/null', acceptNewHostKey: true });
  t.is((await ssh.run(['echo', 'vagrant-style'])).stdout, 'vagrant-style\n');
  await ssh.close();
  t.true(statSync('/dev/null').isCharacterDevice());
});

test('a detached spawn keeps running after the executor closes (nflab up)', async (t) => {
  const ssh = await connect();
  const proc = ssh.spawn(['sleep', '44.5'], { detached: true });
  await new Promise<void>((resolve) => {
    const check = () => (proc.pid ? resolve() : setTimeout(check, 20));
    check();
  });
  await ssh.close();
  const again = await connect();
  try {
    t.is((await again.run(['ps', '-o', 'args=', '-p', String(proc.pid)])).stdout.trim(), 'sleep 44.5');
    // In its own session, so nothing tied to the SSH login stops it.
    t.is((await again.run(['ps', '-o', 'sid=', '-p', String(proc.pid)])).stdout.trim(), String(proc.pid));
    t.is((await again.run(['kill', String(proc.pid)])).code, 0);
  } finally {
    await again.close();
  }
});
