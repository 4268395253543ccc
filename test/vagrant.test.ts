// `--target vagrant[:machine]`, from samples of `vagrant ssh-config` output written from Vagrant's own
// output template (templates/commands/ssh_config/config.erb in hashicorp/vagrant): the shapes a real
// machine of ours does not print (VirtualBox's 127.0.0.1:2222, several machines, quoted paths,
// ProxyCommand). vagrant-up.test.ts parses the output of a real machine (libvirt) and runs a lab over it.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvError, LabError } from '../src/errors.ts';
import { parseVagrantSpec, parseVagrantSshConfig, vagrantTarget, vagrantTargetFrom } from '../src/exec/vagrant.ts';

// One machine, Vagrant's defaults: its own key replaced the insecure one, host keys not checked.
const SINGLE = `Host default
  HostName 127.0.0.1
  User vagrant
  Port 2222
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile /home/student/nflab/.vagrant/machines/default/virtualbox/private_key
  IdentitiesOnly yes
  LogLevel FATAL
  PubkeyAcceptedKeyTypes +ssh-rsa
  HostKeyAlgorithms +ssh-rsa

`;

// Two machines; a project path with a space (quoted), two candidate keys, and `web` with
// config.ssh.verify_host_key set (no UserKnownHostsFile / StrictHostKeyChecking lines).
const MULTI = `Host web
  HostName 192.168.56.10
  User vagrant
  Port 22
  PasswordAuthentication no

  IdentityFile "/home/student/my labs/.vagrant/machines/web/libvirt/private_key"

  IdentityFile /home/student/.vagrant.d/insecure_private_keys/vagrant.key.ed25519
  IdentitiesOnly yes
  LogLevel FATAL

Host db
  HostName 127.0.0.1
  User vagrant
  Port 2200
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile /home/student/.vagrant.d/insecure_private_key
  IdentitiesOnly yes
  LogLevel FATAL
`;

test("parses a single-machine ssh-config sample (written from Vagrant's template)", (t) => {
  const [block, ...rest] = parseVagrantSshConfig(SINGLE);
  t.deepEqual(rest, []);
  t.deepEqual(block, {
    host: 'default',
    hostName: '127.0.0.1',
    user: 'vagrant',
    port: 2222,
    identityFiles: ['/home/student/nflab/.vagrant/machines/default/virtualbox/private_key'],
    strictHostKeyChecking: 'no',
    userKnownHostsFile: '/dev/null',
  });
  // Vagrant's "do not check host keys" becomes accept-new into /dev/null: nothing is remembered.
  t.deepEqual(
    vagrantTargetFrom(block!, () => true),
    {
      machine: 'default',
      target: 'ssh://vagrant@127.0.0.1:2222',
      identity: '/home/student/nflab/.vagrant/machines/default/virtualbox/private_key',
      knownHosts: '/dev/null',
      acceptNewHostKey: true,
    },
  );
});

test("parses a multi-machine ssh-config sample with quoted paths (written from Vagrant's template)", (t) => {
  const blocks = parseVagrantSshConfig(MULTI);
  t.deepEqual(
    blocks.map((b) => b.host),
    ['web', 'db'],
  );
  t.deepEqual(blocks[0]!.identityFiles, [
    '/home/student/my labs/.vagrant/machines/web/libvirt/private_key',
    '/home/student/.vagrant.d/insecure_private_keys/vagrant.key.ed25519',
  ]);
  // The first key file that exists is used; with host key verification on, known_hosts is checked strictly.
  const web = vagrantTargetFrom(blocks[0]!, (f) => f.endsWith('.ed25519'));
  t.deepEqual(web, {
    machine: 'web',
    target: 'ssh://vagrant@192.168.56.10:22',
    identity: '/home/student/.vagrant.d/insecure_private_keys/vagrant.key.ed25519',
    acceptNewHostKey: false,
  });
  t.is(vagrantTargetFrom(blocks[1]!, () => true).target, 'ssh://vagrant@127.0.0.1:2200');
});

test('a ProxyCommand machine is refused with an EnvError (a sample written by hand)', (t) => {
  const [block] = parseVagrantSshConfig(
    'Host default\n  HostName 10.0.0.5\n  User vagrant\n  ProxyCommand=docker exec -i x nc %h %p\n',
  );
  t.is(block!.proxyCommand, 'docker exec -i x nc %h %p');
  t.throws(() => vagrantTargetFrom(block!), { instanceOf: EnvError, message: /ProxyCommand/ });
});

test('--target vagrant[:machine] is recognised', (t) => {
  t.deepEqual(parseVagrantSpec('vagrant'), {});
  t.deepEqual(parseVagrantSpec('vagrant:web'), { machine: 'web' });
  t.is(parseVagrantSpec('ssh://root@host'), undefined);
  t.is(parseVagrantSpec('vagrant:'), undefined);
});

const hasVagrant = (() => {
  try {
    execFileSync('vagrant', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

test(`vagrantTarget outside a Vagrant project is an EnvError with a fix (vagrant ${hasVagrant ? 'installed' : 'not installed'})`, async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'nflab-no-vagrantfile-'));
  try {
    const err = await t.throwsAsync(vagrantTarget('web', { cwd: empty }), { instanceOf: EnvError });
    if (hasVagrant) {
      t.regex(err!.message, /`vagrant ssh-config web` failed: A Vagrant environment or target machine is required/);
      t.regex(err!.message, /fix: start the machine with `vagrant up web`/);
    } else {
      t.regex(err!.message, /vagrant is not installed/);
    }
    t.false(err instanceof LabError);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});
