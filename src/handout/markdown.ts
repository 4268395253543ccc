// A handout as Markdown. The diagram is a separate SVG file next to it (Markdown viewers such as
// GitHub's drop inline <svg>), referenced by its relative name.
import type { Handout, HandoutStep } from './model.ts';
import { checkCommand, verdictWords } from './model.ts';
import { evidenceLines } from '../report/format-values.ts';
import { profileLabel } from '../k8s/profiles.ts';
import { humanDate } from './words.ts';
import { citedFacts, factAnchor, FACTS_DOC, KERNEL_FACTS, LABS_DOC, splitCitations } from './citations.ts';
import { mdCode, mdFence as fence, mdText, mdUrl, safeUrl } from './escape.ts';

export function handoutMarkdown(h: Handout, diagramFile: string): string {
  const { lab } = h;
  const student = h.edition === 'student';
  const url = safeUrl(lab.source.url);
  const out: string[] = [`# Lab ${mdText(lab.id)}: ${mdText(lab.title)}`, '', mdText(lab.summary), ''];
  out.push(
    `**Edition:** ${student ? "student worksheet: predict, then observe; the answers are in the teacher's edition" : "teacher's answer key: the answers, what each step expects and what a run observed"}  `,
  );
  out.push(
    `**Source:** ${url ? `[${mdText(lab.source.title)}](${mdUrl(url)})` : mdText(lab.source.title)}${lab.source.spec ? ` (nflab's notes on it: ${mdCode(`${LABS_DOC}#${lab.source.spec.toLowerCase()}`)})` : ''}  `,
  );
  if (lab.kubeProxy) out.push(`**kube-proxy profile:** ${mdText(profileLabel(lab.kubeProxy.options.era))}  `);
  out.push(
    `**Nodes:** ${h.driver === 'docker' ? 'containers are Docker containers (`docker exec`)' : 'every node is a network namespace (`ip netns exec`)'}  `,
  );
  if (!student)
    out.push(
      `**Evidence:** ${mdText(h.report ? `run ${h.report.runId} on ${humanDate(h.report.startedAt)} (${h.report.target}, kernel ${h.report.kernel ?? '?'}, ${h.report.driver} nodes) — ${verdictWords(h.report)}` : (h.noEvidence ?? ''))}`,
    );
  if (!student && h.report && h.noEvidence) out.push('', `> ${mdText(h.noEvidence)}`);
  out.push(
    '',
    '## Topology',
    '',
    `![Topology of lab ${mdText(lab.id)}](${mdUrl(diagramFile)})`,
    '',
    '## Build it',
    '',
    "Run as root. Every node is created fresh; nothing touches this machine's own network.",
    '',
  );
  out.push(...fence(h.build));
  for (const step of h.steps) out.push('', ...(student ? studentStepMarkdown(step, h) : stepMarkdown(step, h)));
  if (student) {
    const solved = h.steps.filter((s) => s.commands.length > 0);
    if (solved.length > 0)
      out.push(
        '',
        '## Solutions: the commands of each step',
        '',
        ...solved.flatMap((s) => [`### Step ${s.number}: ${mdText(s.title)}`, '', ...fence(s.commands), '']),
      );
    return out.join('\n') + '\n';
  }
  const facts = citedFacts(h.steps.flatMap((s) => (s.teaches ? [s.teaches] : [])));
  if (facts.length > 0) {
    out.push('', '## Kernel facts cited', '');
    for (const id of facts)
      out.push(
        `<a id="${factAnchor(id)}"></a>**${id}: ${mdText(KERNEL_FACTS[id]!.title)}.** ${mdText(KERNEL_FACTS[id]!.text)}`,
        '',
      );
    out.push(`The full list, with how each was observed: \`${FACTS_DOC}\` in nflab.`);
  }
  return out.join('\n') + '\n';
}

/** A worksheet step: questions with room to predict, what to observe with, the fix folded away
 * (a <details> the renderer collapses; the solutions section at the end), and how to check it. */
function studentStepMarkdown(step: HandoutStep, h: Handout): string[] {
  const out: string[] = [`## Step ${step.number}: ${mdText(step.title)}`, ''];
  if (step.questions.length > 0) {
    out.push('**Predict** (write it down before you send anything):', '');
    step.questions.forEach((q, i) =>
      out.push(`${i + 1}. ${mdText(q.ask)}`, '', '   Your prediction: ______________________________', ''),
    );
  }
  if (step.commands.length > 0)
    out.push(
      '<details><summary>Hint: the commands of this step (try first without)</summary>',
      '',
      ...fence(step.commands),
      '',
      '</details>',
      '',
    );
  if (step.watch.length > 0)
    out.push('Watch (start in another terminal first, stop with Ctrl-C):', '', ...fence(step.watch), '');
  if (step.traffic.length > 0) out.push('Send:', '', ...fence(step.traffic), '');
  if (step.look.length > 0) out.push('Look:', '', ...fence(step.look), '');
  if (step.questions.length > 0)
    out.push(
      'Observed (what did you see; where did it differ from your prediction?): ______________________________',
      '',
    );
  out.push('Check it:', '', ...fence([checkCommand(h, step)]));
  return out;
}

function stepMarkdown(step: HandoutStep, h: Handout): string[] {
  const out: string[] = [`## Step ${step.number}: ${mdText(step.title)}`, ''];
  if (step.teaches)
    out.push(
      splitCitations(step.teaches)
        .map((p) => ('fact' in p ? `[${p.fact}](#${factAnchor(p.fact)})` : mdText(p.text)))
        .join(''),
      '',
    );
  if (step.questions.length > 0) {
    out.push('Questions and answers:', '');
    step.questions.forEach((q, i) => {
      out.push(`${i + 1}. ${mdText(q.ask)}  `, `   **Answer:** ${mdText(q.answer)}`);
      if (q.observed)
        out.push(
          `   Observed in run ${mdText(h.report?.runId ?? '')} (${mdText(q.observed.description)}):`,
          ...indentFence(sides(q.observed.expected, q.observed.observed), '   '),
        );
      out.push('');
    });
  }
  if (step.watch.length > 0)
    out.push('Watch (start in another terminal first, stop with Ctrl-C):', '', ...fence(step.watch), '');
  if (step.commands.length > 0) out.push('Type:', '', ...fence(step.commands), '');
  if (step.traffic.length > 0) out.push('Send:', '', ...fence(step.traffic), '');
  if (step.look.length > 0) out.push('Look:', '', ...fence(step.look), '');
  if (step.expect.length > 0) {
    out.push('What to expect:', '');
    for (const e of step.expect)
      out.push(
        `- ${e.evidence ? (e.evidence.status === 'met' ? '✅ ' : e.evidence.status === 'skipped' ? '⊘ ' : '❌ ') : ''}${mdText(e.description)}`,
      );
    out.push('');
  }
  if (!step.evidence) {
    out.push(`*Evidence: ${h.report ? 'the run did not reach this step' : 'none (made without a run)'}.*`);
    return out;
  }
  const ev = step.evidence;
  out.push(`### Evidence (step ${mdText(ev.status)}, ${ev.durationMs} ms)`, '');
  for (const f of ev.commandFailures)
    out.push(`- ❌ **not met:** ${mdText(f.description)}`, ...indentFence(sides(f.expected, f.observed)));
  for (const e of step.expect) {
    if (!e.evidence) {
      out.push(`- ${mdText(e.description)}: no verdict recorded`);
      continue;
    }
    out.push(
      `- **${e.evidence.status === 'met' ? 'met' : e.evidence.status === 'not-met' ? 'not met' : e.evidence.status}:** ${mdText(e.description)}`,
    );
    out.push(...indentFence(sides(e.evidence.expected, e.evidence.observed)));
  }
  if (ev.commands.length > 0) {
    out.push('', 'Commands and their output in that run:', '');
    const lines = ev.commands.flatMap((c) => [
      `$ ${c.display}`,
      ...(c.output ? c.output.split('\n') : []),
      ...(c.exitCode !== null && c.exitCode !== 0 ? [`(exit status ${c.exitCode})`] : []),
    ]);
    out.push(...fence(lines, 'text'));
  }
  return out;
}

/** Expected and observed, one labelled column: `expected  count: 2` / `observed  count: 2`. */
function sides(expected: unknown, observed: unknown): string[] {
  const label = (name: string, lines: string[]) =>
    lines.map((l, i) => `${i === 0 ? name : ' '.repeat(name.length)}  ${l}`);
  return [...label('expected', evidenceLines(expected)), ...label('observed', evidenceLines(observed))];
}

function indentFence(lines: string[], indent = '  '): string[] {
  return fence(lines, 'text').map((l) => `${indent}${l}`);
}
