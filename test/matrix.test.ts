// The kernel matrix's pieces that are cheap enough for CI: argument checks of build-image.sh and
// matrix.sh (no image is built, no VM booted), and docs/kernels.md's generator on real records of
// lab 01 with both backends on this kernel. The matrix itself (VM images, labs under software
// emulation) takes hours on two cores: scripts/matrix.sh, outside CI.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { nflab, REPO } from './helpers/system.ts';

const run = (argv: string[]) =>
  promisify(execFile)(argv[0]!, argv.slice(1), { cwd: REPO, encoding: 'utf8' }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

test('build-image.sh refuses a suite it does not know, before building anything', async (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'nflab-vmcache-'));
  t.teardown(() => rmSync(cache, { recursive: true, force: true }));
  const r = await run(['env', `NFLAB_VM_CACHE=${cache}`, 'scripts/vm/build-image.sh', '--suite', 'sid']);
  t.is(r.code, 2);
  t.regex(r.stderr, /unknown suite 'sid' \(bullseye, bookworm or trixie\)/);
  const help = await run(['scripts/vm/build-image.sh', '--help']);
  t.regex(help.stdout, /--suite +bullseye \(Debian 11, kernel 5\.10\), bookworm \(12, kernel 6\.1; the default\)/);
});

test('matrix.sh refuses unknown suites, backends and job counts (exit 2)', async (t) => {
  for (const args of [
    ['--suites', 'buster'],
    ['--backends', 'nft xtables'],
    ['--jobs', '0'],
  ]) {
    const r = await run(['scripts/matrix.sh', ...args]);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
  }
});

test('the matrix report from real records of lab 01 (both backends, this kernel): verdicts per cell and the legacy path skip as handled', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-matrix-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const backend of ['nft', 'legacy']) {
    const r = await nflab(['run', '01', '--iptables', backend, '--record', join(dir, `host-${backend}-01.json`)]);
    t.is(r.code, 0, r.stdout + r.stderr);
  }
  const report = await run([
    'node',
    '--import',
    'tsx',
    'scripts/matrix-report.ts',
    '--seconds',
    '60',
    join(dir, 'host-nft-01.json'),
    join(dir, 'host-legacy-01.json'),
  ]);
  t.is(report.code, 0, report.stderr);
  const kernel = /^(\d+\.\d+)/.exec((await run(['uname', '-r'])).stdout)![1];
  t.true(report.stdout.includes(`| lab | ${kernel} nft | ${kernel} legacy |`), report.stdout);
  // Lab 01 has one path check: judged under nft, skipped under legacy.
  t.regex(report.stdout, /\| 01 \| ✔ \d+ \| ✔ \d+ ⊘1 \|/);
  t.regex(report.stdout, /lab 01 step 1: on host, the first icmp packet .*— [\d.]+ legacy: met → skipped\*?\*?/);
  t.regex(report.stdout, /### Handled: 1 check\n\nSkipped under iptables-legacy/);
  t.notRegex(report.stdout, /## Not explained yet/);
});
