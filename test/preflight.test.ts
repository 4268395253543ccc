// Pre-flight: what would make results wrong is found before a run, explained, and exits 3 with
// the fix. Real conditions where they can be made without touching this machine (a PATH without a
// tool or with the legacy iptables first, legacy rules in a scratch namespace); a mock executor
// only where the condition cannot exist here, and the test's name says so.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nflab } from './helpers/system.ts';
import { assertNoLegacyRulesInNodes, legacyRules, missingKernelFeatures, preflight } from '../src/engine/preflight.ts';
import { LocalExecutor } from '../src/exec/local.ts';
import { EnvError } from '../src/errors.ts';
import { loadAllLabs } from '../src/resolve/load.ts';
import type { Executor, RunResult } from '../src/exec/types.ts';
import type { Lab } from '../src/lab/types.ts';

function which(tool: string): string {
  return execFileSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { encoding: 'utf8' }).trim();
}

/** A directory for PATH holding links to these tools only. */
function pathWith(tools: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-path-'));
  for (const tool of tools) symlinkSync(which(tool), join(dir, tool));
  return dir;
}

const BASICS = ['sh', 'id', 'cat', 'zcat', 'gzip', 'uname', 'test'];
const TOOLS = [
  'ip',
  'bridge',
  'iptables-nft',
  'iptables-nft-save',
  'iptables-nft-restore',
  'tcpdump',
  'conntrack',
  'ping',
  'socat',
  'sysctl',
  'nsenter',
];

test('the real machine passes pre-flight for every lab', async (t) => {
  await t.notThrowsAsync(preflight(new LocalExecutor(), await loadAllLabs()));
  t.deepEqual(await missingKernelFeatures(new LocalExecutor()), [], 'this kernel has every option the labs need');
});

test('a missing tool exits 3 with the package to install, before anything is created (real: a PATH without tcpdump)', async (t) => {
  const dir = pathWith([...BASICS, ...TOOLS.filter((x) => x !== 'tcpdump')]);
  const runtime = mkdtempSync(join(tmpdir(), 'nflab-rt-'));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(runtime, { recursive: true, force: true });
  });
  const r = await nflab(['run', '01'], { env: { PATH: dir, NFLAB_RUNTIME_DIR: runtime } });
  t.is(r.code, 3, r.stderr);
  t.regex(r.stderr, /missing tools on this machine: tcpdump/);
  t.regex(r.stderr, /fix: apt-get install -y tcpdump/);
  // The journal directory may have been probed for writing; no run's record was ever written.
  t.deepEqual(existsSync(join(runtime, 'runs')) ? readdirSync(join(runtime, 'runs')) : [], [], 'no run was started');
});

test('a machine whose own iptables is legacy still runs the lab with iptables-nft, and -v says so (real: iptables-legacy first on PATH as iptables)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-path-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // xtables-legacy-multi acts by the name it is called with: this `iptables` is the legacy one,
  // as on a machine whose alternative is iptables-legacy. nflab no longer asks for it to be switched.
  symlinkSync(which('iptables-legacy'), join(dir, 'iptables'));
  for (const name of ['iptables-save', 'iptables-restore']) symlinkSync(which('iptables-legacy'), join(dir, name));
  const r = await nflab(['run', '01', '-v', '--json'], { env: { PATH: `${dir}:${process.env.PATH}` } });
  t.is(r.code, 0, r.stderr);
  const lab = JSON.parse(r.stdout).labs[0];
  t.is(lab.iptables, 'nft');
  // The counter checks read nf_tables (through iptables-nft-save): a legacy `iptables-save` would see no DROP policy counting.
  const counted = lab.steps[0].checks.find((c: { kind: string }) => c.kind === 'counter');
  t.is(counted.status, 'met', JSON.stringify(counted));
  const verbose = await nflab(['run', '01', '-v'], { env: { PATH: `${dir}:${process.env.PATH}` } });
  t.is(verbose.code, 0, verbose.stderr);
  t.regex(
    verbose.stdout,
    /note: `iptables` on this machine runs iptables-legacy, and this lab's rules are in iptables-nft: type iptables-nft/,
  );
  const plain = await nflab(['run', '01', '-v']);
  t.notRegex(plain.stdout, /note: `iptables`/, "no note when the machine's iptables is the lab's backend");
});

