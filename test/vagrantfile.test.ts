// The Vagrantfile is valid for Vagrant itself (Debian's vagrant package), for both providers.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './helpers/system.ts';

test('vagrant validate accepts the Vagrantfile', (t) => {
  const out = execFileSync('vagrant', ['validate'], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, VAGRANT_CHECKPOINT_DISABLE: '1' },
  });
  t.regex(out, /Vagrantfile validated successfully/);
});

test('vagrant validate accepts it with the local offline box and QEMU emulation (NFLAB_VAGRANT_BOX, NFLAB_VAGRANT_DRIVER)', (t) => {
  const out = execFileSync('vagrant', ['validate'], {
    cwd: REPO,
    encoding: 'utf8',
    env: {
      ...process.env,
      VAGRANT_CHECKPOINT_DISABLE: '1',
      NFLAB_VAGRANT_BOX: 'nflab/local',
      NFLAB_VAGRANT_DRIVER: 'qemu',
      NFLAB_VAGRANT_CONSOLE_LOG: '/tmp/nflab-console.log',
    },
  });
  t.regex(out, /Vagrantfile validated successfully/);
  const text = readFileSync(join(REPO, 'Vagrantfile'), 'utf8');
  t.regex(text, /config\.vm\.box = offline \? local_box : "debian\/bookworm64"/);
});

test('the Vagrantfile provisions with vagrant/provision.sh for VirtualBox and libvirt', (t) => {
  const text = readFileSync(join(REPO, 'Vagrantfile'), 'utf8');
  t.regex(text, /provider "virtualbox"/);
  t.regex(text, /provider "libvirt"/);
  t.regex(text, /provision "shell", path: "vagrant\/provision\.sh"/);
  const provision = readFileSync(join(REPO, 'vagrant/provision.sh'), 'utf8');
  t.regex(provision, /scripts\/setup\.sh/);
  t.notThrows(() => execFileSync('bash', ['-n', join(REPO, 'vagrant/provision.sh')]));
});
