// A handout as one self-contained HTML file: styles inline, the diagram inline as SVG, no script,
// no font, image or stylesheet from anywhere else. Print CSS makes it a paper handout (and the PDF).
import { profileLabel } from '../k8s/profiles.ts';
import type { Handout, HandoutStep } from './model.ts';
import { checkCommand, verdictWords } from './model.ts';
import { evidenceRows } from '../report/format-values.ts';
import { wrapCommand } from './wrap-command.ts';
import { hookPictureSvg, pathWords } from './hook-picture.ts';
import { stepPictures } from './step-pictures.ts';
import { count, duration, humanDate } from './words.ts';
import { escapeHtml as e, safeUrl } from './escape.ts';
import { topologySvg, describeTopology } from './diagram-svg.ts';
import { citedFacts, factAnchor, FACTS_DOC, KERNEL_FACTS, LABS_DOC, splitCitations } from './citations.ts';

export const HANDOUT_CSS = `
:root { --ink: #1d1d1f; --muted: #5f6368; --line: #d0d4d9; --ok: #1b7f3b; --bad: #b3261e; --code: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; background: #fff; }
main { max-width: 980px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.7em; margin: 0 0 .3em; line-height: 1.25; }
h2 { font-size: 1.25em; margin: 1.6em 0 .4em; padding-bottom: .2em; border-bottom: 1px solid var(--line); }
h3 { font-size: 1em; margin: 1em 0 .3em; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
h3 span { text-transform: none; letter-spacing: 0; font-weight: normal; }
.summary { font-size: 1.05em; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; margin: 1em 0; font-size: .92em; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
.banner { border-left: 4px solid #c58a00; background: #fff8e5; padding: .5em .9em; margin: 1em 0; }
figure { margin: 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: .85em; color: var(--muted); margin-top: .4em; }
pre { background: var(--code); border: 1px solid var(--line); border-radius: 6px; padding: .6em .8em; overflow-x: auto; font: 12.5px/1.45 "DejaVu Sans Mono", Menlo, Consolas, monospace; margin: .3em 0 .8em; }
pre.commands code::before { content: ""; }
pre.output { background: #fbfbfb; color: #333; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .92em; }
.teaches { font-style: italic; }
ul.expect { list-style: none; padding: 0; margin: .3em 0; }
ul.expect > li { padding: .45em .6em; border: 1px solid var(--line); border-radius: 6px; margin: .35em 0; break-inside: avoid; }
ul.expect > li.met { border-left: 5px solid var(--ok); }
ul.expect > li.not-met { border-left: 5px solid var(--bad); background: #fff6f5; }
ul.expect > li.skipped { border-left: 5px solid #999; }
.verdict { font-weight: 600; font-size: .85em; padding: .05em .45em; border-radius: 4px; margin-right: .4em; }
.verdict.met { color: #fff; background: var(--ok); }
.verdict.not-met { color: #fff; background: var(--bad); }
.verdict.skipped, .verdict.none { color: #fff; background: #777; }
.sides { display: grid; grid-template-columns: 1fr 1fr; gap: .6em; margin-top: .4em; }
.sides > div > span { font-size: .8em; color: var(--muted); }
.sides pre { margin: .1em 0 0; white-space: pre-wrap; word-break: break-word; }
.status-passed { color: var(--ok); } .status-failed { color: var(--bad); } .status-skipped { color: #777; }
.noevidence { color: var(--muted); font-style: italic; }
.muted { color: var(--muted); }
dl.facts dt { font-weight: 600; margin-top: .5em; }
dl.facts dd { margin: .1em 0 0 1.2em; }
footer { margin-top: 3em; font-size: .8em; color: var(--muted); }
table.ev { border-collapse: collapse; width: 100%; font-size: .85em; }
table.ev th { text-align: left; font-weight: normal; color: var(--muted); padding: .1em .5em .1em 0; vertical-align: top; white-space: nowrap; width: 1%; }
table.ev td { padding: .1em 0; vertical-align: top; overflow-wrap: anywhere; }
table.ev ul, table.ev ol { margin: 0; padding-left: 1.3em; }
table.ev code { font-size: .95em; }
ol.hops { list-style: decimal; }
ol.hops li { margin: 0; }
figure.hooks { margin: .6em 0; }
figure.hooks figcaption ol { margin: .2em 0 0; padding-left: 1.4em; }
.fold code { font-size: 1em; }
ol.questions { padding-left: 1.4em; }
ol.questions .ask { font-weight: 600; margin: .3em 0 .2em; }
ol.questions .answer { margin: .1em 0; }
ol.questions .observed { margin: .2em 0 .5em; }
.write { height: 3.2em; border-bottom: 1px solid var(--line); background: repeating-linear-gradient(transparent 0 1.55em, var(--line) 1.55em 1.6em); margin: .2em 0 .6em; }
details.hint { margin: .5em 0; }
details.hint summary { cursor: pointer; color: var(--muted); }
.print-only { display: none; }
@page { size: A4; margin: 14mm 12mm 16mm; }
@media print {
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  h3 { break-after: avoid; }
  pre { white-space: pre-wrap; overflow-wrap: anywhere; break-inside: avoid; font-size: 8.5pt; }
  pre.commands, pre.output { white-space: pre; overflow: visible; }
  section.chapter { break-before: page; }
  section.appendix { break-before: page; }
  figure.hooks svg { max-width: 100%; }
  pre[data-kind="build"], pre.output { break-inside: auto; }
  figure { break-inside: avoid; overflow: visible; }
  section.topology figcaption { display: none; }
  section.step { break-before: auto; }
  a { color: inherit; text-decoration: none; }
  a[href^="http"]::after { content: " <" attr(href) ">"; font-size: .85em; color: var(--muted); word-break: break-all; }
  details.hint { display: none; }
  .print-only { display: block; }
  h2, h3, ol.questions > li { break-inside: avoid; }
  section.solutions h3 { break-after: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
`;

