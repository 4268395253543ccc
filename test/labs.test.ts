// Runs labs 01-03 for real through the CLI and asserts on what the kernel did: packets seen,
// counter deltas, conntrack tuples, and the client address a server saw.
import test from 'ava';
import { nflab, jsonOf } from './helpers/system.ts';
import type { CheckReport, RunReport } from '../src/report/types.ts';

async function runJson(t: import('ava').ExecutionContext, ...labs: string[]): Promise<RunReport> {
  const r = await nflab(['run', ...labs, '--json']);
  t.is(r.code, 0, r.stderr + r.stdout.slice(0, 2000));
  return jsonOf(r) as RunReport;
}

function check(report: RunReport, lab: string, step: number, description: string): CheckReport {
  const found = report.labs
    .find((l) => l.id === lab)!
    .steps[step - 1]!.checks.find((c) => c.description.includes(description));
  if (!found) throw new Error(`no check "${description}" in lab ${lab} step ${step}`);
  return found;
}

test('lab 01: the FORWARD policy drops the bridged echo request, then three fixes', async (t) => {
  const report = await runJson(t, '01');
  const lab = report.labs[0]!;
  t.is(lab.status, 'passed');
  t.true(lab.steps.every((s) => s.checks.every((c) => c.status === 'met')));
  t.deepEqual(check(report, '01', 1, 'policy counts the one echo request').observed, {
    packets: 1,
    bytes: 84,
    policy: 'FORWARD DROP',
  });
  const veth0 = check(report, '01', 1, 'veth0 (c1').observed as { count: number; packets: string[] };
  t.true(veth0.count >= 1);
  t.regex(veth0.packets[0]!, /IP 10\.55\.66\.2 > 10\.55\.66\.3: ICMP echo request/);
  t.is((check(report, '01', 1, 'veth1 (c2').observed as { count: number }).count, 0);
  t.deepEqual(check(report, '01', 5, 'whitelist rule counts').observed, {
    packets: 2,
    bytes: 168,
    rule: '-A FORWARD -i hwchiu0 -o hwchiu0 -j ACCEPT',
  });
});

test('lab 02: MASQUERADE rewrites the source on eth0 and conntrack holds the translated reply tuple', async (t) => {
  const report = await runJson(t, '02');
  t.is(report.labs[0]!.status, 'passed');
  const unreachable = check(report, '02', 1, 'fails with "Network is unreachable"').observed as { error: string };
  t.regex(unreachable.error, /Network is unreachable/);
  const onEth0 = check(report, '02', 4, 'on eth0 the source is already translated').observed as {
    count: number;
    packets: string[];
  };
  t.is(onEth0.count, 2);
  t.true(onEth0.packets.every((p) => p.startsWith('IP 10.0.2.15 > 198.51.100.8: ICMP echo request')));
  const tuple = check(report, '02', 4, 'reply tuple carries the translated destination').observed as {
    entries: string[];
  };
  t.regex(tuple.entries[0]!, /src=10\.55\.66\.2 dst=198\.51\.100\.8 .* src=198\.51\.100\.8 dst=10\.0\.2\.15/);
  t.deepEqual(check(report, '02', 4, 'MASQUERADE counts one flow').observed, {
    packets: 1,
    bytes: 84,
    rule: '-A POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE',
  });
  t.is((check(report, '02', 3, 'conntrack is empty').observed as { count: number }).count, 0);
});

test('lab 03: DNAT keeps the client source; host-local access needs nat OUTPUT', async (t) => {
  const report = await runJson(t, '03');
  t.is(report.labs[0]!.status, 'passed');
  const reached = check(report, '03', 4, 'TCP connection from client to 172.17.9.103:2345 connects').observed as {
    clientSeen: Record<string, number>;
    answeredBy: Record<string, number>;
  };
  t.deepEqual(reached.answeredBy, { c1: 1 });
  t.true(
    Object.keys(reached.clientSeen).every((c) => c.startsWith('172.17.9.1')),
    JSON.stringify(reached),
  );
  const onBridge = check(report, '03', 4, 'hwchiu0: the SYN was DNATed').observed as { packets: string[] };
  t.regex(onBridge.packets[0]!, /IP 172\.17\.9\.1\.\d+ > 10\.55\.66\.2\.8000: Flags \[S\]/);
  const tuple = check(report, '03', 4, 'reply tuple carries c1:8000').observed as { entries: string[] };
  t.regex(
    tuple.entries[0]!,
    /src=172\.17\.9\.1 dst=172\.17\.9\.103 sport=\d+ dport=2345 src=10\.55\.66\.2 dst=172\.17\.9\.1 sport=8000/,
  );
  t.deepEqual(check(report, '03', 4, 'DNAT rule counts one connection').observed, {
    packets: 1,
    bytes: 60,
    rule: '-A PREROUTING -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000',
  });
  t.true((check(report, '03', 5, 'FORWARD policy drops the SYN').observed as { packets: number }).packets >= 1);
});

test('run --json prints the documented shape with expected and observed on every check', async (t) => {
  const r = await nflab(['run', '01', '--json']);
  const report = jsonOf(r) as RunReport;
  t.deepEqual(Object.keys(report), ['labs']);
  for (const lab of report.labs) {
    t.truthy(lab.id && lab.title && ['passed', 'failed', 'skipped'].includes(lab.status));
    for (const step of lab.steps) {
      t.truthy(step.title);
      for (const c of step.checks) {
        t.truthy(c.description);
        t.true(['met', 'not-met', 'skipped'].includes(c.status));
        t.true('expected' in c && 'observed' in c);
      }
    }
  }
});
