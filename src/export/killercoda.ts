// `nflab export <lab> --format killercoda`: a Killercoda scenario of a lab. index.json lists an
// intro, a step per lab step and a finish; the intro's background script builds the lab (the
// exported script's build, kept when it ends), each step's `verify` script sends the step's
// traffic and judges its checks with the exported bash library (exit 0 only when every check
// passes), and the step texts are the student edition of the handout with `{{exec}}` commands.
// Namespaces carry the lab's own node names there (the platform's machine is the student's own),
// so the commands in the text work as typed.
import type { Lab } from '../lab/types.ts';
import { quoteWord as q } from '../exec/quote.ts';
import { buildHandout, type HandoutStep } from '../handout/model.ts';
import { describeTopology } from '../handout/diagram-svg.ts';
import { mdFence, mdText, mdUrl, safeUrl } from '../handout/escape.ts';
import { exportPieces } from './bash.ts';

export interface ScenarioFile {
  /** Path inside the scenario directory. */
  path: string;
  content: string;
  executable?: boolean;
}

/** The Debian/Ubuntu packages of the tools the exported scripts call. */
const PACKAGES = 'iproute2 iptables tcpdump conntrack iputils-ping socat procps util-linux gawk';
const TOOLS = 'ip bridge iptables iptables-save tcpdump conntrack ping socat sysctl awk sed grep paste mktemp';

/** Every file of the scenario, index.json first. */
export function killercodaScenario(lab: Lab): ScenarioFile[] {
  const pieces = exportPieces(lab, 'netns');
  const h = buildHandout(lab, 'netns', undefined, 'student');
  const nodes = pieces.nodes();
  const attach = nodes.map((n) => `attach_ns ${q(n)}`);
  const script = (what: string, body: string[]): string =>
    [
      '#!/usr/bin/env bash',
      '# shellcheck disable=SC2034 # VTMP of the library: only the build uses it',
      `# Lab ${lab.id} (${lab.title.replace(/\n/g, ' ')}): ${what}. Exported by nflab for Killercoda.`,
      "# Node names are the lab's own (NFLAB_NODE_NAMES=plain); set NFLAB_NODE_NAMES=prefixed and",
      '# NFLAB_PREFIX to build it under $NFLAB_PREFIX-<node> instead (the same in every script).',
      'export NFLAB_NODE_NAMES="${NFLAB_NODE_NAMES:-plain}"',
      'export NFLAB_PREFIX="${NFLAB_PREFIX:-nflab}"',
      'NFLAB_READY="${NFLAB_READY:-/tmp/nflab-lab-ready}"',
      pieces.library,
      ...body,
      '',
    ].join('\n');

  const files: ScenarioFile[] = [];
  const steps = lab.steps.map((step, i) => ({
    title: step.title,
    text: `step${i + 1}/text.md`,
    verify: `step${i + 1}/verify.sh`,
  }));
  const index = {
    title: `Lab ${lab.id}: ${lab.title}`,
    description: lab.summary,
    details: {
      intro: {
        title: `Lab ${lab.id}`,
        text: 'intro/text.md',
        background: 'intro/background.sh',
        foreground: 'intro/foreground.sh',
      },
      steps,
      finish: { title: 'Done', text: 'finish/text.md' },
    },
    backend: { imageid: 'ubuntu' },
  };
  files.push({ path: 'index.json', content: `${JSON.stringify(index, null, 2)}\n` });

  // The intro builds the lab in the background; the foreground waits until it is ready.
  const install = [
    '# The tools the lab needs, from the distribution, only when one is missing.',
    `for tool in ${TOOLS}; do command -v "$tool" >/dev/null 2>&1 || { need_tools=1; break; }; done`,
    `if [ -n "\${need_tools:-}" ] && command -v apt-get >/dev/null 2>&1; then DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${PACKAGES} >/dev/null; fi`,
  ];
  files.push({
    path: 'intro/background.sh',
    executable: true,
    content: script('builds the lab and keeps it', [
      'rm -f "$NFLAB_READY"',
      ...install,
      pieces.build(),
      '# Built: keep it (the steps work on it); the ready file tells the foreground.',
      'nflab_keep',
      'touch "$NFLAB_READY"',
    ]),
  });
  files.push({
    path: 'intro/foreground.sh',
    executable: true,
    content: [
      '#!/usr/bin/env bash',
      'NFLAB_READY="${NFLAB_READY:-/tmp/nflab-lab-ready}"',
      `echo ${q(`Building lab ${lab.id}…`)}`,
      'for _ in $(seq 1 600); do [ -f "$NFLAB_READY" ] && break; sleep 1; done',
      '[ -f "$NFLAB_READY" ] && echo "The lab is ready." || echo "The lab is not built yet: see /var/log/killercoda or run intro/background.sh by hand."',
      '',
    ].join('\n'),
  });
  files.push({ path: 'intro/text.md', content: introMarkdown(lab, h.build.length) });

  h.steps.forEach((step, i) => {
    files.push({ path: `step${i + 1}/text.md`, content: stepMarkdown(step) });
    files.push({
      path: `step${i + 1}/verify.sh`,
      executable: true,
      content: script(`verifies step ${i + 1}: sends its traffic, judges its checks (exit 0 when all pass)`, [
        `nflab_preflight ${TOOLS}`,
        ...attach,
        pieces.checks(i),
        pieces.footer(),
      ]),
    });
    // Not part of the platform's format: what a teacher (or a test) runs to apply a step.
    files.push({
      path: `step${i + 1}/solution.sh`,
      executable: true,
      content: script(`applies step ${i + 1}'s commands`, [
        `nflab_preflight ${TOOLS}`,
        ...attach,
        pieces.commands(i),
        pieces.footer(),
      ]),
    });
  });
  files.push({
    path: 'finish/text.md',
    content: `# Done\n\nYou worked through every step of lab ${mdText(lab.id)}. The answers to the questions are in the teacher's edition of the handout (\`nflab handout ${mdText(lab.id)} --edition teacher\`).\n`,
  });
  files.push({
    path: 'reset.sh',
    executable: true,
    content: script('removes the lab (run intro/background.sh again to start over)', [
      ...nodes.map((n) => `NS[${n}]=$(ns_name ${q(n)}); CREATED_NS+=("\${NS[${n}]}")`),
      'rm -f "$NFLAB_READY"',
    ]),
  });
  return files;
}

