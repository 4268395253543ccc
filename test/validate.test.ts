// Invalid labs are rejected before anything is created: exit 2, a message naming the lab, the
// step or field, and the problem.
import test from 'ava';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nflab } from './helpers/system.ts';
import { validateLab } from '../src/resolve/validate-lab.ts';
import { LabError } from '../src/errors.ts';
import type { Lab } from '../src/lab/types.ts';

const valid = (): Lab => ({
  id: 't1',
  title: 'test',
  summary: 'a two-node lab',
  source: { title: 'none' },
  topology: {
    nodes: { host: { role: 'host' }, c1: { role: 'container' } },
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
      expect: [{ kind: 'ping', traffic: { kind: 'ping', from: 'c1', to: '10.1.0.1' }, expect: 'succeeds' }],
    },
  ],
});

function rejects(t: import('ava').ExecutionContext, mutate: (lab: Lab) => void, message: RegExp) {
  const lab = valid();
  mutate(lab);
  const err = t.throws(() => validateLab(lab), { instanceOf: LabError });
  t.regex(err!.message, message);
}

test('a valid lab passes', (t) => {
  t.notThrows(() => validateLab(valid()));
});
test('unknown node in a link', (t) =>
  rejects(
    t,
    (l) => {
      l.topology.links[0]!.a.node = 'c9';
    },
    /lab t1: topology\.links\[0\]\.a: field "node" names unknown node "c9"/,
  ));
test('unknown bridge', (t) =>
  rejects(
    t,
    (l) => {
      l.topology.links[0]!.b.bridge = 'br9';
    },
    /topology\.links\[0\]\.b: field "bridge" names unknown bridge "br9"/,
  ));
test('malformed CIDR', (t) =>
  rejects(
    t,
    (l) => {
      l.topology.links[0]!.a.addresses = ['10.1.0.300/24'];
    },
    /topology\.links\[0\]\.a\.addresses: malformed address "10\.1\.0\.300\/24"/,
  ));
test('duplicate address in one subnet', (t) =>
  rejects(
    t,
    (l) => {
      l.topology.links[0]!.a.addresses = ['10.1.0.1/24'];
    },
    /duplicate address 10\.1\.0\.1\/24 on host:br0 and c1:eth0/,
  ));
test('interface name over 15 characters', (t) =>
  rejects(
    t,
    (l) => {
      l.topology.links[0]!.b.name = 'a-very-long-veth-name';
    },
    /interface name "a-very-long-veth-name" is invalid: 1-15 characters/,
  ));
test('a check that refers to an interface that does not exist', (t) =>
  rejects(
    t,
    (l) => {
      l.steps[0]!.expect!.push({ kind: 'packets', node: 'host', iface: 'veth7', match: {}, count: 0 });
    },
    /step 1 "ping": expect\[1\]: packets check: node host has no interface "veth7"/,
  ));
test('a step that refers to an unknown node', (t) =>
  rejects(
    t,
    (l) => {
      l.steps[0]!.run = [{ node: 'c3', argv: ['ip', 'route'] }];
    },
    /step 1 "ping": run\[0\]: command "ip route" names unknown node "c3"/,
  ));
test('a command that is not allowed', (t) =>
  rejects(
    t,
    (l) => {
      l.steps[0]!.run = [{ node: 'c1', argv: ['rm', '-rf', '/'] }];
    },
    /run\[0\]: command "rm" is not one a lab may run/,
  ));
test('a route via something that is not an address', (t) =>
  rejects(
    t,
    (l) => {
      l.topology.nodes.c1!.routes = [{ to: 'default', via: '10.1.0.1; reboot' }];
    },
    /topology\.nodes\.c1\.routes\[0\]: field "via" must be an IPv4 address/,
  ));
test('wrong types are named, not crashed on', (t) =>
  rejects(
    t,
    (l) => {
      (l as unknown as { steps: unknown }).steps = 'none';
    },
    /field "steps" must be a non-empty array/,
  ));

test('sandboxOnly must be the reason, a non-empty string', (t) =>
  rejects(
    t,
    (l) => {
      (l.steps[0]!.expect![0] as unknown as { sandboxOnly: unknown }).sandboxOnly = 42;
    },
    /step 1 "ping": expect\[0\]: ping check: field "sandboxOnly" must be the reason, a non-empty string \(got 42\)/,
  ));

test('a counter check whose packets is null is named (it crashed nflab show)', (t) =>
  rejects(
    t,
    (l) => {
      l.steps[0]!.expect!.push({
        kind: 'counter',
        node: 'c1',
        table: 'filter',
        chain: 'FORWARD',
        packets: null,
      } as never);
    },
    /expect\[1\]: counter check: field "packets": count must be a number or \{ min, max \} \(got null\)/,
  ));

test('invalid lab files exit 2 through the CLI and create nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-invalid-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lab = valid();
  lab.topology.links[0]!.a.node = 'ghost';
  const file = join(dir, 'bad-lab.ts');
  writeFileSync(file, `import { defineLab } from 'nflab';\nexport default defineLab(${JSON.stringify(lab)});\n`);
  // A run records what it will create before creating it (the journal): a private runtime
  // directory that stays empty proves nothing was created, whatever other tests run meanwhile.
  const runtime = join(dir, 'runtime');
  const r = await nflab(['run', file], { env: { NFLAB_RUNTIME_DIR: runtime } });
  t.is(r.code, 2);
  t.regex(r.stderr, /lab t1 \(.*bad-lab\.ts\): topology\.links\[0\]\.a: field "node" names unknown node "ghost"/);
  const journal = () => (existsSync(join(runtime, 'runs')) ? readdirSync(join(runtime, 'runs')) : []);
  t.deepEqual(journal(), []);
  // The control: the same directory does record a valid lab brought up.
  const good = join(dir, 'good-lab.ts');
  writeFileSync(good, `import { defineLab } from 'nflab';\nexport default defineLab(${JSON.stringify(valid())});\n`);
  const up = await nflab(['up', good], { env: { NFLAB_RUNTIME_DIR: runtime } });
  t.teardown(() => nflab(['down', 't1'], { env: { NFLAB_RUNTIME_DIR: runtime } }));
  t.is(up.code, 0, up.stderr);
  t.is(journal().length, 1);
  t.is((await nflab(['down', 't1'], { env: { NFLAB_RUNTIME_DIR: runtime } })).code, 0);
});

test('duplicate lab ids are rejected', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-dup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const name of ['a.ts', 'b.ts'])
    writeFileSync(
      join(dir, name),
      `import { defineLab } from 'nflab';\nexport default defineLab(${JSON.stringify(valid())});\n`,
    );
  const r = await nflab(['run', join(dir, 'a.ts'), join(dir, 'b.ts')]);
  t.is(r.code, 2);
  t.regex(r.stderr, /duplicate lab id "t1"/);
});

test('an unknown lab id and a missing command are usage errors (exit 2)', async (t) => {
  t.is((await nflab(['run', '99'])).code, 2);
  t.is((await nflab([])).code, 2);
});
