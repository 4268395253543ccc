// Handouts as a reader gets them: every lab's HTML handout opened in real headless Chromium, with
// no request to any other host, the topology drawn, and every command of every step on the page;
// evidence from a real run; a PDF printed by Chromium.
import { joinContinuations } from '../src/handout/wrap-command.ts';
import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { nflab, REPO, jsonOf } from './helpers/system.ts';
import { launchChromium, type Browser } from '../src/handout/pdf.ts';
import { loadAllLabs } from '../src/resolve/load.ts';
import { handoutSlug } from '../src/handout/model.ts';
import { commandDisplay, displayCommand } from '../src/exec/display.ts';
import { stepTraffic } from '../src/check/step-needs.ts';
import { pingArgv, tcpArgv } from '../src/traffic/run.ts';
import type { DriverKind, Lab } from '../src/lab/types.ts';
import type { RunReport } from '../src/report/types.ts';

const ARTIFACTS = join(REPO, 'test', 'artifacts');
const dir = mkdtempSync(join(tmpdir(), 'nflab-handout-test-'));
let browser: Browser;

test.before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await launchChromium();
});
test.after.always(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The commands of a step as a person types them, computed from the lab itself (as `nflab show` does). */
function stepCommands(lab: Lab, index: number, driver: DriverKind): string[] {
  const kindOf = (node: string) =>
    lab.topology.nodes[node]!.role === 'container' ? (lab.topology.nodes[node]!.driver ?? driver) : 'netns';
  const step = lab.steps[index]!;
  return [
    ...(step.run ?? []).map((c) => commandDisplay(c, kindOf(c.node))),
    ...stepTraffic(step).map((t) =>
      displayCommand(kindOf(t.from), t.from, t.kind === 'ping' ? pingArgv(t) : tcpArgv(t)),
    ),
  ];
}

/** Opens a file in Chromium and records every request the page makes. */
async function open(file: string) {
  const page = await browser.context.newPage();
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  return { page, requests };
}

const onlyItself = (requests: string[], file: string) =>
  requests.filter((u) => u !== pathToFileURL(file).href && !u.startsWith('data:'));

test.serial(
  "every lab's HTML handout renders in Chromium from itself alone, with the diagram and every step's commands",
  async (t) => {
    const out = join(dir, 'all');
    const r = await nflab(['handout', '--all', '--format', 'html', '--out', out]);
    t.is(r.code, 0, r.stderr);
    const labs = await loadAllLabs();
    t.true(labs.length >= 3);
    for (const lab of labs) {
      const file = join(out, `${handoutSlug(lab)}.html`);
      t.true(existsSync(file), file);
      const { page, requests } = await open(file);
      t.deepEqual(onlyItself(requests, file), [], `lab ${lab.id} requested another host`);
      t.true(requests.length >= 1);

      // The diagram: one box per node, one line per veth pair, each bridge inside its node's box.
      const svg = page.locator('section.topology svg.topology');
      t.is(await svg.count(), 1, `lab ${lab.id}: one topology diagram`);
      for (const node of Object.keys(lab.topology.nodes))
        t.is(await svg.locator(`g.node[data-node="${node}"]`).count(), 1, `lab ${lab.id}: node ${node} drawn`);
      t.is(await svg.locator('.link').count(), lab.topology.links.length, `lab ${lab.id}: every veth pair drawn`);
      for (const bridge of Object.keys(lab.topology.bridges ?? {}))
        t.is(await svg.locator(`g.bridge[data-bridge="${bridge}"]`).count(), 1);
      const diagramText = (await svg.textContent()) ?? '';
      for (const link of lab.topology.links) {
        for (const end of [link.a, link.b])
          for (const cidr of end.addresses ?? [])
            t.true(diagramText.includes(cidr), `lab ${lab.id}: address ${cidr} labelled`);
      }
      const box = await svg.boundingBox();
      t.truthy(box && box.width > 200 && box.height > 100, `lab ${lab.id}: the diagram has a size`);

      // Every step, with the exact commands a person types.
      t.is(await page.locator('section.step').count(), lab.steps.length);
      for (let i = 0; i < lab.steps.length; i++) {
        const section = page.locator(`section.step[data-step="${i + 1}"]`);
        const text = joinContinuations((await section.innerText()).split('\n')).join('\n'); // long commands are wrapped with `\`
        t.true(text.includes(lab.steps[i]!.title), `lab ${lab.id} step ${i + 1} title`);
        for (const command of stepCommands(lab, i, 'netns'))
          t.true(text.includes(command), `lab ${lab.id} step ${i + 1}: ${command}`);
      }
      t.regex(await page.locator('.banner').innerText(), /made without a run: no evidence/);
      if (lab.id === '02' || lab === labs[0])
        await page.screenshot({ path: join(ARTIFACTS, `handout-${lab.id}.png`), fullPage: true });
      await page.close();
    }

    // The index: every lab, its handout, its last verdict (none: no run).
    const index = join(out, 'index.html');
    const { page, requests } = await open(index);
    t.deepEqual(onlyItself(requests, index), []);
    t.is(await page.locator('tr[data-lab]').count(), labs.length);
    for (const lab of labs) {
      const row = page.locator(`tr[data-lab="${lab.id}"]`);
      t.is(await row.locator(`a[href="${handoutSlug(lab)}.html"]`).count(), 2);
      t.regex(await row.innerText(), /not run/);
    }
    await page.close();
  },
);

test.serial(
  "a handout made with --run shows that run's evidence: every check met with what was observed",
  async (t) => {
    const out = join(dir, 'run');
    const r = await nflab(['handout', '01', '--run', '--format', 'html', '--out', out]);
    t.is(r.code, 0, r.stderr);
    const [lab] = (await loadAllLabs()).filter((l) => l.id === '01');
    const file = join(out, `${handoutSlug(lab!)}.html`);
    const { page, requests } = await open(file);
    t.deepEqual(onlyItself(requests, file), []);
    const checks = lab!.steps.reduce((n, s) => n + (s.expect ?? []).length, 0);
    t.is(await page.locator('ul.expect li[data-status="met"]').count(), checks);
    t.is(await page.locator('ul.expect li[data-status="not-met"]').count(), 0);
    t.is(await page.locator('.banner').count(), 0);
    // Step 1's evidence: the echo request captured on veth0, and ping's own output.
    const step1 = await page.locator('section.step[data-step="1"]').innerText();
    t.regex(step1, /IP 10\.55\.66\.2 > 10\.55\.66\.3: ICMP echo request/);
    t.regex(step1, /1 packets transmitted, 0 received/);
    t.regex(await page.locator('dl.meta').innerText(), /passed: \d+ of \d+ checks met/);
    await page.screenshot({ path: join(ARTIFACTS, 'handout-01-run.png'), fullPage: true });
    await page.close();
  },
);

test.serial(
  '--from-run: a saved run report is the evidence, in Markdown with the SVG beside it; a check not met is shown as not met',
  async (t) => {
    const run = await nflab(['run', '02', '--json']);
    t.is(run.code, 0, run.stderr);
    const report = jsonOf(run) as RunReport;
    const saved = join(dir, 'run-02.json');
    writeFileSync(saved, run.stdout);
    const out = join(dir, 'md');
    const r = await nflab(['handout', '02', '--from-run', saved, '--format', 'md', '--out', out]);
    t.is(r.code, 0, r.stderr);
    const lab = (await loadAllLabs()).find((l) => l.id === '02')!;
    const md = readFileSync(join(out, `${handoutSlug(lab)}.md`), 'utf8');
    t.true(md.includes(`![Topology of lab 02](${handoutSlug(lab)}.svg)`));
    t.regex(
      readFileSync(join(out, `${handoutSlug(lab)}.svg`), 'utf8'),
      /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/,
    );
    t.true(md.includes(`run ${report.labs[0]!.runId}`));
    t.false(md.includes('made without a run'));
    t.is(
      md.split('\n').filter((l) => l.startsWith('- **met:**')).length,
      report.labs[0]!.steps.flatMap((s) => s.checks).length,
    );
    for (let i = 0; i < lab.steps.length; i++) for (const c of stepCommands(lab, i, 'netns')) t.true(md.includes(c), c);

    // The same report with one verdict turned: the handout must say so, not hide it.
    const turned = structuredClone(report);
    turned.labs[0]!.steps[3]!.checks[0]!.status = 'not-met';
    turned.labs[0]!.status = 'failed';
    writeFileSync(saved, JSON.stringify(turned));
    const html = join(dir, 'turned');
    t.is((await nflab(['handout', '02', '--from-run', saved, '--format', 'html', '--out', html])).code, 0);
    const { page } = await open(join(html, `${handoutSlug(lab)}.html`));
    const notMet = page.locator('ul.expect li[data-status="not-met"]');
    t.is(await notMet.count(), 1);
    t.regex(await notMet.innerText(), /not met[\s\S]*expected[\s\S]*observed/);
    t.is(await page.locator('section.step[data-step="4"] ul.expect li[data-status="not-met"]').count(), 1);
    await page.close();
  },
);

test.serial('the PDF handout is a PDF with pages, printed by Chromium', async (t) => {
  const out = join(dir, 'pdf');
  const r = await nflab(['handout', '02', '--format', 'pdf', '--out', out]);
  t.is(r.code, 0, r.stderr);
  const lab = (await loadAllLabs()).find((l) => l.id === '02')!;
  const pdf = readFileSync(join(out, `${handoutSlug(lab)}.pdf`));
  t.is(pdf.subarray(0, 5).toString('latin1'), '%PDF-');
  t.regex(pdf.subarray(-64).toString('latin1'), /%%EOF\s*$/);
  const pages = pdf.toString('latin1').match(/\/Type\s*\/Page(?![a-z])/g) ?? [];
  t.true(pages.length >= 3, `${pages.length} pages`);
});

test('handout without --out or labs is a usage error; --help documents it', async (t) => {
  const none = await nflab(['handout', '--out', join(dir, 'x')]);
  t.is(none.code, 2);
  t.regex(none.stderr, /name the labs/);
  const help = await nflab(['handout', '--help']);
  t.is(help.code, 0);
  for (const word of ['--format', '--from-run', '--run', '--all', '--nodes']) t.true(help.stdout.includes(word), word);
});
