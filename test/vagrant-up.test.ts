// Real Vagrant: `vagrant up` with vagrant-libvirt on QEMU's software emulation, from nflab's local box
// (scripts/vagrant/build-box.sh), provisioning with vagrant/provision.sh offline, every lab inside the
// VM, lab 01 from outside with `--target vagrant`, then `vagrant destroy -f`. libvirtd, its networks and
// Vagrant run in a network namespace of their own (scripts/vagrant/libvirt-ns.sh): the root namespace's
// firewall, routes and ip_forward must be the same afterwards. Slow (a boot and provisioning under
// emulation: minutes), so it runs only with NFLAB_VAGRANT_TESTS=1 for now: on this shared machine at
// load 40-58 it has not yet finished (vagrant up alone outlasted 30 min; at load 24 it took 19.6 min).
// To put it in CI, set NFLAB_VAGRANT_TESTS=1 in .ci/run once it has passed on a CI machine.
import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, rootState } from './helpers/system.ts';
import { parseVagrantSshConfig } from '../src/exec/vagrant.ts';

const enabled = process.env.NFLAB_VAGRANT_TESTS === '1';
const NAME = `t${process.pid}`;
const NS = `nflab-lv-${NAME}`;
const LIBVIRT_NS = join(REPO, 'scripts/vagrant/libvirt-ns.sh');
const BOX = 'nflab/local';
const MINUTE = 60_000;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs a command to its end (or its time limit), never throwing: the test asserts on the result. */
function run(argv: string[], env: Record<string, string>, timeoutMs: number): Promise<Ran> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      argv[0]!,
      argv.slice(1),
      {
        cwd: REPO,
        env: { ...process.env, ...env },
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 64 << 20,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : null
          : 0;
        resolve({ code, stdout, stderr, seconds: Math.round((Date.now() - started) / 100) / 10 });
      },
    );
  });
}

/** Vagrant's progress bars, carriage returns and colour codes out of a log. */
function readable(text: string): string {
  return text
    .split(/\r|\n/)
    .filter((l) => l.trim() && !/Progress: \d+%/.test(l))
    .map((l) => l.replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''))
    .join('\n');
}

/** Inside the libvirt namespace: where libvirtd's sockets and the VM's management address are. */
const inNs = (argv: string[]) => [LIBVIRT_NS, 'exec', NAME, '--', ...argv];
const virsh = (args: string[], env: Record<string, string>) => run(inNs(['virsh', '-q', ...args]), env, MINUTE);
const names = (r: Ran) =>
  r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0]!)
    .filter(Boolean);

function rootNamespace(): Record<string, string> {
  return {
    ...rootState(),
    // /usr/sbin/nft by path: under npm, node_modules/.bin has another `nft` (@vercel/nft) first in PATH.
    nft: execFileSync('/usr/sbin/nft', ['list', 'ruleset'], { encoding: 'utf8' }).replace(/packets \d+ bytes \d+/g, ''),
    routes6: execFileSync('ip', ['-6', 'route', 'show', 'table', 'all'], { encoding: 'utf8' }),
  };
}

const vagrantTest = enabled ? test.serial : test.skip;

