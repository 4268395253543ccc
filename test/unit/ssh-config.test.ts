// ssh_config as nflab reads it for --target <host> (src/exec/ssh-config.ts, through the ssh-config
// package): no network, no root. The same hosts are connected to for real in test/targets.test.ts.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectOptionsFor, readSshConfigText, resolveSshHost } from '../../src/exec/ssh-config.ts';

const ADDR = { vm1: '10.207.1.2', vm2: '10.207.2.2', inner: '10.207.3.2' };
const dir = mkdtempSync(join(tmpdir(), 'nflab-ssh-config-'));
const path = (f: string) => join(dir, f);
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test.before(() => {
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

test('ssh_config: HostName, Port, the first User that matches, IdentityFile, UserKnownHostsFile and ProxyJump', (t) => {
  const text = readSshConfigText(path('ssh_config'));
  const vm2 = resolveSshHost(text, 'vm2', 'test config');
  t.like(vm2, {
    alias: 'vm2',
    hostName: ADDR.vm2,
    port: 2202,
    user: 'root',
    identityFiles: [path('client')],
    userKnownHostsFile: path('known_hosts'),
    proxyJump: [],
  });
  const inner = resolveSshHost(text, 'inner', 'test config');
  t.is(inner.user, 'root');
  t.deepEqual(
    inner.proxyJump.map((h) => [h.alias, h.hostName, h.port]),
    [['vm1', ADDR.vm1, 22]],
  );
  const options = connectOptionsFor(inner, 'test config');
  t.is(options.target, `ssh://root@${ADDR.inner}:22`);
  t.is(options.via?.target, `ssh://root@${ADDR.vm1}:22`);
  t.is(options.via?.identity, path('client'));
});

test('ssh_config: Include is followed, ProxyJump hops chain nearest first (user@host:port overrides), %-tokens expand, a loop is refused', (t) => {
  writeFileSync(path('included.conf'), 'Host bastion\n  HostName 198.51.100.20\n  User ops\n');
  writeFileSync(
    path('chain_config'),
    [
      `Include ${path('included.conf')}`,
      'Host deep',
      '  HostName 203.0.113.9',
      '  ProxyJump bastion,admin@mid:2022',
      '  IdentityFile ~/keys/%h-%r',
      'Host mid',
      '  HostName 203.0.113.5',
      '  User midguy',
      'Host flat',
      '  ProxyJump none',
      'Host loop1',
      '  ProxyJump loop2',
      'Host loop2',
      '  ProxyJump loop1',
      'Host *',
      '  User root',
      '',
    ].join('\n'),
  );
  const text = readSshConfigText(path('chain_config'));
  const deep = resolveSshHost(text, 'deep', 'chain');
  t.deepEqual(
    deep.proxyJump.map((h) => `${h.user}@${h.hostName}:${h.port}`),
    ['ops@198.51.100.20:22', 'admin@203.0.113.5:2022'],
  );
  t.regex(deep.identityFiles[0]!, /\/keys\/203\.0\.113\.9-root$/);
  // The executor dials the first hop, the second through it, the target through the second.
  const options = connectOptionsFor(deep, 'chain', {}, () => false);
  t.is(options.via?.target, 'ssh://admin@203.0.113.5:2022');
  t.is(options.via?.via?.target, 'ssh://ops@198.51.100.20:22');
  t.is(options.via?.via?.via, undefined);
  t.deepEqual(resolveSshHost(text, 'flat', 'chain').proxyJump, []);
  t.is(resolveSshHost(text, 'flat', 'chain').hostName, 'flat');
  t.throws(() => resolveSshHost(text, 'loop1', 'chain'), { message: /ProxyJump loops: loop1 -> loop2 -> loop1/ });
});