export function htmlPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="nflab">
<title>${e(title)}</title>
<style>${HANDOUT_CSS}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

/** A handout's parts: the chapter (everything a reader works through) and its appendix (the full
 * build listing). A workbook places the chapters in a row and the appendices at the end. */
export interface HandoutParts {
  title: string;
  chapter: string;
  appendix: string;
  /** Anchor of the chapter and of its appendix. */
  chapterId: string;
  appendixId: string;
}

export function handoutHtml(h: Handout): string {
  const parts = handoutParts(h, '');
  const footer = `<footer>Generated by nflab from ${e(h.slug)}.ts (${h.edition === 'student' ? 'student edition' : 'teacher edition'}). Commands are shown as a person types them; a line ending in <code>\\</code> continues on the next. The lab's node names stand for the namespaces (or containers) a run creates.</footer>`;
  return htmlPage(parts.title, [parts.chapter, parts.appendix, footer].join('\n'));
}

/** The command a person types to build the lab with nflab. */
export function upCommand(h: Handout): string {
  return `nflab up ${h.lab.id}${h.driver === 'docker' ? ' --nodes docker' : ''}`;
}

export function handoutParts(h: Handout, idPrefix: string): HandoutParts {
  const { lab } = h;
  const chapterId = `${idPrefix}lab-${lab.id}`;
  const appendixId = `${idPrefix}build-${lab.id}`;
  // http(s) only: any other scheme (javascript:, data:) is printed as the title alone.
  const sourceUrl = safeUrl(lab.source.url);
  const body: string[] = [
    `<header><h1 id="${e(chapterId)}">Lab ${e(lab.id)}: ${e(lab.title)}</h1>`,
    `<p class="summary">${e(lab.summary)}</p>`,
    '<dl class="meta">',
    `<dt>Source</dt><dd>${sourceUrl ? `<a href="${e(sourceUrl)}">${e(lab.source.title)}</a>` : e(lab.source.title)}${lab.source.spec ? ` <span class="muted">(nflab's notes on it: <code>${LABS_DOC}#${e(lab.source.spec.toLowerCase())}</code>)</span>` : ''}</dd>`,
    ...(lab.kubeProxy ? [`<dt>kube-proxy profile</dt><dd>${e(profileLabel(lab.kubeProxy.options.era))}</dd>`] : []),
    `<dt>Nodes</dt><dd>${h.driver === 'docker' ? 'containers are Docker containers (<code>docker exec</code>); host and outside nodes are network namespaces' : 'every node is a network namespace (<code>ip netns exec</code>)'}</dd>`,
    `<dt>Edition</dt><dd>${h.edition === 'student' ? "student worksheet: predict, then observe; the answers are in the teacher's edition" : "teacher's answer key: the answers, what each step expects and what a run observed"}</dd>`,
    ...(h.edition === 'student'
      ? []
      : [
          `<dt>Evidence</dt><dd>${h.report ? `run <code>${e(h.report.runId)}</code> on ${e(humanDate(h.report.startedAt))} — ${e(h.report.target)}, kernel ${e(h.report.kernel ?? '?')}, ${e(h.report.driver)} nodes — <strong class="status-${e(h.report.status)}">${e(verdictWords(h.report))}</strong>` : e(h.noEvidence ?? '')}</dd>`,
        ]),
    '</dl></header>',
  ];
  if (h.noEvidence && h.edition === 'teacher')
    body.push(`<p class="banner" data-evidence="none">${e(h.noEvidence)}</p>`);
  body.push(
    '<section class="build"><h2>Build it</h2>',
    `<p class="fold">Run as root; every node is created fresh, nothing touches this machine's own network. One command builds it (from an nflab checkout: <code>npx ${e(upCommand(h))}</code>):</p>`,
    commands([upCommand(h)], 'up'),
    `<p>It runs ${e(count(h.build.length, 'command'))}, listed in full in <a href="#${e(appendixId)}">the appendix “Build listing of lab ${e(lab.id)}”</a>, and prints the real names of the namespaces it made.</p></section>`,
  );
  // After the short build section: a tall diagram that moves to the next page leaves less blank.
  body.push(
    '<section class="topology"><h2>Topology</h2><figure>',
    topologySvg(lab, h.kindOf),
    `<figcaption>${e(describeTopology(lab))}</figcaption></figure></section>`,
  );
  const student = h.edition === 'student';
  for (const step of h.steps) body.push(student ? studentStepHtml(step, h, idPrefix) : stepHtml(step, h, idPrefix));
  if (!student) body.push(factsHtml(h, idPrefix));
  const appendix = [
    `<section class="appendix"><h2 id="${e(appendixId)}">Build listing of lab ${e(lab.id)}</h2>`,
    `<p>What <code>${e(upCommand(h))}</code> runs, in order, as a person types it. Run as root.</p>`,
    commands(h.build, 'build'),
    '</section>',
    ...(student ? [solutionsHtml(h, idPrefix)] : []),
  ].join('\n');
  return {
    title: `Lab ${lab.id}: ${lab.title}`,
    chapter: `<section class="chapter" data-lab="${e(lab.id)}">\n${body.join('\n')}\n</section>`,
    appendix,
    chapterId,
    appendixId,
  };
}

/** Commands as printed: long ones wrapped between words with `\` continuations. */
function commands(lines: string[], kind: string): string {
  return `<pre class="commands" data-kind="${kind}"><code>${lines
    .flatMap((l) => wrapCommand(l))
    .map(e)
    .join('\n')}</code></pre>`;
}

/** A worksheet step: the goal, the questions with room for a prediction, the commands to observe
 * with, the fix folded away (on screen) or on the solutions page (in print), and how to check it.
 * Nothing that answers a question: no expectation, no evidence, no explanation, no expected path. */
function studentStepHtml(step: HandoutStep, h: Handout, idPrefix: string): string {
  const out: string[] = [
    `<section class="step" id="${e(idPrefix)}step-${step.number}" data-step="${step.number}">`,
    `<h2>Step ${step.number}: ${e(step.title)}</h2>`,
  ];
  if (step.questions.length) {
    out.push(
      '<h3>Predict</h3><p class="muted">Write your prediction before you send anything; then observe and compare.</p><ol class="questions">',
    );
    for (const q of step.questions)
      out.push(`<li><p class="ask">${e(q.ask)}</p><div class="write" aria-label="your prediction"></div></li>`);
    out.push('</ol>');
  }
  if (step.commands.length) {
    out.push(
      `<details class="hint"><summary>Hint: the commands of this step (try first without)</summary>${commands(step.commands, 'type')}</details>`,
      `<p class="print-only muted">The commands of this step are on <a href="#${e(idPrefix)}solution-${step.number}">the solutions page</a>: try first without them.</p>`,
    );
  }
  if (step.watch.length)
    out.push(
      '<h3>Watch</h3><p>Start in another terminal before the traffic; stop with Ctrl-C.</p>',
      commands(step.watch, 'watch'),
    );
  if (step.traffic.length) out.push('<h3>Send</h3>', commands(step.traffic, 'send'));
  if (step.look.length) out.push('<h3>Look</h3>', commands(step.look, 'look'));
  if (step.questions.length)
    out.push(
      '<h3>Observed</h3><p class="muted">What did you see? Where did it differ from your prediction?</p><div class="write" aria-label="what you observed"></div>',
    );
  out.push('<h3>Check it</h3>', commands([checkCommand(h, step)], 'check'), '</section>');
  return out.join('\n');
}

/** The student edition's solutions: each step's commands, at the end. */
function solutionsHtml(h: Handout, idPrefix: string): string {
  const steps = h.steps.filter((s) => s.commands.length > 0);
  if (steps.length === 0) return '';
  return [
    `<section class="appendix solutions"><h2>Solutions: the commands of each step of lab ${e(h.lab.id)}</h2>`,
    ...steps.map(
      (s) =>
        `<h3 id="${e(idPrefix)}solution-${s.number}">Step ${s.number}: <span>${e(s.title)}</span></h3>${commands(s.commands, 'type')}`,
    ),
    '</section>',
  ].join('\n');
}

function stepHtml(step: HandoutStep, h: Handout, idPrefix: string): string {
  const out: string[] = [
    `<section class="step" id="${e(idPrefix)}step-${step.number}" data-step="${step.number}">`,
    `<h2>Step ${step.number}: ${e(step.title)}</h2>`,
  ];
  if (step.teaches) out.push(`<p class="teaches">${withCitations(step.teaches, idPrefix)}</p>`);
  if (step.questions.length) {
    out.push('<h3>Questions and answers</h3><ol class="questions answers">');
    for (const q of step.questions) {
      out.push(
        `<li><p class="ask">${e(q.ask)}</p><p class="answer"><strong>Answer:</strong> ${e(q.answer)}</p>${q.observed ? `<div class="observed"><span class="muted">observed in run <code>${e(h.report?.runId ?? '')}</code> (${e(q.observed.description)}):</span>${evidenceTable(q.observed.observed)}</div>` : ''}</li>`,
      );
    }
    out.push('</ol>');
  }
  if (step.watch.length)
    out.push(
      '<h3>Watch</h3><p>Start in another terminal before the traffic; stop with Ctrl-C.</p>',
      commands(step.watch, 'watch'),
    );
  if (step.commands.length) out.push('<h3>Type</h3>', commands(step.commands, 'type'));
  if (step.traffic.length) out.push('<h3>Send</h3>', commands(step.traffic, 'send'));
  if (step.look.length) out.push('<h3>Look</h3>', commands(step.look, 'look'));
  for (const picture of stepPictures(h.lab, step, idPrefix)) {
    const observed = !picture.packets.some((p) => p.expected);
    out.push(
      `<figure class="hooks" data-node="${e(picture.node)}">`,
      hookPictureSvg(picture),
      `<figcaption>${observed ? `The path of each packet traced in ${e(picture.node)} in run ${e(h.report?.runId ?? '')}` : `The path the lab expects in ${e(picture.node)} (made without a run)`}:<ol>${picture.packets.map((p) => `<li>${e(p.label)}: ${e(pathWords(p))}</li>`).join('')}</ol></figcaption></figure>`,
    );
  }
  if (step.expect.length || step.evidence?.commandFailures.length) {
    out.push(
      `<h3>What to expect${step.evidence ? ` <span>— and what run <code>${e(h.report!.runId)}</code> observed</span>` : ''}</h3><ul class="expect">`,
    );
    for (const f of step.evidence?.commandFailures ?? []) out.push(checkItem(f.description, f));
    for (const x of step.expect) out.push(checkItem(x.description, x.evidence));
    out.push('</ul>');
  }
  if (step.evidence) {
    const ev = step.evidence;
    const lines = ev.commands.flatMap((c) => [
      ...wrapCommand(`$ ${c.display}`),
      ...(c.output ? c.output.split('\n') : []),
      ...(c.exitCode !== null && c.exitCode !== 0 ? [`(exit status ${c.exitCode})`] : []),
    ]);
    out.push(
      `<h3>Commands and output in that run <span class="status-${e(ev.status)}">(step ${e(ev.status)}, ${e(duration(ev.durationMs))})</span></h3>`,
    );
    out.push(`<pre class="output"><code>${lines.map(e).join('\n')}</code></pre>`);
  } else {
    out.push(
      `<p class="noevidence">Evidence: ${h.report ? 'the run did not reach this step.' : 'none (made without a run).'}</p>`,
    );
  }
  out.push('</section>');
  return out.join('\n');
}

function checkItem(
  description: string,
  evidence: { status: string; expected: unknown; observed: unknown; reason?: string } | undefined,
): string {
  if (!evidence) return `<li class="expected"><span class="description">${e(description)}</span></li>`;
  const word = evidence.status === 'met' ? 'met' : evidence.status === 'skipped' ? 'skipped' : 'not met';
  return (
    `<li class="${e(evidence.status)}" data-status="${e(evidence.status)}"><span class="verdict ${e(evidence.status)}">${word}</span><span class="description">${e(description)}</span>` +
    (evidence.reason && evidence.status !== 'met' ? `<div class="reason">${e(evidence.reason)}</div>` : '') +
    `<div class="sides"><div><span>expected</span>${evidenceTable(evidence.expected)}</div>` +
    `<div><span>observed</span>${evidenceTable(evidence.observed)}</div></div></li>`
  );
}

/** Expected or observed values as a small table: a row per field, lists as lists, paths as hops. */
function evidenceTable(value: unknown): string {
  const rows = evidenceRows(value).map((row) => {
    const cell =
      'text' in row
        ? e(row.text)
        : 'lines' in row
          ? `<ul>${row.lines.map((l) => `<li><code>${e(l)}</code></li>`).join('')}${row.more ? `<li>… and ${e(String(row.more))} more</li>` : ''}</ul>`
          : row.paths
              .map(
                (p, i) =>
                  `<div>packet ${i + 1}:</div><ol class="hops">${p.map((hop) => `<li>${e(hop)}</li>`).join('') || '<li>(no hop)</li>'}</ol>`,
              )
              .join('');
    return `<tr>${row.label ? `<th>${e(row.label)}</th><td>` : '<td colspan="2">'}${cell}</td></tr>`;
  });
  return `<table class="ev">${rows.join('')}</table>`;
}

/** Text with its kernel-fact citations linked to the facts printed at the end of the handout. */
function withCitations(text: string, idPrefix: string): string {
  return splitCitations(text)
    .map((p) => ('fact' in p ? `<a class="fact" href="#${idPrefix}${factAnchor(p.fact)}">${e(p.fact)}</a>` : e(p.text)))
    .join('');
}

/** Every kernel fact the handout cites, in full: the reader has the handout, not the repository. */
function factsHtml(h: Handout, idPrefix: string): string {
  const ids = citedFacts(h.steps.flatMap((s) => (s.teaches ? [s.teaches] : [])));
  if (ids.length === 0) return '';
  const items = ids.map(
    (id) =>
      `<dt id="${idPrefix}${factAnchor(id)}">${e(id)}: ${e(KERNEL_FACTS[id]!.title)}</dt><dd>${e(KERNEL_FACTS[id]!.text)}</dd>`,
  );
  return `<section class="facts"><h2>Kernel facts cited</h2><dl class="facts">${items.join('')}</dl><p class="muted">The full list, with how each was observed: <code>${FACTS_DOC}</code> in nflab.</p></section>`;
}