vagrantTest(
  'vagrant up (libvirt, QEMU emulation, offline box) → labs inside and from outside → vagrant destroy leaves nothing',
  async (t) => {
    t.timeout(90 * MINUTE);
    const before = rootNamespace();
    const home = mkdtempSync(join(tmpdir(), 'nflab-vagrant-home-'));
    const dotfile = mkdtempSync(join(tmpdir(), 'nflab-vagrant-dot-'));
    const env = {
      VAGRANT_HOME: home,
      VAGRANT_DOTFILE_PATH: dotfile,
      VAGRANT_CHECKPOINT_DISABLE: '1',
      NO_COLOR: '1',
      NFLAB_VAGRANT_BOX: BOX,
      NFLAB_VAGRANT_DRIVER: 'qemu',
      NFLAB_VAGRANT_CONSOLE_LOG: join(dotfile, 'console.log'),
    };
    let up = false;
    const times: Record<string, number> = {};
    t.teardown(async () => {
      // Only what this test made: its own libvirtd's namespace (its domains, volumes, networks), its Vagrant dirs.
      if (up) execFileSync(LIBVIRT_NS, ['down', NAME], { stdio: 'inherit' });
      rmSync(home, { recursive: true, force: true });
      rmSync(dotfile, { recursive: true, force: true });
    });

    const box = await run([join(REPO, 'scripts/vagrant/build-box.sh')], env, 20 * MINUTE);
    times['build-box'] = box.seconds;
    t.is(box.code, 0, box.stderr);
    const boxFile = box.stdout.trim().split('\n').pop()!;

    const ns = await run([LIBVIRT_NS, 'up', NAME], env, 5 * MINUTE);
    up = existsSync(`/run/netns/${NS}`);
    times['libvirtd up'] = ns.seconds;
    t.is(ns.code, 0, ns.stderr);

    const add = await run(inNs(['vagrant', 'box', 'add', '--name', BOX, boxFile]), env, 10 * MINUTE);
    t.is(add.code, 0, readable(add.stdout + add.stderr));

    const vup = await run(inNs(['vagrant', 'up', '--provider=libvirt']), env, 45 * MINUTE);
    times['vagrant up + provision'] = vup.seconds;
    const upLog = readable(vup.stdout + vup.stderr);
    if (vup.code !== 0) {
      const console = join(dotfile, 'console.log');
      t.log(existsSync(console) ? execFileSync('tail', ['-40', console], { encoding: 'utf8' }) : 'no console log');
    }
    t.is(vup.code, 0, upLog);
    t.regex(upLog, /Domain type:\s+qemu/);
    t.regex(upLog, /Running provisioner: shell/);
    t.regex(upLog, /nflab is ready/);
    // Offline: provisioning found everything in the box and downloaded nothing.
    t.notRegex(upLog, /setup: installing|nodejs\.org/);

    // Inside the VM, as the README says. NFLAB_VAGRANT_TEST_LABS narrows it (e.g. "01 12") where a
    // machine is too loaded for every lab under emulation.
    const labs = process.env.NFLAB_VAGRANT_TEST_LABS ?? '--all';
    t.regex(labs, /^(--all|[0-9]{2}( [0-9]{2})*)$/);
    const inside = await run(
      inNs(['vagrant', 'ssh', '-c', `cd /vagrant && sudo npx nflab run ${labs} --json`]),
      env,
      30 * MINUTE,
    );
    times[`npx nflab run ${labs} (in the VM)`] = inside.seconds;
    t.is(inside.code, 0, inside.stderr.slice(-4000));
    const report = JSON.parse(inside.stdout.slice(inside.stdout.indexOf('{'))) as {
      labs: { id: string; status: string }[];
    };
    t.true(report.labs.length >= (labs === '--all' ? 12 : labs.split(' ').length));
    for (const lab of report.labs) t.is(lab.status, 'met', `lab ${lab.id} in the VM`);

    // From outside the VM: nflab reads `vagrant ssh-config` (a real one: libvirt's management address,
    // the key Vagrant generated in place of the insecure one) and runs lab 01 over SSH.
    const config = await run(inNs(['vagrant', 'ssh-config']), env, 5 * MINUTE);
    t.is(config.code, 0, config.stderr);
    const [machine, ...others] = parseVagrantSshConfig(config.stdout);
    t.deepEqual(others, []);
    t.is(machine!.user, 'vagrant');
    t.regex(machine!.hostName, /^192\.168\.121\.\d+$/);
    t.true(
      machine!.identityFiles.some((f) => f.startsWith(dotfile) && existsSync(f)),
      machine!.identityFiles.join(', '),
    );
    const outside = await run(
      inNs([process.execPath, join(REPO, 'bin/nflab.mjs'), 'run', '01', '--target', 'vagrant', '--json']),
      env,
      15 * MINUTE,
    );
    times['nflab run 01 --target vagrant'] = outside.seconds;
    t.is(outside.code, 0, outside.stderr.slice(-4000));
    const lab01 = JSON.parse(outside.stdout) as { labs: { id: string; status: string }[] };
    t.deepEqual(
      lab01.labs.map((l) => [l.id, l.status]),
      [['01', 'met']],
    );

    const destroy = await run(inNs(['vagrant', 'destroy', '-f']), env, 10 * MINUTE);
    times['vagrant destroy'] = destroy.seconds;
    t.is(destroy.code, 0, readable(destroy.stdout + destroy.stderr));
    // No domain, no network; of the volumes only the box's base image, which vagrant-libvirt keeps
    // for the next `vagrant up` as Vagrant keeps the box (deleted here with the box).
    t.deepEqual(names(await virsh(['list', '--all', '--name'], env)), []);
    t.deepEqual(names(await virsh(['net-list', '--all', '--name'], env)), []);
    const volumes = names(await virsh(['vol-list', 'default'], env));
    t.true(
      volumes.every((v) => v.includes('_vagrant_box_image_')),
      volumes.join(', '),
    );
    for (const v of volumes) t.is((await virsh(['vol-delete', '--pool', 'default', v], env)).code, 0);
    t.deepEqual(names(await virsh(['vol-list', 'default'], env)), []);

    execFileSync(LIBVIRT_NS, ['down', NAME], { stdio: 'inherit' });
    up = false;
    t.false(existsSync(`/run/netns/${NS}`));
    t.false(readdirSync('/run/netns').includes(NS));
    t.deepEqual(rootNamespace(), before);
    t.log(
      Object.entries(times)
        .map(([k, s]) => `${k}: ${s}s`)
        .join('; '),
    );
  },
);
