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
import { schemaErrors } from './helpers/schema.ts';

/** How GitLab lists a JUnit report (its parser, lib/gitlab/ci/parsers/test/junit.rb): a case's status
 * comes from its failure, error or skipped element, its details are that element's text, its
 * execution time is the time attribute. */
interface ListedCase {
  suite: string;
  classname: string;
  name: string;
  status: 'success' | 'failed' | 'error' | 'skipped';
  time?: number;
  details: string;
}
function gitlabListing(xml: string): ListedCase[] {
  const unescape = (s: string) =>
    s
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&apos;/g, "'")
      .replace(/&amp;/g, '&');
  const attr = (attrs: string, name: string) => {
    const m = new RegExp(`\\b${name}="([^"]*)"`).exec(attrs);
    return m ? unescape(m[1]!) : undefined;
  };
  const cases: ListedCase[] = [];
  let suite = '';
  for (const m of xml.matchAll(/<testsuite ([^>]*)>|<testcase ([^>]*?)(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
    if (m[1] !== undefined) {
      suite = attr(m[1], 'name')!;
      continue;
    }
    const body = m[3] ?? '';
    const verdict = /<(failure|error|skipped)\b[^>]*?(?:\/>|>([\s\S]*?)<\/\1>)/.exec(body);
    const status = verdict
      ? ({ failure: 'failed', error: 'error', skipped: 'skipped' } as const)[verdict[1] as 'failure']
      : 'success';
    const time = attr(m[2]!, 'time');
    cases.push({
      suite,
      classname: attr(m[2]!, 'classname')!,
      name: attr(m[2]!, 'name')!,
      status,
      time: time === undefined ? undefined : Number(time),
      details: unescape(verdict?.[2] ?? ''),
    });
  }
  return cases;
}

/** A table like GitLab's test report page: status, suite, name, duration, then the first details line. */
function gitlabTable(cases: ListedCase[]): string {
  return cases
    .map(
      (c) =>
        `${c.status.padEnd(7)} | ${c.suite} | ${c.classname} | ${c.name} | ${c.time?.toFixed(2)} s${c.details ? ` | ${c.details.split('\n')[0]}` : ''}`,
    )
    .join('\n');
}

const SCHEMA = join(REPO, 'test/fixtures/junit.xsd');
const validate = (file: string) =>
  execFileSync('xmllint', ['--noout', '--schema', SCHEMA, file], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });

test('a real run with a check not met gives valid JUnit XML with one case per check', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-junit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lab = join(dir, 'reversed.ts');
  writeFileSync(
    lab,
    readFileSync(join(REPO, 'labs/01-bridge-forward-drop.ts'), 'utf8').replace(
      '      c1PingsC2.fails(),\n',
      '      c1PingsC2.succeeds(),\n',
    ),
  );
  const xml = join(dir, 'report.xml');
  const r = await nflab(['run', lab, '--json', '--junit', xml]);
  t.is(r.code, 1);
  t.notThrows(() => validate(xml));
  const report = jsonOf(r) as RunReport;
  const text = readFileSync(xml, 'utf8');
  const checks = report.labs[0]!.steps.flatMap((s) => s.checks);
  t.is((text.match(/<testcase /g) ?? []).length, checks.length);
  t.is((text.match(/<failure /g) ?? []).length, 1);
  t.deepEqual(schemaErrors(report), []);
  // The failure says what differed, in the message CI pages list; the case carries the step's title,
  // a time, and the step's commands with their output.
  t.regex(
    text,
    /<testcase classname="lab01\.step01: [^"]+" name="ping from c1 to 10\.55\.66\.3 succeeds" time="\d+\.\d{3}"><failure message="outcome: expected succeeds, observed fails" type="ping">/,
  );
  const step1 = report.labs[0]!.steps[0]!;
  t.true(
    text.includes(
      `classname="lab01.step01: ${step1.title.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/</g, '&lt;').replace(/>/g, '&gt;')}"`,
    ),
  );
  t.regex(text, /<system-out>\$ ip netns exec c1 ping [^<]*<\/system-out>/);
  const listing = gitlabListing(text);
  t.is(listing.filter((c) => c.status === 'failed').length, 1);
  t.true(
    listing.every((c) => c.time !== undefined),
    'every case has a time',
  );
});

test('hostile text (markup, quotes, control characters) stays valid XML', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-junit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const report: RunReport = {
    labs: [
      {
        id: '<x>',
        title: 'a "quoted" & <tagged> title\u0001',
        status: 'skipped',
        reason: 'no ip_vs <here> & \u0007',
        driver: 'netns',
        target: 'this machine',
        runId: 'r1',
        startedAt: new Date(0).toISOString(),
        durationMs: 5,
        steps: [
          {
            title: 's',
            status: 'failed',
            durationMs: 1,
            commands: [],
            checks: [
              {
                description: "it's </testcase> ]]>",
                kind: 'output',
                status: 'not-met',
                expected: '<a>',
                observed: '\u0000&',
              },
            ],
          },
        ],
      },
    ],
  };
  const file = join(dir, 'hostile.xml');
  writeFileSync(file, toJunit(report));
  t.notThrows(() => validate(file));
  t.regex(readFileSync(file, 'utf8'), /name="it&apos;s &lt;\/testcase&gt; \]\]&gt;"/);
});

