// First contact: the README's first command (scripts/labs.sh) on a machine without a usable Node
// stops before anything else with exit 3, the version found, the version needed and how to get it.
// The missing or old Node is simulated by PATH (this machine has Node 20): a fake `node` that
// prints Debian 12's version, or a PATH holding nothing but bash.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './helpers/system.ts';

const dir = mkdtempSync(join(tmpdir(), 'nflab-setup-test-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function labsSh(path: string) {
  return spawnSync('/bin/bash', [join(REPO, 'scripts/labs.sh')], {
    encoding: 'utf8',
    env: { PATH: path },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** A directory of fake tools, each a shell script. */
function fakeBin(name: string, tools: Record<string, string>): string {
  const bin = join(dir, name);
  mkdirSync(bin);
  for (const [tool, body] of Object.entries(tools)) {
    writeFileSync(join(bin, tool), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, tool), 0o755);
  }
  return bin;
}

test('no Node at all (a PATH with only bash): exit 3, Node is not installed, 20.19 needed, how to get it', (t) => {
  const onlyBash = fakeBin('only-bash', {});
  symlinkSync('/bin/bash', join(onlyBash, 'bash'));
  const r = labsSh(onlyBash);
  t.is(r.status, 3, r.stderr);
  t.regex(r.stderr, /Node\.js is not installed; nflab needs Node\.js >= 20\.19/);
  t.regex(r.stderr, /Debian 13 \(trixie\)/);
  t.regex(r.stderr, /Debian 12 \(nodejs 18\)/);
  t.regex(r.stderr, /Ubuntu/);
  t.notRegex(r.stderr, /command not found/);
});

test("Debian 12's Node 18 (a fake node first on PATH): exit 3 naming v18.19.0 and 20.19, before apt or npm", (t) => {
  // apt-get, dpkg-query and npm as loud fakes: the check must come before any of them runs.
  const loud = (tool: string) => `echo "${tool} RAN" >&2; exit 99`;
  const bin = fakeBin('old-node', {
    node: 'echo v18.19.0',
    'apt-get': loud('apt-get'),
    'dpkg-query': loud('dpkg-query'),
    npm: loud('npm'),
  });
  const r = labsSh(`${bin}:/usr/bin:/bin`);
  t.is(r.status, 3, r.stderr);
  t.regex(r.stderr, /Node\.js v18\.19\.0 found at .*old-node\/node; nflab needs Node\.js >= 20\.19/);
  t.regex(r.stderr, /fix: install Node\.js 20\.19 or newer/);
  t.notRegex(r.stderr, /RAN/);
});

test("Node 20.18 is refused; this machine's Node passes the check (a non-root fake id then stops at the root check)", (t) => {
  t.is(labsSh(`${fakeBin('node-20-18', { node: 'echo v20.18.3' })}:/usr/bin:/bin`).status, 3);
  const r = labsSh(`${fakeBin('non-root', { id: 'echo 1000' })}:/usr/bin:/bin`);
  t.is(r.status, 3);
  t.regex(r.stderr, /setup: run as root/);
  t.notRegex(r.stderr, /Node\.js/);
});
