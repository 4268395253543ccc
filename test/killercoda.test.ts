// `nflab export --format killercoda`: the scenario's files follow Killercoda's format (index.json
// against a schema written from its docs, every file it names present, scripts that parse), and
// run for real here: the background script builds the lab and keeps it, and each step's verify
// script fails before that step's commands and passes after them (labs 01-03). The names are
// prefixed here (NFLAB_NODE_NAMES=prefixed) so nothing collides with another run on this machine.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Ajv } from 'ajv';
import { REPO, nflab } from './helpers/system.ts';
import { loadAllLabs } from '../src/resolve/load.ts';

const LABS = (await loadAllLabs()).filter((l) => ['01', '02', '03'].includes(l.id));
const dir = mkdtempSync(join(tmpdir(), 'nflab-killercoda-test-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const validateIndex = new Ajv({ allErrors: true }).compile(
  JSON.parse(readFileSync(join(REPO, 'test/fixtures/killercoda-index.schema.json'), 'utf8')),
);

function namespacesWith(prefix: string): string[] {
  try {
    return readdirSync('/run/netns').filter((n) => n.startsWith(`${prefix}-`));
  } catch {
    return [];
  }
}

function run(script: string, env: Record<string, string>) {
  const r = spawnSync('bash', [script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

for (const lab of LABS) {
  test.serial(
    `lab ${lab.id}: the scenario follows the format, and each verify script fails before its step's commands and passes after them`,
    async (t) => {
      const out = join(dir, lab.id);
      const r = await nflab(['export', lab.id, '--format', 'killercoda', '--out', out]);
      t.is(r.code, 0, r.stderr);

      // Structure: index.json conforms; every file it names exists; scripts are executable and parse.
      const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
      t.true(validateIndex(index), JSON.stringify(validateIndex.errors));
      t.is(index.details.steps.length, lab.steps.length);
      const named = [index.details.intro, index.details.finish, ...index.details.steps].flatMap(
        (p: Record<string, string>) =>
          ['text', 'background', 'foreground', 'verify'].flatMap((k) => (p[k] ? [p[k]] : [])),
      );
      for (const f of named) {
        t.true(existsSync(join(out, f)), `${f} exists`);
        if (f.endsWith('.sh')) {
          t.truthy(statSync(join(out, f)).mode & 0o100, `${f} is executable`);
          t.is(spawnSync('bash', ['-n', join(out, f)]).status, 0, `${f} parses`);
        }
      }
      const scripts = named.filter((f: string) => f.endsWith('.sh')).map((f: string) => join(out, f));
      const lint = spawnSync('shellcheck', ['-S', 'warning', ...scripts], { encoding: 'utf8' });
      t.is(lint.status, 0, `shellcheck: ${lint.stdout}`);
      lab.steps.forEach((_, i) => {
        const text = readFileSync(join(out, `step${i + 1}/text.md`), 'utf8');
        t.regex(text, /^```\{\{(exec|copy)\}\}$/m, `step ${i + 1}'s text has commands to click`);
        for (const q of lab.steps[i]!.questions ?? [])
          t.false(text.includes(q.answer), 'no answer in the student text');
      });

      // For real: build, then per step verify (not met) → its commands → verify (met).
      const prefix = `nfkt-${randomBytes(3).toString('hex')}`;
      const env = { NFLAB_NODE_NAMES: 'prefixed', NFLAB_PREFIX: prefix, NFLAB_READY: join(out, 'ready') };
      try {
        const built = run(join(out, 'intro/background.sh'), env);
        t.is(built.code, 0, built.out);
        t.true(existsSync(env.NFLAB_READY), 'the background script says the lab is ready');
        t.true(namespacesWith(prefix).length > 0, 'the lab is kept after the background script ends');
        const seen: string[] = [];
        for (const [i, step] of lab.steps.entries()) {
          const verify = join(out, `step${i + 1}/verify.sh`);
          if ((step.run ?? []).length > 0) {
            const before = run(verify, env);
            t.is(before.code, 1, `step ${i + 1}: verify before the step's commands must fail\n${before.out}`);
            const solved = run(join(out, `step${i + 1}/solution.sh`), env);
            t.is(solved.code, 0, `step ${i + 1}: its commands\n${solved.out}`);
          }
          const after = run(verify, env);
          t.is(after.code, 0, `step ${i + 1}: verify after the step's commands must pass\n${after.out}`);
          t.regex(after.out, /PASS /, 'the verify script judged checks');
          seen.push(`${i + 1}${(step.run ?? []).length > 0 ? ' fail→pass' : ' pass'}`);
        }
        t.log(`lab ${lab.id} steps: ${seen.join(', ')}`);
      } finally {
        const reset = run(join(out, 'reset.sh'), env);
        t.is(reset.code, 0, reset.out);
        t.deepEqual(namespacesWith(prefix), [], 'reset.sh leaves nothing');
      }
    },
  );
}
