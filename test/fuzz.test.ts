// Fuzzing lab definitions: mutations of the valid labs in labs/ (hostile strings, wrong types,
// missing fields, references to nothing, cycles, odd numbers). Every case must be rejected with a
// LabError naming where the problem is (exit 2), or be a lab nflab can show and run. Most cases are
// judged in-process against validateLab; a sample goes through the real CLI, which must exit 2
// before creating anything, or run normally (0 or 1) and leave nothing behind — never crash with a
// stack trace, never hang.
//
// Reproduce: NFLAB_FUZZ_SEED=<seed printed below> npx ava test/fuzz.test.ts
import test from 'ava';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadAllLabs } from '../src/resolve/load.ts';
import { validateLab } from '../src/resolve/validate-lab.ts';
import { LabError } from '../src/errors.ts';
import { resolveLab } from '../src/resolve/resolve-lab.ts';
import { showLab } from '../src/cli/show.ts';
import { nflab, rootState, runNamespaces, jsonOf } from './helpers/system.ts';
import { describeCase, fuzzCase, labSource, type FuzzCase } from './helpers/mutate.ts';
import { limiter, prng } from './helpers/interrupt.ts';
import { processesNaming } from './helpers/residue.ts';
import type { RunReport } from '../src/report/types.ts';

const seed = Number(process.env.NFLAB_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CASES = Number(process.env.NFLAB_FUZZ_CASES ?? 1200);
const CLI_SAMPLE = Number(process.env.NFLAB_FUZZ_CLI ?? 30);
/** Longer than any lab runs, short of a hang. A valid mutation can be slow without hanging: lab 06
 * without its set-up (no kube-proxy rules) took 7 minutes, each of its ~150 connections to the
 * ClusterIP waiting out its timeout. */
const CLI_TIMEOUT_MS = 900_000;
const STACK_TRACE = /\n\s+at .+:\d+:\d+\)?(\n|$)/;
console.log(
  `fuzz.test.ts: seed ${seed} (NFLAB_FUZZ_SEED=${seed} reproduces every case), ${CASES} cases, ${CLI_SAMPLE} through the CLI`,
);

const labs = (await loadAllLabs()).map(
  ({ file: _file, ...lab }) => JSON.parse(JSON.stringify(lab)) as Record<string, unknown>,
);
const random = prng(seed);
const cases: FuzzCase[] = Array.from({ length: CASES }, (_, i) => fuzzCase(i, labs, random));

type Verdict =
  | { kind: 'valid' }
  | { kind: 'rejected'; message: string }
  | { kind: 'crash'; error: string }
  | { kind: 'slow'; ms: number };

function judge(c: FuzzCase): Verdict {
  const started = performance.now();
  let verdict: Verdict;
  try {
    const lab = validateLab(c.lab, `fuzz-${c.index}`);
    // What `nflab show` and a run compute from a valid lab must not crash either.
    showLab(resolveLab(lab, { driver: 'netns' }));
    showLab(resolveLab(lab, { driver: 'docker' }));
    verdict = { kind: 'valid' };
  } catch (err) {
    verdict =
      err instanceof LabError
        ? { kind: 'rejected', message: err.message }
        : { kind: 'crash', error: (err as Error)?.stack ?? String(err) };
  }
  const ms = performance.now() - started;
  return ms > 1000 ? { kind: 'slow', ms } : verdict;
}

const verdicts = cases.map(judge);

test(`${CASES} mutated labs: each is valid or rejected with a LabError naming the field, within 1 s, never a crash`, (t) => {
  t.log(`seed ${seed}`);
  t.true(CASES >= 1000 || process.env.NFLAB_FUZZ_CASES !== undefined, 'at least 1000 cases per run');
  const problems: string[] = [];
  verdicts.forEach((v, i) => {
    const c = cases[i]!;
    if (v.kind === 'crash') problems.push(`case ${i} (${describeCase(c)}) crashed:\n${v.error}`);
    if (v.kind === 'slow') problems.push(`case ${i} (${describeCase(c)}) took ${Math.round(v.ms)} ms`);
    if (v.kind === 'rejected') {
      // Every problem line says where: `lab 01: step 2 "…": expect[0]: …` or `lab 01: topology.…: …`.
      const lines = v.message
        .split('\n')
        .slice(1)
        .map((l) => l.trim());
      if (!v.message.startsWith('invalid lab:') && !/^fuzz-\d+: /.test(v.message))
        problems.push(`case ${i} (${describeCase(c)}): rejection without the "invalid lab" form: ${v.message}`);
      for (const line of lines)
        if (!/^lab .+?: .+/.test(line))
          problems.push(`case ${i} (${describeCase(c)}): problem line does not name its place: ${line}`);
    }
  });
  const count = (k: Verdict['kind']) => verdicts.filter((v) => v.kind === k).length;
  t.log(`valid ${count('valid')}, rejected ${count('rejected')}, crashed ${count('crash')}, slow ${count('slow')}`);
  t.deepEqual(problems.slice(0, 15), [], `${problems.length} problems (first 15 shown); seed ${seed}`);
  t.true(count('rejected') > CASES / 2, 'most mutations make a lab invalid');
});

