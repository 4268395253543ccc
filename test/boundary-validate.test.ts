// Labs that used to be accepted and then misbehave (issue 17): an unknown field (a typo) at any
// level, a topology the kernel refuses or builds otherwise than written, a lab file whose getter
// throws, a journal directory that cannot be written. Each is refused before anything exists:
// exit 2 for the lab (naming the field), exit 3 for the environment (with the fix).
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { CLI, REPO, nflab, rootState } from './helpers/system.ts';
import { validateLab } from '../src/resolve/validate-lab.ts';
import { LabError } from '../src/errors.ts';
import type { Lab } from '../src/lab/types.ts';

const valid = (): Lab => ({
  id: 't1',
  title: 'test',
  summary: 'a two-node lab',
  source: { title: 'none' },
  topology: {
    nodes: {
      host: { role: 'host', listen: [8000] },
      c1: { role: 'container', routes: [{ to: 'default', via: '10.1.0.1' }] },
    },
    bridges: { br0: { node: 'host', addresses: ['10.1.0.1/24'] } },
    links: [
      {
        a: { node: 'c1', name: 'eth0', addresses: ['10.1.0.2/24'] },
        b: { node: 'host', name: 'veth0', bridge: 'br0' },
      },
    ],
  },
  steps: [
    {
      title: 'ping',
      expect: [
        { kind: 'ping', traffic: { kind: 'ping', from: 'c1', to: '10.1.0.1' }, expect: 'succeeds' },
        { kind: 'conntrack', node: 'host', orig: { src: '10.1.0.2', dport: { min: 1 } }, count: { min: 0 } },
      ],
    },
  ],
});

function rejects(t: import('ava').ExecutionContext, mutate: (lab: any) => void, message: RegExp) {
  const lab = valid();
  mutate(lab);
  const err = t.throws(() => validateLab(lab), { instanceOf: LabError });
  t.regex(err?.message ?? '', message);
}

test('the base lab is valid', (t) => {
  t.notThrows(() => validateLab(valid()));
});

// ---- strict shape: unknown fields at every level ----
test('a typo of listen names the path and the field meant', (t) =>
  rejects(
    t,
    (l) => {
      l.topology.nodes.c1.listens = [8000];
    },
    /topology\.nodes\.c1\.listens: did you mean listen\?/,
  ));
test('an unknown top-level field', (t) =>
  rejects(
    t,
    (l) => {
      l.sumary = 'x';
    },
    /lab t1: sumary: did you mean summary\?/,
  ));
test('an unknown field of a link end', (t) =>
  rejects(
    t,
    (l) => {
      l.topology.links[0].a.adresses = ['10.1.0.9/24'];
    },
    /topology\.links\[0\]\.a\.adresses: did you mean addresses\?/,
  ));
test('an unknown field of a route', (t) =>
  rejects(
    t,
    (l) => {
      l.topology.nodes.c1.routes[0].gateway = '10.1.0.1';
    },
    /topology\.nodes\.c1\.routes\[0\]\.gateway: unknown field \(known here: to, via, dev, extra\)/,
  ));
test('an unknown field of a check, judged by its kind', (t) =>
  rejects(
    t,
    (l) => {
      l.steps[0].expect[0].expected = 'succeeds';
    },
    /steps\[0\]\.expect\[0\]\.expected: did you mean expect\?/,
  ));
test("an unknown field of a check's traffic", (t) =>
  rejects(
    t,
    (l) => {
      l.steps[0].expect[0].traffic.counts = 3;
    },
    /steps\[0\]\.expect\[0\]\.traffic\.counts: did you mean count\?/,
  ));
test('an unknown field in a range', (t) =>
  rejects(
    t,
    (l) => {
      l.steps[0].expect[1].orig.dport.minimum = 1;
    },
    /steps\[0\]\.expect\[1\]\.orig\.dport\.minimum: unknown field \(known here: min, max\)/,
  ));