test('legacy rules in a namespace are found, an untouched namespace has none (real: iptables-legacy in a scratch namespace)', async (t) => {
  const ns = `nflab-pf-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  t.teardown(() => {
    execFileSync('ip', ['netns', 'del', ns]);
  });
  const exec = new LocalExecutor();
  const wrap = (argv: string[]) => ['ip', 'netns', 'exec', ns, ...argv];
  t.is(await legacyRules(exec, wrap), undefined, 'a fresh namespace has no legacy rules');
  execFileSync('ip', ['netns', 'exec', ns, 'iptables-legacy', '-P', 'FORWARD', 'ACCEPT']);
  t.is(await legacyRules(exec, wrap), undefined, 'a legacy table with only ACCEPT policies changes nothing');
  execFileSync('ip', ['netns', 'exec', ns, 'iptables-legacy', '-A', 'FORWARD', '-s', '192.0.2.1', '-j', 'DROP']);
  t.is(await legacyRules(exec, wrap), 'filter: 1 rule or policies');
  const err = await t.throwsAsync(
    assertNoLegacyRulesInNodes(exec, ['c1'], (_node, argv) => wrap(argv)),
    { instanceOf: EnvError },
  );
  t.is(err!.exitCode, 3);
  t.regex(err!.message, /legacy backend inside the lab \(node c1: filter: 1 rule or policies\)/);
  t.regex(err!.message, /fix: run the lab with iptables-nft in every node/);
});

/** Answers the commands pre-flight runs as a healthy machine would, except where `override` says. */
class FakeMachine implements Executor {
  readonly name = 'a fake machine';
  constructor(private readonly override: (argv: string[]) => RunResult | undefined) {}
  async run(argv: string[]): Promise<RunResult> {
    const answer = this.override(argv);
    if (answer) return answer;
    const ok = (stdout = ''): RunResult => ({ code: 0, stdout, stderr: '' });
    const line = argv.join(' ');
    if (line === 'id -u') return ok('0\n');
    if (line.startsWith('sh -c for t; do command -v')) return ok('@@checked\n');
    if (line === 'iptables-nft --version') return ok('iptables v1.8.9 (nf_tables)\n');
    if (line.includes('/proc/config.gz')) return ok(FULL_CONFIG);
    if (line === 'cat /proc/net/ip_tables_names') return ok('');
    if (line.startsWith('test -e')) return ok();
    throw new Error(`the fake machine was not told how to answer: ${line}`);
  }
  spawn(): never {
    throw new Error('not used');
  }
  async close() {}
}
const FULL_CONFIG = [
  'CONFIG_NET_NS=y',
  'CONFIG_VETH=m',
  'CONFIG_BRIDGE=m',
  'CONFIG_NF_TABLES=m',
  'CONFIG_NFT_COMPAT=m',
  'CONFIG_NF_CONNTRACK=m',
  'CONFIG_NF_NAT=m',
  '',
].join('\n');

test('the fake machine passes as a healthy one (the mocks below change one thing each)', async (t) => {
  await t.notThrowsAsync(preflight(new FakeMachine(() => undefined), await loadAllLabs()));
});

test("legacy rules in the root namespace exit 3 with how to converge on one backend (mock: this machine's root firewall must not be changed)", async (t) => {
  const machine = new FakeMachine((argv) => {
    if (argv.join(' ') === 'cat /proc/net/ip_tables_names') return { code: 0, stdout: 'nat\nfilter\n', stderr: '' };
    if (argv[0] === 'iptables-legacy-save')
      return {
        code: 0,
        stdout:
          '*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n-A FORWARD -j DOCKER-USER\nCOMMIT\n',
        stderr: '',
      };
    return undefined;
  });
  const err = await t.throwsAsync(preflight(machine), { instanceOf: EnvError });
  t.regex(
    err!.message,
    /the root namespace on a fake machine has iptables rules in the legacy backend \(nat: 1 rule or policies, filter: 2 rules or policies\)/,
  );
  t.regex(
    err!.message,
    /fix: run the labs with the backend that machine uses \(nflab run --iptables legacy\), or make everything use one backend/,
  );
});

test('a kernel without veth or NAT exits 3 naming the options (mock: this kernel has them built in)', async (t) => {
  const machine = new FakeMachine((argv) =>
    argv.join(' ').includes('/proc/config.gz')
      ? {
          code: 0,
          stdout: FULL_CONFIG.replace('CONFIG_VETH=m', '# CONFIG_VETH is not set').replace('CONFIG_NF_NAT=m\n', ''),
          stderr: '',
        }
      : undefined,
  );
  const err = await t.throwsAsync(preflight(machine), { instanceOf: EnvError });
  t.regex(err!.message, /lacks what every lab needs: veth pairs \(CONFIG_VETH\), NAT \(CONFIG_NF_NAT\)/);
  t.regex(err!.message, /fix: boot a kernel built with these options/);
});

test('a kernel without a readable configuration is not blamed (mock: this kernel has /proc/config.gz)', async (t) => {
  const machine = new FakeMachine((argv) =>
    argv.join(' ').includes('/proc/config.gz')
      ? { code: 1, stdout: '', stderr: 'cat: /boot/config-x: No such file' }
      : undefined,
  );
  await t.notThrowsAsync(preflight(machine));
});

test('br_netfilter absent exits 3 for labs that set net.bridge.* sysctls, not for others (mock: br_netfilter is built into this kernel)', async (t) => {
  const labs = await loadAllLabs();
  const machine = new FakeMachine((argv) => (argv[0] === 'test' ? { code: 1, stdout: '', stderr: '' } : undefined));
  const err = await t.throwsAsync(
    preflight(
      machine,
      labs.filter((l) => l.id === '01'),
    ),
    { instanceOf: EnvError },
  );
  t.regex(
    err!.message,
    /br_netfilter is not loaded on a fake machine \(no \/proc\/sys\/net\/bridge\), and lab 01 sets net\.bridge\.\* sysctls/,
  );
  t.regex(err!.message, /fix: modprobe br_netfilter/);
  const declared: Lab = { ...labs.find((l) => l.id === '01')!, requires: ['br_netfilter'] };
  await t.notThrowsAsync(
    preflight(machine, [declared]),
    'a lab that declares the feature is skipped by the engine instead',
  );
});

test('a tool probe whose exit status is lost (a busy SSH link) is asked again, not reported as a missing tool (mock: a lost exit status cannot be made on purpose)', async (t) => {
  let probes = 0;
  const flaky = new FakeMachine((argv) =>
    argv.join(' ').startsWith('sh -c for t; do command -v') && ++probes === 1
      ? { code: null, stdout: '', stderr: '' }
      : undefined,
  );
  await t.notThrowsAsync(preflight(flaky));
  t.is(probes, 2);
  const dead = new FakeMachine((argv) =>
    argv.join(' ').startsWith('sh -c for t; do command -v') ? { code: null, stdout: '', stderr: '' } : undefined,
  );
  const err = await t.throwsAsync(preflight(dead), { instanceOf: EnvError });
  t.regex(err!.message, /could not check which tools a fake machine has \(exit unknown\)/);
});
