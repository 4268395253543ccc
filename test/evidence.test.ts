// Negative outcomes decided from the kernel's evidence (src/engine/evidence.ts): a TCP connection
// or a ping that cannot succeed stops as soon as a drop counter or the namespace's own SNMP
// statistics say why, with the verdicts waiting gives and the evidence named in the check's reason.
import test from 'ava';
import { nflab, jsonOf, runNamespaces } from './helpers/system.ts';
import type { CheckReport, RunReport } from '../src/report/types.ts';

const tcpOf = (checks: CheckReport[]) =>
  checks.find((c) => c.kind === 'tcp' && (c.expected as { outcome?: string }).outcome === 'timeout')!;
const EACH = (n: number, evidence: string) =>
  new RegExp(
    `^${Array.from({ length: n }, (_, i) => `connection ${i + 1} stopped after [\\d.]+ s instead of waiting up to \\d s: [^;]*${evidence}[^;]*`).join('; ')}$`,
  );

test('lab 03: a SYN dropped by the FORWARD policy, and a SYN-ACK with no route back, end their connections as timeouts at once', async (t) => {
  const r = await nflab(['run', '03', '--json']);
  t.is(r.code, 0, r.stderr);
  const lab = (jsonOf(r) as RunReport).labs[0]!;
  const [step5, step6] = [lab.steps[4]!, lab.steps[5]!];
  t.deepEqual(
    step5.checks.map((c) => c.status),
    ['met', 'met'],
    'the verdicts waiting gives',
  );
  t.deepEqual(tcpOf(step5.checks).observed, { outcomes: { timeout: 1 } });
  t.regex(
    tcpOf(step5.checks).reason ?? '',
    EACH(1, 'filter FORWARD policy DROP on host counted \\d+ dropped packets?'),
  );
  t.deepEqual(
    step6.checks.map((c) => c.status),
    ['met', 'met', 'met'],
    'the DNATed SYN was seen, no SYN-ACK left c1',
  );
  t.regex(
    tcpOf(step6.checks).reason ?? '',
    EACH(1, "c1's kernel had no route to send a packet \\(Ip OutNoRoutes \\+\\d+\\)"),
  );
  t.deepEqual(runNamespaces(lab.runId), []);
});

test('lab 04: each SYN-ACK that bypassed the un-DNAT is reset by pc, and each of the 3 connections ends there', async (t) => {
  const r = await nflab(['run', '04', '--json']);
  t.is(r.code, 0, r.stderr);
  const step4 = (jsonOf(r) as RunReport).labs[0]!.steps[3]!;
  t.deepEqual(
    step4.checks.map((c) => c.status),
    ['met', 'met', 'met'],
    'timeouts, SYN-ACKs seen on veth-pc, none from the ClusterIP',
  );
  t.deepEqual(tcpOf(step4.checks).observed, { outcomes: { timeout: 3 } });
  t.regex(
    tcpOf(step4.checks).reason ?? '',
    EACH(3, "pc's kernel reset a reply that belongs to no connection of its own \\(Tcp OutRsts \\+\\d+\\)"),
  );
});

test('lab 08: a ping and a connection leaked to the outside, which is not a router, end at its InAddrErrors', async (t) => {
  const r = await nflab(['run', '08', '--json']);
  t.is(r.code, 0, r.stderr);
  const [step1, step2] = (jsonOf(r) as RunReport).labs[0]!.steps;
  t.true(step1!.checks.every((c) => c.status === 'met') && step2!.checks.every((c) => c.status === 'met'));
  t.regex(
    step1!.checks.find((c) => c.kind === 'ping')!.reason ?? '',
    /^stopped after [\d.]+ s instead of waiting up to 1 s for a reply: ext's kernel discarded a packet addressed to none of its addresses \(not forwarding\) \(Ip InAddrErrors \+2\), as many as the 2 echo requests sent$/,
  );
  t.regex(tcpOf(step2!.checks).reason ?? '', EACH(1, 'Ip InAddrErrors'));
});