test('GitLab lists failures by what differed, labs that could not run as errors, skipped labs as skipped', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-junit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const base = { driver: 'netns', target: 'this machine', startedAt: new Date(0).toISOString() };
  const step = (title: string, checks: RunReport['labs'][0]['steps'][0]['checks']) => ({
    title,
    status: 'failed' as const,
    durationMs: 900,
    checks,
    commands: [
      {
        node: 'c1',
        display: 'ip netns exec c1 ping -c 1 10.55.66.3',
        exitCode: 1,
        output: '1 packets transmitted, 0 received',
      },
    ],
  });
  const report: RunReport = {
    labs: [
      {
        ...base,
        id: '01',
        title: 'bridge',
        status: 'failed',
        runId: 'a',
        durationMs: 2000,
        steps: [
          step('c1 pings c2', [
            {
              description: 'tcpdump on host:veth1 sees 1 packet (icmp)',
              kind: 'packets',
              status: 'not-met',
              expected: { match: { proto: 'icmp' }, count: 1 },
              observed: { count: 2, packets: ['a', 'b'], capturedInAll: 5 },
            },
            {
              description: 'filter FORWARD policy counts at least one packet',
              kind: 'counter',
              status: 'not-met',
              expected: { packets: { min: 1 } },
              observed: { packets: 0, bytes: 0, policy: 'DROP' },
            },
            {
              description: 'conntrack on host holds 1 entry',
              kind: 'conntrack',
              status: 'not-met',
              expected: { count: 1 },
              observed: 'conntrack was not read',
            },
            {
              description: 'ping from c1 to c2 fails',
              kind: 'ping',
              status: 'met',
              expected: { outcome: 'fails' },
              observed: { outcome: 'fails' },
            },
          ]),
        ],
      },
      {
        ...base,
        id: '02',
        title: 'masquerade',
        status: 'failed',
        reason: 'set-up command failed: ip link add br0 type bridge: File exists',
        runId: 'b',
        durationMs: 300,
        steps: [],
      },
      // Issue 12's run states: a lab and a check with status 'error' (cast: not in the types yet).
      {
        ...base,
        id: '03',
        title: 'dnat',
        status: 'error' as 'failed',
        reason: 'the namespace could not be created',
        runId: 'c',
        durationMs: 100,
        steps: [
          step('s', [
            {
              description: 'a TCP connection from c1 to 10.0.0.1:80 connects',
              kind: 'tcp',
              status: 'error' as 'met',
              expected: { outcome: 'connects' },
              observed: 'the responder did not start',
            },
          ]),
        ],
      },
      {
        ...base,
        id: '12',
        title: 'ipvs',
        status: 'skipped',
        reason: 'this kernel has no ip_vs',
        runId: 'd',
        durationMs: 10,
        steps: [],
      },
    ],
  };
  const file = join(dir, 'report.xml');
  const xml = toJunit(report);
  writeFileSync(file, xml);
  t.notThrows(() => validate(file));
  const table = gitlabTable(gitlabListing(xml));
  t.log(`\n${table}`);
  t.is(
    table,
    [
      'failed  | lab 01: bridge | lab01.step01: c1 pings c2 | tcpdump on host:veth1 sees 1 packet (icmp) | 0.23 s | expected 1 packet, observed 2',
      'failed  | lab 01: bridge | lab01.step01: c1 pings c2 | filter FORWARD policy counts at least one packet | 0.23 s | expected at least 1 packet, observed 0',
      'failed  | lab 01: bridge | lab01.step01: c1 pings c2 | conntrack on host holds 1 entry | 0.23 s | conntrack was not read (expected count 1)',
      'success | lab 01: bridge | lab01.step01: c1 pings c2 | ping from c1 to c2 fails | 0.23 s',
      'error   | lab 02: masquerade | lab02 | lab run | 0.30 s | set-up command failed: ip link add br0 type bridge: File exists',
      'error   | lab 03: dnat | lab03.step01: s | a TCP connection from c1 to 10.0.0.1:80 connects | 0.90 s | the responder did not start (expected outcome connects)',
      'error   | lab 03: dnat | lab03 | lab run | 0.00 s | the namespace could not be created',
      'skipped | lab 12: ipvs | lab12 | lab skipped | 0.00 s',
    ].join('\n'),
  );
  t.regex(xml, /<testsuite name="lab 01: bridge" tests="4" failures="3" errors="0" skipped="0"/);
  t.regex(xml, /<testsuite name="lab 02: masquerade" tests="1" failures="0" errors="1" skipped="0"/);
  t.regex(xml, /<testsuite name="lab 03: dnat" tests="2" failures="0" errors="2" skipped="0"/);
  t.regex(
    xml,
    /<system-out>\$ ip netns exec c1 ping -c 1 10\.55\.66\.3  # exit 1\n1 packets transmitted, 0 received<\/system-out>/,
  );
  // The failure's text: the message, then expected and observed as key: value lines.
  t.regex(
    xml,
    /expected 1 packet, observed 2\n\nexpected:\n  match: proto icmp\n  count: 1\nobserved:\n  count: 2\n  packets: a, b/,
  );
});