test(`a sample of ${CLI_SAMPLE} cases through the CLI: exit 2 before anything exists, or a normal run that leaves nothing`, async (t) => {
  t.timeout(40 * 60_000);
  t.log(`seed ${seed}`);
  // Cases that may run for real; up to a third valid ones (they run the whole lab), the rest rejected.
  const safe = cases.filter((c, i) => c.cliSafe && verdicts[i]!.kind !== 'crash');
  const valid = safe.filter((c) => verdicts[c.index]!.kind === 'valid').slice(0, Math.floor(CLI_SAMPLE / 3));
  const rejected = safe.filter((c) => verdicts[c.index]!.kind === 'rejected').slice(0, CLI_SAMPLE - valid.length);
  const sample = [...valid, ...rejected];
  t.true(sample.length >= Math.min(CLI_SAMPLE, 30), `${sample.length} cases could be sampled`);
  const dir = mkdtempSync(join(tmpdir(), 'nflab-fuzz-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const before = rootState();
  const slot = limiter(3);

  await Promise.all(
    sample.map((c) =>
      slot(async () => {
        const file = join(dir, `case-${c.index}.ts`);
        writeFileSync(file, labSource(c.lab));
        // A private runtime directory: a journal there proves the run got as far as its sandbox.
        const runtime = join(dir, `runtime-${c.index}`);
        const label = `case ${c.index} (${describeCase(c)}), expected ${verdicts[c.index]!.kind}`;
        const run = nflab(['run', file, '--json'], { env: { NFLAB_RUNTIME_DIR: runtime } });
        const r = await Promise.race([
          run,
          new Promise<undefined>((res) => setTimeout(() => res(undefined), CLI_TIMEOUT_MS).unref()),
        ]);
        if (!r) {
          t.fail(`${label}: no answer within ${CLI_TIMEOUT_MS / 1000} s`);
          return;
        }
        t.notRegex(r.stderr, STACK_TRACE, `${label}: no stack trace`);
        if (verdicts[c.index]!.kind === 'rejected') {
          t.is(r.code, 2, `${label}: exit 2\n${r.stderr}`);
          t.regex(r.stderr, /invalid lab|could not be loaded|must be an object/, `${label}: says what is wrong`);
          t.false(existsSync(join(runtime, 'runs')), `${label}: nothing was created (no journal was ever written)`);
          return;
        }
        // Exit 0/1: checks judged; exit 3 with status error: the mutated topology could not be built
        // (a route whose gateway lost its link, say), which the report must say with the error's code.
        t.true(r.code === 0 || r.code === 1 || r.code === 3, `${label}: a normal run (exit ${r.code})\n${r.stderr}`);
        let runId = '';
        try {
          const lab = (jsonOf(r) as RunReport).labs[0];
          runId = lab?.runId ?? '';
          if (r.code === 3)
            t.true(
              lab?.status === 'error' && typeof lab.error?.code === 'string',
              `${label}: exit 3 is a lab that could not be built, with its error code\n${r.stdout.slice(0, 500)}`,
            );
        } catch {
          t.fail(`${label}: the JSON report parses\n${r.stdout.slice(0, 500)}`);
        }
        t.true(runId !== '', `${label}: the report names its run`);
        t.deepEqual(runNamespaces(runId), [], `${label}: no namespace remains`);
        t.deepEqual(processesNaming(runId), [], `${label}: no process of the run remains`);
        const journals = existsSync(join(runtime, 'runs')) ? readdirSync(join(runtime, 'runs')) : [];
        t.deepEqual(journals, [], `${label}: the journal is removed`);
      }),
    ),
  );
  t.deepEqual(rootState(), before, 'the root namespace is unchanged');
});
