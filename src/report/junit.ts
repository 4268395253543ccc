// JUnit XML for CI systems: one test suite per lab, one test case per check. A check not met is
// a <failure> carrying expected and observed; a skipped lab's checks are <skipped>.
import type { LabReport, RunReport } from './types.ts';

function escape(text: string): string {
  // XML 1.0 forbids most control characters even when escaped: drop them.
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '')
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

function suite(lab: LabReport): string {
  const cases: string[] = [];
  let failures = 0;
  let skipped = 0;
  lab.steps.forEach((step, i) => {
    const classname = escape(`lab${lab.id}.step${String(i + 1).padStart(2, '0')}`);
    for (const check of step.checks) {
      const name = escape(check.description);
      const detail = escape(`expected: ${JSON.stringify(check.expected)}\nobserved: ${JSON.stringify(check.observed)}`);
      if (check.status === 'not-met') {
        failures++;
        cases.push(`    <testcase classname="${classname}" name="${name}"><failure message="not met" type="${escape(check.kind)}">${detail}</failure></testcase>`);
      } else if (check.status === 'skipped') {
        skipped++;
        cases.push(`    <testcase classname="${classname}" name="${name}"><skipped/></testcase>`);
      } else {
        cases.push(`    <testcase classname="${classname}" name="${name}"/>`);
      }
    }
  });
  if (lab.status === 'skipped' || (lab.status === 'failed' && lab.reason)) {
    // A lab that never reached its checks still shows up, as one case saying why.
    const kind = lab.status === 'skipped' ? 'skipped' : 'error';
    if (kind === 'skipped') skipped++;
    else failures++;
    const body = kind === 'skipped' ? `<skipped message="${escape(lab.reason ?? '')}"/>` : `<error message="${escape(lab.reason ?? '')}"/>`;
    cases.push(`    <testcase classname="lab${escape(lab.id)}" name="${escape(lab.status === 'skipped' ? 'lab skipped' : 'lab run')}">${body}</testcase>`);
  }
  return [
    `  <testsuite name="${escape(`lab ${lab.id}: ${lab.title}`)}" tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${(lab.durationMs / 1000).toFixed(3)}" timestamp="${escape(lab.startedAt)}">`,
    `    <properties><property name="driver" value="${escape(lab.driver)}"/><property name="target" value="${escape(lab.target)}"/><property name="runId" value="${escape(lab.runId)}"/>${lab.rootNamespace ? `<property name="rootNamespace" value="${escape(lab.rootNamespace)}"/>` : ''}</properties>`,
    ...cases,
    '  </testsuite>',
  ].join('\n');
}

export function toJunit(report: RunReport): string {
  return ['<?xml version="1.0" encoding="UTF-8"?>', '<testsuites name="nflab">', ...report.labs.map(suite), '</testsuites>', ''].join('\n');
}
