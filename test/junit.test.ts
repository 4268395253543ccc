// --junit writes JUnit XML that a schema validator (xmllint) accepts: one test case per check,
// a failure element with expected and observed for a check not met.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nflab, REPO, jsonOf } from './helpers/system.ts';
import type { RunReport } from '../src/report/types.ts';
import { toJunit } from '../src/report/junit.ts';

const SCHEMA = join(REPO, 'test/fixtures/junit.xsd');
const validate = (file: string) => execFileSync('xmllint', ['--noout', '--schema', SCHEMA, file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test('a real run with a check not met gives valid JUnit XML with one case per check', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-junit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lab = join(dir, 'reversed.ts');
  writeFileSync(lab, readFileSync(join(REPO, 'labs/01-bridge-forward-drop.ts'), 'utf8').replace('      c1PingsC2.fails(),\n', '      c1PingsC2.succeeds(),\n'));
  const xml = join(dir, 'report.xml');
  const r = await nflab(['run', lab, '--json', '--junit', xml]);
  t.is(r.code, 1);
  t.notThrows(() => validate(xml));
  const report = jsonOf(r) as RunReport;
  const text = readFileSync(xml, 'utf8');
  const checks = report.labs[0]!.steps.flatMap((s) => s.checks);
  t.is((text.match(/<testcase /g) ?? []).length, checks.length);
  t.is((text.match(/<failure /g) ?? []).length, 1);
  t.regex(text, /<testcase classname="lab01\.step01" name="ping from c1 to 10\.55\.66\.3 succeeds"><failure message="not met" type="ping">expected: \{&quot;outcome&quot;:&quot;succeeds&quot;\}/);
});

test('hostile text (markup, quotes, control characters) stays valid XML', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-junit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const report: RunReport = { labs: [{
    id: '<x>', title: 'a "quoted" & <tagged> title\u0001', status: 'skipped', reason: 'no ip_vs <here> & \u0007',
    driver: 'netns', target: 'this machine', runId: 'r1', startedAt: new Date(0).toISOString(), durationMs: 5,
    steps: [{ title: 's', status: 'failed', durationMs: 1, commands: [], checks: [{ description: "it's </testcase> ]]>", kind: 'output', status: 'not-met', expected: '<a>', observed: '\u0000&' }] }],
  }] };
  const file = join(dir, 'hostile.xml');
  writeFileSync(file, toJunit(report));
  t.notThrows(() => validate(file));
  t.regex(readFileSync(file, 'utf8'), /name="it&apos;s &lt;\/testcase&gt; \]\]&gt;"/);
});
