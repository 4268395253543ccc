// CLI conventions: shell completion, suggestions for mistyped commands and labs, the full command
// list, --strict, and progress on stderr (timestamped lines when not a terminal, a spinner on one).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, REPO, nflab, jsonOf } from './helpers/system.ts';

const dir = mkdtempSync(join(tmpdir(), 'nflab-cli-conventions-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** What bash offers after `words` + TAB, with nflab's completion script sourced (nflab on PATH). */
function bashCompletes(words: string[]): string[] {
  const bin = join(dir, 'bin');
  spawnSync('mkdir', ['-p', bin]);
  writeFileSync(join(bin, 'nflab'), `#!/bin/sh\nexec ${process.execPath} ${CLI} "$@"\n`);
  chmodSync(join(bin, 'nflab'), 0o755);
  const script = [
    'source <(nflab completion)',
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; COMP_LINE='${words.join(' ')}'; COMP_POINT=\${#COMP_LINE}`,
    '_nflab_yargs_completions',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  const r = spawnSync('bash', ['-c', script], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
  });
  return r.stdout.split('\n').filter(Boolean);
}

test('nflab completion: bash completes commands, options and lab ids', (t) => {
  t.deepEqual(bashCompletes(['nflab', 'tr']), ['trace']);
  t.deepEqual(bashCompletes(['nflab', 'run', '1']).sort(), ['10', '11', '12']);
  t.true(bashCompletes(['nflab', 'show', '']).includes('02'));
  t.true(bashCompletes(['nflab', 'run', '--ju']).includes('--junit'));
});

test('a mistyped command or lab gets a suggestion (exit 2)', async (t) => {
  const cmd = await nflab(['lsit']);
  t.is(cmd.code, 2);
  t.regex(cmd.stderr, /Did you mean list\?/);
  const lab = await nflab(['show', '0l']);
  t.is(lab.code, 2);
  t.regex(lab.stderr, /no lab "0l"; did you mean 01 or 02 or 03\?/);
  // A one-digit id is the two-digit lab: `2` means `02`.
  t.regex((await nflab(['show', '2'])).stdout, /^lab 02: /m);
  const word = await nflab(['show', 'hairpin']);
  t.regex(word.stderr, /did you mean 07-k8s-hairpin\?/);
});

test('the command list names every command (trace and completion too), and --help has examples', async (t) => {
  const none = await nflab([]);
  t.is(none.code, 2);
  for (const c of [
    'list',
    'run',
    'show',
    'up',
    'check',
    'trace',
    'down',
    'clean',
    'export',
    'handout',
    'image',
    'completion',
  ])
    t.regex(none.stderr, new RegExp(`\\b${c}\\b`), c);
  const help = await nflab(['--help']);
  t.regex(help.stdout, /Examples:\n {2}nflab run 01 /);
  for (const c of ['trace', 'completion', 'handout', 'export', 'check'])
    t.regex(help.stdout, new RegExp(`nflab ${c}`), c);
});

test('--strict: a skipped lab exits 1; --json runs show timestamped progress on stderr (not a terminal)', async (t) => {
  // Lab 12 is skipped on this kernel (no ip_vs); lab 01 runs for real.
  const strict = await nflab(['run', '01', '12', '--json', '--strict']);
  t.is(strict.code, 1, strict.stderr);
  const report = jsonOf(strict);
  t.deepEqual(
    report.labs.map((l: any) => l.status),
    ['passed', 'skipped'],
  );
  t.regex(strict.stderr, /^\[\d\d:\d\d:\d\d\] lab 01: building/m);
  t.regex(strict.stderr, /^\[\d\d:\d\d:\d\d\] lab 01: step 1\/\d+: /m);
  t.regex(strict.stderr, /^\[\d\d:\d\d:\d\d\] lab 01: passed in \d+\.\d s$/m);
  t.regex(strict.stderr, /^\[\d\d:\d\d:\d\d\] lab 12: skipped/m);
  const lenient = await nflab(['run', '12', '--json']);
  t.is(lenient.code, 0);
  t.is(jsonOf(lenient).labs[0].status, 'skipped');
});

test('on a terminal (a pty from script(1)) the progress is a spinner line on stderr, cleared before the step lines', (t) => {
  const r = spawnSync('script', ['-qec', `${process.execPath} ${CLI} run 01 --nodes netns`, '/dev/null'], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, CI: '', NO_COLOR: '1' },
  });
  t.is(r.status, 0, r.stdout);
  t.regex(r.stdout, /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] lab 01: step 1\/\d+: /);
  t.regex(r.stdout, /\r\x1b\[2K {2}✔ step 1: /);
  t.notRegex(r.stdout, /^\[\d\d:\d\d:\d\d\]/m);
});
