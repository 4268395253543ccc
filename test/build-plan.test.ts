// What is shown is what runs: for every numbered lab, the commands `nflab show`, the handout and
// the exported script print are the commands the engine executed (its build log and each step's
// commands and traffic), in the same order. Real runs as root on this kernel.
import test from 'ava';
import { loadAllLabs } from '../src/resolve/load.ts';
import { resolveLab } from '../src/resolve/resolve-lab.ts';
import { runLab } from '../src/engine/run-lab.ts';
import { LocalExecutor } from '../src/exec/local.ts';
import { showLab } from '../src/cli/show.ts';
import { buildHandout } from '../src/handout/model.ts';
import { exportBash } from '../src/export/bash.ts';
import type { Lab } from '../src/lab/types.ts';

const labs = (await loadAllLabs()).filter((l) => /^\d\d$/.test(l.id));

/** A shown command without its trailing `   # …` remark (counts and notes differ in wording). */
const bare = (line: string) => line.replace(/ {3}# .*$/, '').trim();

/** The lines of `nflab show` under a heading, up to the next one (without "expect:" lists). */
function section(text: string, heading: RegExp): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => heading.test(l));
  if (start < 0) return [];
  const out: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (l.startsWith('## ')) break;
    if (l.trim() === 'expect:') break;
    if (l.startsWith('  ') && l.trim() !== '') out.push(l.slice(2));
  }
  return out;
}

/** Undoes bash single-quote words as quoteWord writes them: 'it'\''s' → it's. */
function unquote(word: string): string {
  return word
    .replace(/'((?:[^']|'\\'')*)'/g, (_, inner: string) => inner.replace(/'\\''/g, "'"))
    .replace(/'\\''/g, "'");
}

/** The exported script's build listing and, per step, the commands it prints (`show '…'`). */
function exported(lab: Lab): { build: string[]; steps: string[][] } {
  const script = exportBash(lab, { driver: 'netns' }).split('\n');
  const at = script.findIndex((l) => /^indent <<'NFLAB_EOF[_0-9]*'$/.test(l));
  const marker = script[at]!.match(/<<'(.*)'/)![1]!;
  const end = script.indexOf(marker, at + 1);
  // Each step's part of the script; a shown command is one (possibly multi-line) quoted word.
  const steps = script
    .slice(end)
    .join('\n')
    .split(/^step \d+ .*$/m)
    .slice(1)
    .map((part) => [...part.matchAll(/^show ('(?:[^']|'\\'')*'|\S+)$/gm)].map((m) => unquote(m[1]!)));
  return { build: script.slice(at + 1, end), steps };
}

for (const lab of labs) {
  test(`lab ${lab.id}: show, the handout and the exported script print the commands the engine ran, in its order`, async (t) => {
    t.timeout(10 * 60_000);
    const exec = new LocalExecutor();
    const { report, buildLog } = await runLab(lab, { exec, driver: 'netns' });
    const r = resolveLab(lab, { driver: 'netns' });
    const shown = showLab(r);
    const handout = buildHandout(lab, 'netns');
    const script = exported(lab);
    // A command with its standard input (iptables-restore <<'EOF' …) is several lines.
    const lines = (items: string[]) => items.flatMap((l) => l.split('\n'));
    const ran = lines(buildLog.map((l) => l.text));
    t.true(ran.length > 0, 'the engine logged its build');
    if (report.status === 'skipped') {
      // The kernel lacks a feature (lab 12 without ip_vs): the build stopped at the probes, which
      // come before anything is configured; what ran is the start of what is shown.
      t.log(`skipped: ${report.reason}`);
      t.deepEqual(section(shown, /^## Build the topology$/).slice(0, ran.length), ran);
      t.true(
        buildLog.every((l) => l.phase === 'create nodes' || l.phase === 'probe features'),
        'nothing was configured before the probes',
      );
      return;
    }
    // What ran, not what was met, is this test's subject (the verdicts have tests of their own): a
    // check that a loaded machine failed still ran every command; a build that failed did not.
    t.true(
      report.status === 'passed' || report.status === 'failed',
      `${report.status}: ${JSON.stringify(report.reason ?? '')}`,
    );
    t.deepEqual(section(shown, /^## Build the topology$/), ran, 'show prints the build the engine ran');
    t.deepEqual(lines(handout.build), ran, 'the handout prints the build the engine ran');
    t.deepEqual(script.build, ran, 'the exported script lists the build the engine ran');
    report.steps.forEach((step, i) => {
      const commands = lines(step.commands.map((c) => c.display)).map(bare);
      t.deepEqual(
        section(shown, new RegExp(`^## Step ${i + 1}: `)).map(bare),
        commands,
        `step ${i + 1}: show prints the commands and traffic the engine ran`,
      );
      const h = handout.steps[i]!;
      t.deepEqual(lines([...h.commands, ...h.traffic]).map(bare), commands, `step ${i + 1}: the handout prints them`);
      t.deepEqual(lines(script.steps[i]!).map(bare), commands, `step ${i + 1}: the exported script prints them`);
    });
  });
}
