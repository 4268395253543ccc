// Compares what an exported script printed (PASS/FAIL/SKIP per check) with `nflab run --json`.
import type { ExecutionContext } from 'ava';
import type { LabReport } from '../../src/report/types.ts';

export interface ScriptVerdict {
  step: number;
  description: string;
  verdict: string;
}

/** Verdicts in order: `step N: description => PASS|FAIL|SKIP`. */
export function scriptVerdicts(out: string): ScriptVerdict[] {
  const verdicts: ScriptVerdict[] = [];
  let step = 0;
  for (const line of out.split('\n')) {
    const header = /^== Step (\d+): /.exec(line);
    if (header) step = Number(header[1]);
    const v = /^(PASS|FAIL|SKIP)  (.*)$/.exec(line);
    if (v) verdicts.push({ step, description: v[2]!, verdict: v[1]! });
  }
  return verdicts;
}

/** Kinds the exported script cannot judge in shell (it prints SKIP for them): path checks read the kernel's packet traces. */
export const NOT_IN_SHELL = new Set(['path']);

/** The script gave the same verdict per check as the run (path checks excepted), and the same exit. */
export function sameVerdicts(t: ExecutionContext, lab: LabReport, out: string, code: number | null): void {
  if (lab.status === 'skipped') {
    // The kernel lacks a feature: the script skips the lab as nflab run does, and exits 0.
    t.regex(out, new RegExp(`^SKIP {2}lab ${lab.id}: `, 'm'), out);
    t.is(code, 0, out);
    return;
  }
  const got = scriptVerdicts(out);
  const expected = lab.steps.flatMap((s, i) =>
    s.checks.map((c) => ({
      step: i + 1,
      description: c.description,
      verdict: c.status === 'met' ? 'PASS' : c.status === 'skipped' ? 'SKIP' : 'FAIL',
      kind: c.kind,
    })),
  );
  t.is(got.length, expected.length, out);
  for (const [i, want] of expected.entries()) {
    const have = got[i];
    if (!have) break;
    t.is(have.description, want.description, `check ${i + 1}`);
    t.is(have.step, want.step, want.description);
    if (have.verdict === 'SKIP')
      t.true(
        NOT_IN_SHELL.has(want.kind),
        `only ${[...NOT_IN_SHELL]} checks may be skipped: ${want.kind} "${want.description}"`,
      );
    else t.is(have.verdict, want.verdict, `${want.description}\n${out.slice(-4000)}`);
  }
  t.true(got.some((v) => v.verdict === 'PASS'));
  t.is(code, lab.status === 'failed' ? 1 : 0, out.slice(-4000));
  t.regex(
    out,
    new RegExp(
      `${got.filter((v) => v.verdict === 'PASS').length} checks passed, ${got.filter((v) => v.verdict === 'FAIL').length} failed`,
    ),
  );
}
