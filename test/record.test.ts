// nflab run --record / --compare on real runs of lab 01: the record keeps every check's verdict and
// observed value plus each step's raw observations; a comparison with another backend finds the
// verdicts that changed (exit 1), one with a run of the same kind finds none (exit 0).
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonOf, nflab, type CliResult } from './helpers/system.ts';

const dir = mkdtempSync(join(tmpdir(), 'nflab-record-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const recordFile = join(dir, 'nft.json');
let recorded: Promise<CliResult> | undefined;
/** One recorded run of lab 01 (iptables-nft), shared by the tests. */
const record = () => (recorded ??= nflab(['run', '01', '--record', recordFile, '--json']));

test("--record keeps the report and each step's raw observations; --json stays the report alone", async (t) => {
  const r = await record();
  t.is(r.code, 0, r.stderr);
  const file = JSON.parse(readFileSync(recordFile, 'utf8'));
  t.is(file.format, 'nflab-record/1');
  t.is(file.iptables, 'nft');
  t.is(file.target, 'this machine');
  t.regex(file.kernel, /^\d+\.\d+/);
  const step1 = file.labs[0].steps[0];
  t.truthy(step1.observations, 'step 1 has its observations');
  // Step 1 captures on veth0 and veth1 and reads the FORWARD policy counter of host.
  const captures = Object.keys(step1.observations.capture);
  t.true(captures.includes('host veth0') && captures.includes('host veth1'), captures.join(', '));
  const echo = step1.observations.capture['host veth0'].packets.filter(
    (p: { icmp?: string; src?: string }) => p.icmp === 'echo-request' && p.src === '10.55.66.2',
  );
  t.is(echo.length, 1, 'the capture holds the one echo request itself');
  const chain = (when: 'before' | 'after') =>
    step1.observations.counters.host[when].chains.find(
      (c: { table: string; chain: string }) => c.table === 'filter' && c.chain === 'FORWARD',
    );
  t.is(chain('after').policy, 'DROP');
  t.is(
    chain('after').packets - chain('before').packets,
    1,
    'the DROP policy counted the echo request between the two readings',
  );
  // The report part is what --json printed, check by check.
  const printed = jsonOf(r).labs[0];
  t.false('observations' in printed.steps[0], '--json prints no raw observations');
  t.deepEqual(
    file.labs[0].steps.map((s: { checks: unknown }) => s.checks),
    printed.steps.map((s: { checks: unknown }) => s.checks),
  );
});

test('--compare with a run of the same backend: no verdict changed, exit 0', async (t) => {
  t.is((await record()).code, 0);
  const r = await nflab(['run', '01', '--compare', recordFile]);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /compared with the record \(this machine, kernel \S+, iptables-nft\)/);
  t.regex(r.stdout, /no verdict changed/);
});

test('--compare with iptables-legacy: the path check went from met to skipped, exit 1, and --json carries the comparison', async (t) => {
  t.is((await record()).code, 0);
  const r = await nflab(['run', '01', '--iptables', 'legacy', '--compare', recordFile, '--json']);
  t.is(r.code, 1, r.stderr);
  const { labs, comparison } = jsonOf(r);
  t.is(labs[0].status, 'passed', 'every check of the legacy run itself is met or skipped');
  t.is(comparison.before.iptables, 'nft');
  t.is(comparison.after.iptables, 'legacy');
  const verdicts = comparison.changes.filter((c: { verdictChanged: boolean }) => c.verdictChanged);
  t.is(verdicts.length, 1, JSON.stringify(verdicts));
  t.is(verdicts[0].kind, 'path');
  t.is(verdicts[0].before.status, 'met');
  t.is(verdicts[0].after.status, 'skipped');
  t.true(comparison.compared >= 15);
});

test('--compare names the check whose verdict changed and what each run observed (real run against a record whose counter check was edited to not met)', async (t) => {
  t.is((await record()).code, 0);
  const file = JSON.parse(readFileSync(recordFile, 'utf8'));
  const check = file.labs[0].steps[0].checks.find((c: { kind: string }) => c.kind === 'counter');
  check.status = 'not-met';
  check.observed = { packets: 0 };
  const edited = join(dir, 'edited.json');
  writeFileSync(edited, JSON.stringify(file));
  const r = await nflab(['run', '01', '--compare', edited]);
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(r.stdout, /1 verdict changed:/);
  t.true(r.stdout.includes(`lab 01 step 1: ${check.description}`), r.stdout);
  t.regex(r.stdout, /was not-met: \{"packets":0\}\n\s+now met: /);
});

test('--compare with a file that is not a record is a usage error before anything runs', async (t) => {
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{"nothing": 1}');
  const r = await nflab(['run', '01', '--compare', bad]);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /--compare .*bad\.json: neither an nflab record/);
  t.false(existsSync(join(dir, 'never')));
  const missing = await nflab(['run', '01', '--compare', join(dir, 'missing.json')]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /not a readable JSON record/);
});
