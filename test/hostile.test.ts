// Hostile and broken labs, case by case: each is rejected before anything is created, with a
// message naming the field (exit 2), or handled literally. (test/fuzz.test.ts covers the same
// ground at random; these are the cases worth naming.)
import test from 'ava';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateLab } from '../src/resolve/validate-lab.ts';
import { LabError } from '../src/errors.ts';
import { nflab, jsonOf } from './helpers/system.ts';
import { labSource } from './helpers/mutate.ts';
import type { Lab } from '../src/lab/types.ts';

const valid = (): Lab => ({
  id: 'h1',
  title: 'hostile',
  summary: 'a two-node lab',
  source: { title: 'none' },
  topology: {
    nodes: { host: { role: 'host', sysctls: { 'net.ipv4.ip_forward': 1 } }, c1: { role: 'container' } },
    links: [
      {
        a: { node: 'c1', name: 'eth0', addresses: ['10.1.0.2/24'] },
        b: { node: 'host', name: 'veth0', addresses: ['10.1.0.1/24'] },
      },
    ],
  },
  steps: [
    {
      title: 'ping',
      run: [{ node: 'host', argv: ['sysctl', '-w', 'net.ipv4.ip_forward=1'] }],
      expect: [{ kind: 'ping', traffic: { kind: 'ping', from: 'c1', to: '10.1.0.1' }, expect: 'succeeds' }],
    },
  ],
});

function rejected(t: import('ava').ExecutionContext, mutate: (lab: any) => void, message: RegExp) {
  const lab = valid();
  mutate(lab);
  const err = t.throws(() => validateLab(lab), { instanceOf: LabError });
  t.regex(err!.message, message);
  // Every line names its place and no raw control character reaches the terminal.
  t.notRegex(err!.message, /[\u0000-\u0009\u000b-\u001f\u202e]/);
}

test('the base lab is valid', (t) => {
  t.notThrows(() => validateLab(valid()));
});

test('a cycle is named, not a crash', (t) =>
  rejected(
    t,
    (l) => {
      l.steps[0].expect[0].traffic.to = l;
    },
    /steps\[0\]\.expect\[0\]\.traffic\.to: refers back to an object that contains it \(a cycle\)/,
  ));
test('a command list that is a number', (t) =>
  rejected(
    t,
    (l) => {
      l.steps[0].run = 5;
    },
    /lab h1: steps\[0\]: field "run" must be an array of objects \(got 5\)/,
  ));
test('a route list that is a string', (t) =>
  rejected(
    t,
    (l) => {
      l.topology.nodes.c1.routes = 'default via 10.1.0.1';
    },
    /topology\.nodes\.c1: field "routes" must be an array of objects/,
  ));
test('output words that are not strings', (t) =>
  rejected(
    t,
    (l) => {
      l.steps[0].expect.push({ kind: 'output', command: { node: 'c1', argv: ['ip', 'route'] }, includes: 'default' });
    },
    /expect\[1\]: field "includes" must be an array of strings/,
  ));
test('a node named like an object property is no node ("constructor")', (t) =>
  rejected(
    t,
    (l) => {
      l.steps[0].run[0].node = 'constructor';
    },
    /run\[0\]: command "sysctl -w net\.ipv4\.ip_forward=1" names unknown node "constructor"/,
  ));
test('a check on an interface that does not exist', (t) =>
  rejected(
    t,
    (l) => {
      l.steps[0].expect.push({ kind: 'packets', node: 'host', iface: 'veth9', match: {}, count: 0 });
    },
    /packets check: node host has no interface "veth9" \(it has lo, veth0\)/,
  ));
test('a check on a node that does not exist', (t) =>
  rejected(
    t,
    (l) => {
      l.steps[0].expect.push({ kind: 'conntrack', node: 'ghost', count: 0 });
    },
    /conntrack check: field "node" names unknown node "ghost"/,
  ));
test('a packets check without a match', (t) =>
  rejected(
    t,
    (l) => {
      l.steps[0].expect.push({ kind: 'packets', node: 'host', iface: 'veth0', count: 0 });
    },
    /packets check: field "match" must be an object/,
  ));
test('shell metacharacters in an address', (t) =>
  rejected(
    t,
    (l) => {
      l.topology.links[0].a.addresses = ['10.1.0.2/24; reboot'];
    },
    /malformed address "10\.1\.0\.2\/24; reboot"/,
  ));
test('spaces and unicode in a node name', (t) =>
  rejected(
    t,
    (l) => {
      l.topology.nodes['nœud 1'] = { role: 'host' };
    },
    /topology\.nodes\.nœud 1: node names are 1-12 characters/,
  ));
test('a very long interface name', (t) =>
  rejected(
    t,
    (l) => {
      l.topology.links[0].a.name = 'e'.repeat(5000);
    },
    /interface name "e{20,}\.\.\. is invalid/,
  ));
