// The JSON Schema shipped in the package (schema/report.schema.json) describes what nflab really prints
// with --json: a passing lab, a skipped lab, and the error object of a run that stopped before a report.
import test from 'ava';
import { nflab, jsonOf } from './helpers/system.ts';
import { schemaErrors } from './helpers/schema.ts';

test('a real run of lab 01 (passes) and lab 12 (skipped here: no ip_vs) conforms to the schema', async (t) => {
  const r = await nflab(['run', '01', '12', '--json']);
  t.is(r.code, 0, r.stderr);
  const report = jsonOf(r);
  t.is(report.labs.length, 2);
  t.deepEqual(schemaErrors(report), []);
  t.true(
    report.labs[0].steps.some((s: any) => s.checks.length > 0 && s.commands.length > 0),
    'the report carries steps, commands and checks',
  );
});

test('the error object of exit 2 (an unknown lab) conforms, and a report the schema does not describe is refused', async (t) => {
  const r = await nflab(['run', '99', '--json']);
  t.is(r.code, 2);
  const out = JSON.parse(r.stdout);
  t.is(out.error.kind, 'usage');
  t.deepEqual(schemaErrors(out), []);
  t.notDeepEqual(schemaErrors({ labs: [{ id: '01', status: 'green' }] }), []);
  t.notDeepEqual(schemaErrors({ error: { exitCode: 2, kind: 'usage', code: 'usage' } }), []);
});