test('an unknown field of a step', (t) =>
  rejects(
    t,
    (l) => {
      l.steps[0].commands = [];
    },
    /steps\[0\]\.commands: unknown field/,
  ));
test('names the lab chooses (nodes, sysctls) are not fields', (t) => {
  const lab = valid();
  lab.topology.nodes.c1!.sysctls = { 'net.ipv4.ip_forward': 1 };
  t.notThrows(() => validateLab(lab));
});

// ---- topologies that validated but could not be built ----
test('a route via a gateway on no subnet of the node', (t) =>
  rejects(
    t,
    (l) => {
      l.topology.nodes.c1.routes[0].via = '10.9.0.1';
    },
    /topology\.nodes\.c1\.routes\[0\]: gateway 10\.9\.0\.1 is on no subnet of node c1 \(its subnets: 10\.1\.0\.0\/24 \(eth0\)\)/,
  ));
test("a gateway on another interface than the route's dev", (t) =>
  rejects(
    t,
    (l) => {
      l.topology.nodes.c1.routes[0].dev = 'lo';
    },
    /gateway 10\.1\.0\.1 is on no subnet of node c1 on lo/,
  ));
test('onlink lets a gateway off every subnet through', (t) => {
  const lab = valid();
  lab.topology.nodes.c1!.routes = [{ to: 'default', via: '10.9.0.1', dev: 'eth0', extra: ['onlink'] }];
  t.notThrows(() => validateLab(lab));
});
test('address 0.0.0.0/0', (t) =>
  rejects(
    t,
    (l) => {
      l.topology.links[0].a.addresses = ['0.0.0.0/0'];
    },
    /topology\.links\[0\]\.a\.addresses: 0\.0\.0\.0\/0: a \/0 prefix/,
  ));
test('an address with a /0 prefix', (t) =>
  rejects(
    t,
    (l) => {
      l.topology.links[0].a.addresses = ['10.1.0.2/0'];
    },
    /10\.1\.0\.2\/0: a \/0 prefix makes the whole address space one link/,
  ));
test('a multicast address', (t) =>
  rejects(
    t,
    (l) => {
      l.topology.links[0].a.addresses = ['224.0.0.5/24'];
    },
    /224\.0\.0\.5\/24: 224\.0\.0\.0\/4 is multicast/,
  ));
test('one address with two prefixes on two nodes (c1 would ping itself)', (t) =>
  rejects(
    t,
    (l) => {
      l.topology.links[0].a.addresses = ['10.1.0.1/16'];
    },
    /address 10\.1\.0\.1 is on host:br0 \(\/24\) and on c1:eth0 \(\/16\): traffic to it from either node would be answered by the sender itself/,
  ));
test('one address twice on one node', (t) =>
  rejects(
    t,
    (l) => {
      l.topology.nodes.c1.addresses = { lo: ['10.1.0.2/32'] };
    },
    /address 10\.1\.0\.2 is on c1:lo \(\/32\) and again on eth0 \(\/24\)/,
  ));
test('a route whose destination has host bits set', (t) =>
  rejects(
    t,
    (l) => {
      l.topology.nodes.c1.routes.push({ to: '10.7.0.1/16', dev: 'eth0' });
    },
    /routes\[1\]: field "to" 10\.7\.0\.1\/16 has host bits set \(the network is 10\.7\.0\.0\/16\)/,
  ));
test('the same /32 on several nodes (a shared service address) stays allowed', (t) => {
  const lab = valid();
  lab.topology.nodes.host!.addresses = { lo: ['10.96.0.10/32'] };
  lab.topology.nodes.c1!.addresses = { lo: ['10.96.0.10/32'] };
  t.notThrows(() => validateLab(lab));
});

