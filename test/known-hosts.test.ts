// known_hosts parsing and matching, checked against what OpenSSH's own ssh-keygen writes and computes.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkHostKey,
  fingerprint,
  keyTypeOf,
  knownHostName,
  knownHostsLine,
  parseKnownHosts,
  patternsMatch,
} from '../src/exec/known-hosts.ts';

const dir = mkdtempSync(join(tmpdir(), 'nflab-known-hosts-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function keygen(name: string, type = 'ed25519'): { blob: Buffer; type: string; b64: string; pub: string } {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', file]);
  const [t, b64] = readFileSync(`${file}.pub`, 'utf8').trim().split(' ');
  return { blob: Buffer.from(b64!, 'base64'), type: t!, b64: b64!, pub: `${file}.pub` };
}

test('the fingerprint and key type are the ones ssh-keygen reports', (t) => {
  for (const type of ['ed25519', 'ecdsa', 'rsa']) {
    const k = keygen(`fp-${type}`, type);
    const out = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', k.pub], { encoding: 'utf8' });
    t.is(fingerprint(k.blob), out.split(' ')[1]);
    t.is(keyTypeOf(k.blob), k.type);
  }
});

test('names: host on port 22, [host]:port otherwise', (t) => {
  t.is(knownHostName('10.0.0.2', 22), '10.0.0.2');
  t.is(knownHostName('127.0.0.1', 2222), '[127.0.0.1]:2222');
});

test('patterns: lists, wildcards and negation', (t) => {
  t.true(patternsMatch('a.example,b.example', 'b.example'));
  t.true(patternsMatch('*.lab', 'vm1.lab'));
  t.true(patternsMatch('10.0.0.?', '10.0.0.7'));
  t.false(patternsMatch('10.0.0.?', '10.0.0.17'));
  t.false(patternsMatch('*.lab,!bad.lab', 'bad.lab'));
  t.true(patternsMatch('[127.0.0.1]:2222', '[127.0.0.1]:2222'));
  t.false(patternsMatch('127.0.0.1', '[127.0.0.1]:2222'));
});

test('hashed names written by ssh-keygen -H match the host and port they hash', (t) => {
  const k = keygen('hashed');
  const file = join(dir, 'hashed_known_hosts');
  writeFileSync(file, `vm.lab ${k.type} ${k.b64}\n[127.0.0.1]:2222 ${k.type} ${k.b64}\n`);
  execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
  const entries = parseKnownHosts(readFileSync(file, 'utf8'));
  t.is(entries.length, 2);
  t.true(entries.every((e) => e.patterns.startsWith('|1|')));
  t.is(checkHostKey(entries, 'vm.lab', 22, k.blob).kind, 'match');
  t.is(checkHostKey(entries, '127.0.0.1', 2222, k.blob).kind, 'match');
  t.is(checkHostKey(entries, '127.0.0.1', 22, k.blob).kind, 'unknown');
  t.is(checkHostKey(entries, 'vm2.lab', 22, k.blob).kind, 'unknown');
});

test('verdicts: match, unknown, changed, revoked; comments and malformed lines are skipped', (t) => {
  const a = keygen('a');
  const b = keygen('b');
  const text = [
    '# comment',
    '',
    'garbage',
    `vm.lab ${a.type} ${a.b64} a comment`,
    `@cert-authority *.lab ${b.type} ${b.b64}`,
    `@revoked evil.lab ${b.type} ${b.b64}`,
  ].join('\n');
  const entries = parseKnownHosts(text);
  t.deepEqual(
    entries.map((e) => [e.marker, e.line]),
    [
      [undefined, 4],
      ['@cert-authority', 5],
      ['@revoked', 6],
    ],
  );
  t.is(checkHostKey(entries, 'vm.lab', 22, a.blob).kind, 'match');
  const changed = checkHostKey(entries, 'vm.lab', 22, b.blob);
  t.is(changed.kind, 'revoked'); // b is revoked everywhere, whatever host offers it
  const c = keygen('c');
  const v = checkHostKey(entries, 'vm.lab', 22, c.blob);
  t.is(v.kind, 'changed');
  t.deepEqual(v.kind === 'changed' ? v.known.map((e) => e.line) : [], [4]);
  // A CA line does not make a host "known".
  t.is(checkHostKey(entries, 'other.lab', 22, c.blob).kind, 'unknown');
});

test('the line written for a new host is read back by ssh-keygen -F', (t) => {
  const k = keygen('new');
  const file = join(dir, 'new_known_hosts');
  writeFileSync(file, knownHostsLine('127.0.0.1', 2222, k.blob));
  const found = execFileSync('ssh-keygen', ['-F', '[127.0.0.1]:2222', '-f', file], { encoding: 'utf8' });
  t.true(found.includes(k.b64));
});
