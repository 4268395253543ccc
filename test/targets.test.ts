// Many targets, ssh_config hosts and ProxyJump against real OpenSSH sshds, each in a network
// namespace this test creates: vm1 and vm2 are reached from a client namespace over veth pairs;
// inner is reached only from vm1's namespace (a ProxyJump hop through vm1). nflab runs inside
// the client namespace, so the root namespace gets no address and no route. The labs run through
// each sshd on this kernel; their namespaces live in that sshd's private /run (helpers/sshd.ts).
import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { socketThroughNetns } from '../src/exec/netns-socket.ts';
import { SshExecutor } from '../src/exec/ssh.ts';
import type { TargetOutcome } from '../src/cli/targets.ts';
import { CLI, REPO, type CliResult } from './helpers/system.ts';
import { cleanupWatchdog, makeKeys, sh, startSshd, stopSshd } from './helpers/sshd.ts';

const P = `nft-${process.pid % 100000}`;
const NS = { client: `${P}-cl`, vm1: `${P}-s1`, vm2: `${P}-s2`, inner: `${P}-s3` };
const ADDR = { vm1: '10.207.1.2', vm2: '10.207.2.2', inner: '10.207.3.2' };
const dir = mkdtempSync(join(tmpdir(), 'nflab-targets-test-'));
const path = (f: string) => join(dir, f);
const sshds: Record<string, ChildProcess> = {};
let watchdog: ChildProcess | undefined;

function veth(a: string, aAddr: string, b: string, bAddr: string, name: string): void {
  sh(['ip', 'link', 'add', `${name}a`, 'netns', a, 'type', 'veth', 'peer', 'name', `${name}b`, 'netns', b]);
  sh(['ip', '-n', a, 'addr', 'add', aAddr, 'dev', `${name}a`]);
  sh(['ip', '-n', b, 'addr', 'add', bAddr, 'dev', `${name}b`]);
  sh(['ip', '-n', a, 'link', 'set', `${name}a`, 'up']);
  sh(['ip', '-n', b, 'link', 'set', `${name}b`, 'up']);
}