// ---- through the CLI: exit codes, and nothing created ----
function labFile(dir: string, body: string): string {
  const file = join(dir, 'lab.ts');
  writeFileSync(file, `import { defineLab, ping } from 'nflab';\n${body}\n`);
  return file;
}
const LAB_TEXT = `{
  id: 'b1', title: 't', summary: 's', source: { title: 'none' },
  topology: {
    nodes: { host: { role: 'host' }, c1: { role: 'container', NODE } },
    links: [{ a: { node: 'c1', name: 'eth0', addresses: ['10.1.0.2/24'] }, b: { node: 'host', name: 'veth0', addresses: ['10.1.0.1/24'] } }],
  },
  steps: [{ title: 'ping', expect: [ping('c1', '10.1.0.1').succeeds()] }],
}`;

test('through the CLI: a typo, a gateway on no subnet and a throwing getter are exit 2 with the field named, before anything exists', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-boundary-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cases: [string, RegExp][] = [
    [
      `export default defineLab(${LAB_TEXT.replace('NODE', 'listens: [8000]')});`,
      /topology\.nodes\.c1\.listens: did you mean listen\?/,
    ],
    [
      `export default defineLab(${LAB_TEXT.replace('NODE', "routes: [{ to: 'default', via: '192.168.7.1' }]")});`,
      /routes\[0\]: gateway 192\.168\.7\.1 is on no subnet of node c1/,
    ],
    [
      `const lab = ${LAB_TEXT.replace('NODE', '')};\nexport default { ...lab, get topology() { throw new Error('boom from the lab file'); } };`,
      /topology: reading this field threw: boom from the lab file/,
    ],
    [`export default { get id() { throw new Error('no id today'); } };`, /id: reading this field threw: no id today/],
  ];
  for (const [body, message] of cases) {
    const file = labFile(dir, body);
    for (const command of [
      ['run', file],
      ['show', file],
      ['up', file],
    ]) {
      const r = await nflab(command);
      t.is(r.code, 2, `${command[0]}: ${r.stderr}`);
      t.regex(r.stderr, message, command[0]);
      t.notRegex(r.stderr, /\n\s+at .+:\d+:\d+/, `${command[0]}: no stack trace`);
      t.notRegex(r.stdout, /\(run [a-z0-9]+\)/, `${command[0]}: no run was started`);
    }
  }
});

/** nflab in a mount namespace of its own where the journal directory is a tmpfs prepared by `prep`
 * (read-only, or full): the machine's mounts are untouched. */
function nflabWithJournal(
  prep: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = mkdtempSync('/tmp/nflab-journal-');
  const script = `set -e; mount -t tmpfs -o size=64k tmpfs "$1"; ${prep}; shift; exec "$@"`;
  return new Promise((resolve) => {
    execFile(
      'unshare',
      ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', dir, process.execPath, CLI, ...args],
      { cwd: REPO, env: { ...process.env, NFLAB_RUNTIME_DIR: dir, NO_COLOR: '1' } },
      (err, stdout, stderr) => {
        rmSync(dir, { recursive: true, force: true });
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
      },
    );
  });
}

for (const [what, prep, why] of [
  ['read-only', 'mount -o remount,ro "$1"', /is on a read-only file system/],
  ['full', 'dd if=/dev/zero of="$1/fill" bs=4k 2>/dev/null || true', /is full/],
] as const) {
  test(`a journal directory that is ${what} is exit 3 with the fix, before anything is created`, async (t) => {
    const before = rootState();
    for (const command of [
      ['run', '01'],
      ['up', '01', '--step', '1'],
    ]) {
      const r = await nflabWithJournal(prep, command);
      t.is(r.code, 3, `${command[0]}: ${r.stdout}${r.stderr}`);
      t.regex(r.stderr, why, command[0]);
      t.regex(r.stderr, /fix: free space or make .* writable/, command[0]);
      t.notRegex(r.stdout, /\(run [a-z0-9]+\)/, `${command[0]}: no run was started`);
    }
    t.deepEqual(rootState(), before);
  });
}
