// --root-namespace on this machine: only what never reaches its root namespace. The lab runs
// themselves are in vm.test.ts, against the nflab VM over SSH.
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveLabs } from '../src/resolve/load.ts';
import { isVirtualMachine, linkNamesOf, sysctlFilesOf } from '../src/engine/root-namespace.ts';
import { rootNodeOf } from '../src/resolve/resolve-lab.ts';
import { nflab, rootState } from './helpers/system.ts';

test('isVirtualMachine: systemd-detect-virt decides; without it, the CPU hypervisor flag (mock outputs: no bare-metal machine here)', (t) => {
  t.true(isVirtualMachine('kvm\n', ''));
  t.true(isVirtualMachine('qemu\n', ''));
  t.true(isVirtualMachine('oracle\n', 'flags\t\t: fpu vme'));
  t.false(isVirtualMachine('none\n', 'flags\t\t: fpu vme hypervisor'), 'systemd-detect-virt said none: bare metal');
  t.true(isVirtualMachine('', 'processor\t: 0\nflags\t\t: fpu vme de hypervisor lahf_lm\n'));
  t.false(isVirtualMachine(undefined, 'processor\t: 0\nflags\t\t: fpu vme de lahf_lm\n'));
});

test("the lab's links in the root namespace: its link ends, its bridges, and `ip link add` in its commands", async (t) => {
  const [l01, l12] = await resolveLabs(['01', '12']);
  t.deepEqual(linkNamesOf(l01!, 'host'), ['hwchiu0', 'veth0', 'veth1']);
  const director = rootNodeOf(l12!);
  t.is(director, 'director');
  t.true(linkNamesOf(l12!, director).includes('kube-ipvs0'), 'lab 12 creates the dummy kube-ipvs0 in a step');
  t.true(linkNamesOf(l12!, director).includes('eth0'));
});

test("the sysctls saved for restore: the node's own, those its commands write, and the usual ones", async (t) => {
  const [l01] = await resolveLabs(['01']);
  const files = sysctlFilesOf(l01!, 'host');
  t.true(files.includes('/proc/sys/net/bridge/bridge-nf-call-iptables'));
  t.true(files.includes('/proc/sys/net/ipv4/ip_forward'));
  t.true(files.includes('/proc/sys/net/ipv6/conf/default/disable_ipv6'));
});

test('--root-namespace usage errors (exit 2) come before any connection and change nothing', async (t) => {
  const before = rootState();
  const docker = await nflab(['run', '01', '--root-namespace', '--nodes', 'docker']);
  t.is(docker.code, 2);
  t.regex(docker.stderr, /--root-namespace runs container nodes as namespaces/);

  const dir = mkdtempSync(join(tmpdir(), 'nflab-root-'));
  const file = join(dir, 'two-hosts.ts');
  writeFileSync(
    file,
    `import { defineLab, ping } from 'nflab';
export default defineLab({
  id: 'two-hosts', title: 'two hosts', summary: 's', source: { title: 't', url: 'https://example.org' },
  topology: {
    nodes: { a: { role: 'host' }, b: { role: 'host' } },
    links: [{ a: { node: 'a', name: 'eth0', addresses: ['10.1.0.1/24'] }, b: { node: 'b', name: 'eth0', addresses: ['10.1.0.2/24'] } }],
  },
  steps: [{ title: 'ping', expect: [ping('a', '10.1.0.2').succeeds()] }],
});
`,
  );
  const two = await nflab(['run', file, '--root-namespace', '--json']);
  t.is(two.code, 2, two.stderr);
  t.regex(JSON.parse(two.stdout).error.message, /lab two-hosts: --root-namespace .* has 2 host nodes \(a, b\)/);
  t.deepEqual(rootState(), before);
});