test('a newline in a command word (ip -batch would read a second command)', (t) =>
  rejected(
    t,
    (l) => {
      l.topology.nodes.c1.routes = [{ to: 'default', via: '10.1.0.1', extra: ['\nlink add x type bridge'] }];
    },
    /routes\[0\]\.extra\[0\]: contains a control character/,
  ));
test('a bidi override in a title is shown escaped', (t) =>
  rejected(
    t,
    (l) => {
      l.id = 'h\u202e1';
    },
    /lab h\\u202e1/,
  ));
test('a sysctl outside net.* (it would change the machine, not the node)', (t) =>
  rejected(
    t,
    (l) => {
      l.topology.nodes.host.sysctls = { 'kernel.sysrq': 1 };
    },
    /sysctl "kernel\.sysrq" is not a net\.\* sysctl/,
  ));
test('a sysctl path out of net.*', (t) =>
  rejected(
    t,
    (l) => {
      l.steps[0].run[0].argv = ['sysctl', '-w', 'net/../kernel/sysrq=1'];
    },
    /sysctl "net\/\.\.\/kernel\/sysrq" leaves net\.\*/,
  ));
test('sysctl -p loads any setting from a file', (t) =>
  rejected(
    t,
    (l) => {
      l.steps[0].run[0].argv = ['sysctl', '-p', '/etc/sysctl.conf'];
    },
    /sysctl option "-p" loads settings from a file of the machine/,
  ));
test("tee outside the node's network files", (t) =>
  rejected(
    t,
    (l) => {
      l.steps[0].run[0] = { node: 'host', argv: ['tee', '/etc/hostname'], stdin: 'x\n' };
    },
    /tee "\/etc\/hostname": a lab reads and writes only its node's network files/,
  ));
test('tee with a path that climbs out', (t) =>
  rejected(
    t,
    (l) => {
      l.steps[0].run[0] = { node: 'host', argv: ['tee', '/proc/sys/net/../../../etc/passwd'], stdin: 'x\n' };
    },
    /a lab reads and writes only its node's network files/,
  ));
test("ip moving a link to another namespace (netns 1 is the machine's own)", (t) =>
  rejected(
    t,
    (l) => {
      l.steps[0].run[0].argv = ['ip', 'link', 'set', 'veth0', 'netns', '1'];
    },
    /ip "netns" would reach beyond the node's namespace/,
  ));
test('ip -batch reading a file of the machine', (t) =>
  rejected(
    t,
    (l) => {
      l.steps[0].run[0].argv = ['ip', '-batch', '/tmp/x'];
    },
    /ip "-batch" would reach beyond the node's namespace/,
  ));
test('a TCP timeout that would hang the run', (t) =>
  rejected(
    t,
    (l) => {
      l.steps[0].expect.push({
        kind: 'tcp',
        traffic: { kind: 'tcp', from: 'c1', to: '10.1.0.1', port: 80, timeout: 1e9 },
        expect: 'timeout',
      });
    },
    /tcp field "timeout" must be a number of seconds in \(0, 60\]/,
  ));
test('a ping wait that would hang the run', (t) =>
  rejected(
    t,
    (l) => {
      l.steps[0].expect[0].traffic.wait = Infinity;
    },
    /ping field "wait" must be a number of seconds in \(0, 30\] \(got Infinity\)/,
  ));

test('text with quotes, $(…) and unicode is handled literally: the lab runs and reports it as written', async (t) => {
  const lab = valid();
  lab.title = 'quotes \' " $(reboot) `id` ; | & — ünïcødé 🙂';
  lab.steps[0]!.title = 'step with $(touch /tmp/nflab-pwned) in its title';
  (lab.steps[0]!.expect![0] as { description?: string }).description = '"; rm -rf / #';
  const dir = mkdtempSync(join(tmpdir(), 'nflab-hostile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'lab.ts'), labSource(lab));
  const r = await nflab(['run', join(dir, 'lab.ts'), '--json']);
  t.is(r.code, 0, r.stderr);
  const report = jsonOf(r).labs[0];
  t.is(report.title, lab.title);
  t.is(report.steps[0].title, lab.steps[0]!.title);
  t.is(report.steps[0].checks[0].description, '"; rm -rf / #');
  t.false(readdirSync('/tmp').includes('nflab-pwned'), 'nothing was executed from the text');
});

test('through the CLI: exit 2 naming the field, and nothing is created', async (t) => {
  const lab = valid() as any;
  lab.topology.nodes.host.sysctls = { 'kernel.sysrq': 1 };
  const dir = mkdtempSync(join(tmpdir(), 'nflab-hostile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'lab.ts'), labSource(lab));
  const r = await nflab(['run', join(dir, 'lab.ts')], { env: { NFLAB_RUNTIME_DIR: join(dir, 'runtime') } });
  t.is(r.code, 2);
  t.regex(r.stderr, /lab h1 \(.*lab\.ts\): topology\.nodes\.host: sysctl "kernel\.sysrq" is not a net\.\* sysctl/);
  t.false(readdirSync(dir).includes('runtime'), 'no run was started');
});