function introMarkdown(lab: Lab, buildCommands: number): string {
  const url = safeUrl(lab.source.url);
  return [
    `# Lab ${mdText(lab.id)}: ${mdText(lab.title)}`,
    '',
    mdText(lab.summary),
    '',
    `**Topology:** ${mdText(describeTopology(lab))}`,
    '',
    `**Source:** ${url ? `[${mdText(lab.source.title)}](${mdUrl(url)})` : mdText(lab.source.title)}`,
    '',
    `The lab is being built in the background (${buildCommands} commands): every node is a network namespace named after it, so \`ip netns exec c1 …\` runs a command in node c1. Wait until the terminal says the lab is ready.`,
    '',
    'Each step asks you to predict what the kernel will do, shows the commands to observe it with, and hides the fix under "Hint". **Check** runs the step\'s checks on your lab.',
    '',
  ].join('\n');
}

/** One step: the student edition, its commands runnable with a click. */
function stepMarkdown(step: HandoutStep): string {
  // A fenced block per command, the fence's end marked {{exec}} (click to run) or {{copy}}.
  const exec = (lines: string[], how = '{{exec}}') =>
    lines.flatMap((l) => {
      const f = mdFence([l], '');
      f[f.length - 1] += how;
      return [...f, ''];
    });
  const out: string[] = [`# Step ${step.number}: ${mdText(step.title)}`, ''];
  if (step.questions.length > 0) {
    out.push('**Predict** before you send anything:', '');
    step.questions.forEach((qn, i) => out.push(`${i + 1}. ${mdText(qn.ask)}`));
    out.push('');
  }
  if (step.watch.length > 0)
    out.push('Watch, in a second terminal (stop with Ctrl-C):', '', ...exec(step.watch, '{{copy}}'));
  if (step.commands.length > 0)
    out.push(
      '<details><summary>Hint: the commands of this step (try first without)</summary>',
      '',
      ...exec(step.commands),
      '</details>',
      '',
    );
  if (step.traffic.length > 0) out.push('Send:', '', ...exec(step.traffic));
  if (step.look.length > 0) out.push('Look:', '', ...exec(step.look));
  out.push(
    "Then press **Check**: it sends the step's traffic and judges what the kernel did, as `nflab check` does.",
    '',
  );
  return out.join('\n');
}
