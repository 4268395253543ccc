// Exported scripts are clean under shellcheck (Debian's package, installed by scripts/setup.sh --tests)
// at its default level: every lab, with namespace nodes and with Docker nodes.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportBash } from '../src/export/bash.ts';
import { loadAllLabs } from '../src/resolve/load.ts';

test('every exported lab is clean under shellcheck at its default level (namespaces and Docker nodes)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-shellcheck-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Exported in this process (the same exportBash `nflab export` calls): 24 CLI start-ups cost more than the lint.
  const labs = await loadAllLabs();
  t.true(labs.length >= 12);
  const files: string[] = [];
  for (const lab of labs) {
    for (const driver of ['netns', 'docker'] as const) {
      const file = join(dir, `lab${lab.id}-${driver}.sh`);
      writeFileSync(file, exportBash(lab, { driver }));
      files.push(file);
    }
  }
  // shellcheck exits 1 and prints each finding when there is one: the findings are the message.
  const result = spawnSync('shellcheck', files, { encoding: 'utf8' });
  t.is(result.error, undefined, 'shellcheck is installed (scripts/setup.sh --tests)');
  t.is(result.stdout, '');
  t.is(result.status, 0, result.stderr);
});

test('shellcheck does report a finding in a script that has one (the lint above can fail)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-shellcheck-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bad.sh');
  writeFileSync(file, '#!/usr/bin/env bash\nx=$1\nrm -rf $x/tmp\n');
  const result = spawnSync('shellcheck', [file], { encoding: 'utf8' });
  t.is(result.status, 1);
  t.regex(result.stdout, /SC2086/);
});