/** The nflab CLI run inside the client namespace. */
function nflabInClient(args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', NS.client, process.execPath, CLI, ...args], {
      cwd: REPO,
      env: { ...process.env, NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => {
      stdout += b;
    });
    child.stderr.on('data', (b) => {
      stderr += b;
    });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The checks not met in a many-target JSON report, to say why a run failed. */
function notMetIn(stdout: string): string {
  try {
    const { targets } = JSON.parse(stdout) as { targets: TargetOutcome[] };
    return JSON.stringify(
      targets.flatMap((o) =>
        o.labs.flatMap((l) =>
          l.steps.flatMap((s, i) =>
            s.checks.filter((c) => c.status === 'not-met').map((c) => ({ target: o.target, step: i + 1, ...c })),
          ),
        ),
      ),
      null,
      1,
    );
  } catch {
    return stdout.slice(0, 2000);
  }
}

/** Lab namespaces left in an sshd's private /run/netns (a run through it that did not clean up). */
function labNamespacesBehind(sshd: ChildProcess): string[] {
  return sh(['nsenter', '-t', String(sshd.pid), '-m', 'sh', '-c', 'ls /run/netns 2>/dev/null || true'])
    .split('\n')
    .filter((n) => n.startsWith('nfl-'));
}

test.before(async () => {
  makeKeys(dir, ['host', 'client']);
  writeFileSync(path('authorized_keys'), readFileSync(path('client.pub')));
  const [type, b64] = readFileSync(path('host.pub'), 'utf8').trim().split(' ');
  writeFileSync(
    path('known_hosts'),
    [ADDR.vm1, `[${ADDR.vm2}]:2202`, ADDR.inner].map((h) => `${h} ${type} ${b64}\n`).join(''),
  );
  for (const ns of Object.values(NS)) {
    sh(['ip', 'netns', 'add', ns]);
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  }
  veth(NS.client, '10.207.1.1/24', NS.vm1, `${ADDR.vm1}/24`, `${P}v1`);
  veth(NS.client, '10.207.2.1/24', NS.vm2, `${ADDR.vm2}/24`, `${P}v2`);
  veth(NS.vm1, '10.207.3.1/24', NS.inner, `${ADDR.inner}/24`, `${P}v3`);
  const common = { dir, hostKey: path('host'), authorizedKeys: path('authorized_keys') };
  sshds.vm1 = await startSshd({ ...common, ns: NS.vm1, listen: `${ADDR.vm1}:22`, name: 'vm1' });
  sshds.vm2 = await startSshd({ ...common, ns: NS.vm2, listen: `${ADDR.vm2}:2202`, name: 'vm2' });
  sshds.inner = await startSshd({ ...common, ns: NS.inner, listen: `${ADDR.inner}:22`, name: 'inner' });
  watchdog = cleanupWatchdog(
    Object.values(sshds).map((s) => s.pid!),
    Object.values(NS),
    dir,
  );
  writeFileSync(
    path('ssh_config'),
    `# a class's VMs
Host vm1
  HostName ${ADDR.vm1}
Host vm2
  HostName ${ADDR.vm2}
  Port 2202
Host inner
  HostName ${ADDR.inner}
  ProxyJump vm1
Host *
  User root
  IdentityFile ${path('client')}
  UserKnownHostsFile ${path('known_hosts')}
`,
  );
});

test.after.always(async () => {
  watchdog?.kill('SIGKILL');
  for (const [name, sshd] of Object.entries(sshds)) await stopSshd(sshd, NS[name as keyof typeof NS]);
  for (const ns of Object.values(NS)) {
    try {
      sh(['ip', 'netns', 'del', ns]);
    } catch {
      /* never created */
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

test('ProxyJump: the target is reached through a forwardOut channel of the jump host, which alone can reach it', async (t) => {
  // From the client namespace the inner host is unreachable (no route): only vm1 reaches it.
  const direct = socketThroughNetns(NS.client, ADDR.inner, 22);
  await t.throwsAsync(
    new Promise((_, reject) => {
      direct.on('error', reject);
      direct.on('end', () => reject(new Error('closed')));
      direct.resume();
    }),
    { message: /Network is unreachable|No route/ },
  );
  const common = { identity: path('client'), knownHosts: path('known_hosts') };
  const ssh = await SshExecutor.connect({
    ...common,
    target: `ssh://root@${ADDR.inner}`,
    via: { ...common, target: `ssh://root@${ADDR.vm1}`, sock: () => socketThroughNetns(NS.client, ADDR.vm1, 22) },
  });
  try {
    // The command ran on the inner host: its one non-loopback address is the inner one.
    t.regex(
      (await ssh.run(['ip', '-o', '-4', 'addr', 'show', 'scope', 'global'])).stdout,
      new RegExp(`inet ${ADDR.inner.replace(/\./g, '\\.')}/24`),
    );
    // More commands than one connection carries: the executor dials again through the same jump.
    const many = await Promise.all(Array.from({ length: 12 }, (_, i) => ssh.run(['sh', '-c', `sleep 0.3; echo ${i}`])));
    t.deepEqual(
      many.map((r) => r.stdout.trim()),
      Array.from({ length: 12 }, (_, i) => String(i)),
    );
  } finally {
    await ssh.close();
  }
});

test('nflab run on three ssh_config hosts at once (a pattern, one behind a ProxyJump): a report and a JUnit file per target, a summary', async (t) => {
  const out = path('reports');
  const r = await nflabInClient([
    'run',
    '01',
    '--ssh-config',
    path('ssh_config'),
    '--target',
    'vm*',
    '--target',
    'inner',
    '--json',
    '--report-dir',
    out,
    '--junit',
    path('junit.xml'),
  ]);
  t.is(r.code, 0, notMetIn(r.stdout) + r.stderr.slice(-3000));
  const { targets, summary } = JSON.parse(r.stdout) as {
    targets: TargetOutcome[];
    summary: { targets: number; passed: number; exitCode: number };
  };
  t.deepEqual(
    targets.map((o) => o.target),
    ['vm1', 'vm2', 'inner'],
  );
  t.deepEqual(
    targets.map((o) => o.name),
    [`ssh://root@${ADDR.vm1}`, `ssh://root@${ADDR.vm2}:2202`, `ssh://root@${ADDR.inner}`],
  );
  t.like(summary, { targets: 3, passed: 3, exitCode: 0 });
  for (const o of targets) {
    t.is(o.exitCode, 0, o.target);
    const lab = o.labs[0]!;
    t.is(lab.status, 'passed', o.target);
    t.is(lab.target, o.name!);
    // Each target's kernel did the work: the FORWARD policy dropped exactly the one echo request.
    t.deepEqual(lab.steps[0]!.checks[1]!.observed, { packets: 1, bytes: 84, policy: 'FORWARD DROP' }, o.target);
    t.deepEqual(JSON.parse(readFileSync(join(out, `${o.target}.json`), 'utf8')).labs[0].runId, lab.runId);
    for (const junit of [join(out, `${o.target}.junit.xml`), path(`junit.${o.target}.xml`)]) {
      t.regex(readFileSync(junit, 'utf8'), /<testsuite name="lab 01: [^"]*" tests="\d+" failures="0"/, junit);
    }
  }
  t.like(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')), { targets: 3, passed: 3, unreachable: [] });
  // Only this test's runs: other tests' labs may be up on this machine meanwhile (the sshds share its /run/netns).
  for (const o of targets)
    t.deepEqual(
      labNamespacesBehind(sshds[o.target]!).filter((n) => n.startsWith(`nfl-${o.labs[0]!.runId}-`)),
      [],
      o.target,
    );
});

test('a target file of ssh:// URLs: an unreachable machine is reported beside the others and makes the exit 3', async (t) => {
  const unreachable = 'ssh://root@10.207.9.9';
  writeFileSync(path('targets.txt'), `# the class\nssh://root@${ADDR.vm2}:2202\n\n${unreachable}   # switched off\n`);
  const r = await nflabInClient([
    'run',
    '01',
    '--target-file',
    path('targets.txt'),
    '--identity',
    path('client'),
    '--known-hosts',
    path('known_hosts'),
  ]);
  t.is(r.code, 3, r.stderr.slice(-3000));
  t.regex(r.stdout, new RegExp(`^ssh://root@10\\.207\\.2\\.2:2202\\s+passed\\s+passed$`, 'm'));
  t.regex(r.stdout, /^ssh:\/\/root@10\.207\.9\.9\s+-\s+cannot run: cannot reach ssh:\/\/root@10\.207\.9\.9/m);
  t.regex(r.stdout, /1 of 2 targets passed; could not run on ssh:\/\/root@10\.207\.9\.9/);
  t.regex(r.stdout, /^\[ssh:\/\/root@10\.207\.2\.2:2202\] .*✔ step 5:/m);
});

test('an ssh_config host that is not there is a usage error naming the file and its hosts', async (t) => {
  const r = await nflabInClient(['run', '01', '--ssh-config', path('ssh_config'), '--target', 'vm3']);
  t.is(r.code, 2);
  t.regex(r.stderr, /--target vm3: .*ssh_config has no Host vm3 \(its hosts: vm1, vm2, inner\)/);
});
