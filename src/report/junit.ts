// JUnit XML for CI systems: one test suite per lab, one test case per check.
// - A check not met is a <failure> whose message says what differed ("expected 1 packet,
//   observed 2": GitLab and GitHub list only that), its text expected and observed as key: value lines.
// - A lab that could not be built or run (status 'error' or 'interrupted', or 'failed' with a reason)
//   is an <error> and counts in errors=; a check with status 'error' too; a lab not run is <skipped>.
// - classname names the lab, the step and its title; time is the step's time shared by its checks
//   (they were judged from one run of the step); <system-out> holds the step's commands and outputs.
import { differenceWords } from './difference.ts';
import { evidenceLines } from './format-values.ts';
import type { CheckReport, LabReport, RunReport, StepReport } from './types.ts';

function escape(text: string): string {
  // XML 1.0 forbids most control characters even when escaped: drop them.
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

const seconds = (ms: number) => (Math.max(0, ms) / 1000).toFixed(3);

/** The step's commands as typed, each followed by its output: what a CI page shows beside a case. */
function stepOutput(step: StepReport): string {
  return step.commands
    .map((c) => {
      const status = c.exitCode === 0 || c.exitCode === undefined ? '' : `  # exit ${c.exitCode ?? 'killed'}`;
      return `$ ${c.display}${status}${c.output ? `\n${c.output.replace(/\n$/, '')}` : ''}`;
    })
    .join('\n');
}

function evidence(check: CheckReport): string {
  const side = (label: string, value: unknown) => [`${label}:`, ...evidenceLines(value).map((l) => `  ${l}`)];
  return [
    ...side('expected', check.expected),
    ...side('observed', check.observed),
    ...(check.reason ? [`reason: ${check.reason}`] : []),
    ...(check.hint ? [`hint: ${check.hint}`] : []),
    ...(check.about ? [`about: ${check.about}`] : []),
  ].join('\n');
}

interface Counts {
  failures: number;
  errors: number;
  skipped: number;
}

function testCase(lab: LabReport, step: StepReport, index: number, check: CheckReport, counts: Counts): string {
  const classname = escape(`lab${lab.id}.step${String(index + 1).padStart(2, '0')}: ${step.title}`);
  const time = seconds(step.durationMs / Math.max(1, step.checks.length));
  const out = stepOutput(step);
  const systemOut = out ? `<system-out>${escape(out)}</system-out>` : '';
  const open = `    <testcase classname="${classname}" name="${escape(check.description)}" time="${time}">`;
  const status = check.status as string; // 'error' arrives with the run states of issue 12
  if (status === 'not-met' || status === 'error') {
    const message = differenceWords(check);
    const element = status === 'error' ? 'error' : 'failure';
    if (element === 'error') counts.errors++;
    else counts.failures++;
    // GitLab shows the element's text as the case's details: it starts with the message too.
    return `${open}<${element} message="${escape(message)}" type="${escape(check.kind)}">${escape(`${message}\n\n${evidence(check)}`)}</${element}>${systemOut}</testcase>`;
  }
  if (status === 'skipped') {
    counts.skipped++;
    return `${open}<skipped${check.reason ? ` message="${escape(check.reason)}"` : ''}/>${systemOut}</testcase>`;
  }
  return `${open}${systemOut}</testcase>`;
}

function suite(lab: LabReport): string {
  const counts: Counts = { failures: 0, errors: 0, skipped: 0 };
  const cases: string[] = [];
  lab.steps.forEach((step, i) => {
    for (const check of step.checks) cases.push(testCase(lab, step, i, check, counts));
  });
  const status: string = lab.status;
  if (status === 'skipped' || status === 'not-run') {
    counts.skipped++;
    cases.push(
      `    <testcase classname="lab${escape(lab.id)}" name="lab ${status === 'skipped' ? 'skipped' : 'not run'}" time="0.000"><skipped message="${escape(lab.reason ?? '')}"/></testcase>`,
    );
  } else if (status === 'error' || status === 'interrupted' || (status === 'failed' && lab.reason)) {
    // A lab that could not be built or run (or was stopped) still shows up, as one case saying why.
    counts.errors++;
    const reason = lab.error
      ? `${lab.error.message} (${lab.error.code})`
      : (lab.reason ?? (status === 'interrupted' ? 'the run was interrupted' : 'the lab could not run'));
    const time = seconds(lab.durationMs - lab.steps.reduce((sum, s) => sum + s.durationMs, 0));
    cases.push(
      `    <testcase classname="lab${escape(lab.id)}" name="lab run" time="${time}"><error message="${escape(reason)}" type="lab">${escape(reason)}</error></testcase>`,
    );
  }
  return [
    `  <testsuite name="${escape(`lab ${lab.id}: ${lab.title}`)}" tests="${cases.length}" failures="${counts.failures}" errors="${counts.errors}" skipped="${counts.skipped}" time="${seconds(lab.durationMs)}" timestamp="${escape(lab.startedAt.replace(/Z$/, ''))}">`,
    `    <properties><property name="driver" value="${escape(lab.driver)}"/><property name="target" value="${escape(lab.target)}"/><property name="runId" value="${escape(lab.runId)}"/>${lab.rootNamespace ? `<property name="rootNamespace" value="${escape(lab.rootNamespace)}"/>` : ''}</properties>`,
    ...cases,
    '  </testsuite>',
  ].join('\n');
}

export function toJunit(report: RunReport): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<testsuites name="nflab">',
    ...report.labs.map(suite),
    '</testsuites>',
    '',
  ].join('\n');
}
