// The two editions of a handout, printed and read back with pdftotext: the student's worksheet asks
// every question of the lab and prints none of the answers (nor expectations, nor evidence); the
// teacher's answer key prints every answer and, from a saved run (--from-run), what that run
// observed. And hostile lab text stays text in Markdown, HTML and PDF: no tag, script, handler or
// link of a lab's making survives, only http(s) links, and fences stay closed around stdin.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, jsonOf, nflab } from './helpers/system.ts';
import { loadAllLabs } from '../src/resolve/load.ts';
import { launchChromium } from '../src/handout/pdf.ts';

const LABS = (await loadAllLabs()).filter((l) => ['02', '04', '11'].includes(l.id));
const HOSTILE = join(REPO, 'test/fixtures/hostile-lab.ts');
const dir = mkdtempSync(join(tmpdir(), 'nflab-editions-test-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** A PDF's text as one line of single spaces (pdftotext breaks lines where the page did). */
const pdfText = (file: string) =>
  execFileSync('pdftotext', [file, '-'], { encoding: 'utf8', maxBuffer: 64 << 20 }).replace(/\s+/g, ' ');
const flat = (s: string) => s.replace(/\s+/g, ' ');

test.serial(
  "student PDFs ask every question and print no answer; teacher PDFs print every answer and the run's observation",
  async (t) => {
    // A real run of lab 02 is the evidence (--from-run); 04 and 11 are printed without a run.
    const ran = await nflab(['run', '02', '--json']);
    t.is(ran.code, 0, ran.stderr);
    const runFile = join(dir, 'run02.json');
    writeFileSync(runFile, ran.stdout);
    const runId = jsonOf(ran).labs[0].runId as string;
    for (const edition of ['student', 'teacher']) {
      // The run has lab 02 only: 04 and 11 come out without evidence (said on stderr).
      const r = await nflab([
        'handout',
        '02',
        '04',
        '11',
        '--edition',
        edition,
        '--format',
        'pdf',
        '--out',
        join(dir, edition),
        '--from-run',
        runFile,
      ]);
      t.is(r.code, 0, r.stderr);
    }
    let questions = 0;
    for (const lab of LABS) {
      const slug = lab.file!.split('/').pop()!.replace(/\.ts$/, '');
      const student = pdfText(join(dir, 'student', `${slug}.student.pdf`));
      const teacher = pdfText(join(dir, 'teacher', `${slug}.pdf`));
      const asked = lab.steps.flatMap((s) => s.questions ?? []);
      t.true(asked.length > 0, `lab ${lab.id} asks questions`);
      for (const q of asked) {
        questions++;
        t.true(student.includes(flat(q.ask)), `student edition of ${lab.id} asks: ${q.ask}`);
        t.false(student.includes(flat(q.answer)), `student edition of ${lab.id} must not answer: ${q.answer}`);
        t.true(
          teacher.includes(flat(q.ask)) && teacher.includes(flat(q.answer)),
          `teacher edition of ${lab.id} answers: ${q.answer}`,
        );
      }
      t.false(
        /Answer:|observed in run|What to expect|Evidence:/.test(student),
        `student edition of ${lab.id}: no answers, expectations or evidence`,
      );
      for (const s of lab.steps)
        if (s.teaches)
          t.false(
            student.includes(flat(s.teaches).slice(0, 60)),
            `student edition of ${lab.id} keeps the explanations for the teacher`,
          );
      t.true(student.includes(`nflab check ${lab.id} --step 1`), 'each step says how to check it');
      t.regex(student, /Solutions/, 'the fixes are on a solutions page');
      if (lab.id === '02')
        t.true(
          teacher.includes(`observed in run ${runId}`),
          "the teacher edition shows the run's observation for the questions",
        );
    }
    t.log(`${questions} questions checked in ${LABS.length} labs`);
  },
);

test.serial('hostile lab text stays text: Markdown, HTML and PDF, both editions', async (t) => {
  const ran = await nflab(['run', HOSTILE, '--json']);
  t.is(ran.code, 0, ran.stderr);
  const runFile = join(dir, 'hostile.json');
  writeFileSync(runFile, ran.stdout);
  const out = join(dir, 'hostile');
  for (const edition of ['student', 'teacher']) {
    for (const format of ['md', 'html', 'pdf']) {
      const r = await nflab([
        'handout',
        HOSTILE,
        '--edition',
        edition,
        '--format',
        format,
        '--out',
        out,
        '--from-run',
        runFile,
      ]);
      t.is(r.code, 0, r.stderr);
    }
  }
  const base = join(out, 'hostile-lab');
  for (const suffix of ['', '.student']) {
    // Markdown: outside code blocks no raw `<` but nflab's own <details>/<summary>/<a id>, no link
    // but http(s), anchors and the diagram; inside, the hostile fence line cannot close its block.
    const md = readFileSync(`${base}${suffix}.md`, 'utf8');
    let fence = '';
    let hostileFenceInside = false;
    for (const line of md.split('\n')) {
      const m = /^(`{3,})/.exec(line);
      if (fence) {
        if (m && m[1]!.length >= fence.length && line.trim() === m[1]) fence = '';
        else if (line.includes('````')) hostileFenceInside = true;
        continue;
      }
      if (m) {
        fence = m[1]!;
        continue;
      }
      // Escapes, then code spans (literal in CommonMark), then nflab's own tags.
      const raw = line
        .replace(/\\./g, '')
        .replace(/(`+)[\s\S]*?[^`]\1(?!`)/g, '')
        .replace(/<\/?(details|summary)>|<a id="fact-[a-z0-9]+"><\/a>/g, '');
      t.false(/[<>]/.test(raw), `markup in Markdown${suffix}: ${line}`);
      for (const link of line.replace(/\\./g, '').matchAll(/\]\(([^)]*)\)/g))
        t.regex(link[1]!, /^(https?:|#|[\w.-]+\.svg$)/, `link target ${link[1]}`);
      t.false(
        /javascript:/i.test(line.replace(/\\./g, '')) && /\]\(/.test(line.replace(/\\./g, '')),
        'no javascript: link',
      );
    }
    if (suffix === '') t.true(hostileFenceInside, 'the stdin line of four backticks stays inside its code block');
    t.true(
      md.includes('\\<script\\>alert\\(1\\)') || md.includes('\\<script\\>alert(1)'),
      'the hostile title is printed, escaped',
    );

    // HTML, in Chromium: no element of the lab's making, no handler, links http(s) or anchors only,
    // and the text reads as the lab wrote it.
    const html = readFileSync(`${base}${suffix}.html`, 'utf8');
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      await page.route('**/*', (route) => route.abort());
      await page.setContent(html);
      const found = await page.evaluate(() => ({
        scripts: document.querySelectorAll('script, iframe, img, object, embed').length,
        handlers: [...document.querySelectorAll('*')].flatMap((el) =>
          [...el.attributes].filter((a) => /^on/i.test(a.name)).map((a) => `${el.tagName} ${a.name}`),
        ),
        links: [...document.querySelectorAll('[href], [src]')].map(
          (el) => el.getAttribute('href') ?? el.getAttribute('src') ?? '',
        ),
        text: document.body.innerText,
      }));
      t.is(found.scripts, 0, 'no script, iframe or image');
      t.deepEqual(found.handlers, [], 'no event handler');
      for (const l of found.links) t.regex(l, /^(https?:|#)/, `link ${l}`);
      t.true(
        found.text.includes('Hostile <script>alert(1)</script><img src=x onerror="alert(2)">'),
        'the title reads as written',
      );
    } finally {
      await browser.close();
    }

    // PDF: the text is there as text, and no link annotation points anywhere but http(s).
    const pdf = `${base}${suffix}.pdf`;
    t.true(pdfText(pdf).includes('<script>alert(1)</script>'), 'the PDF prints the text');
    // (The document's title, metadata, carries the lab's title as text: "javascript:" may be there.)
    const bytes = readFileSync(pdf).toString('latin1');
    for (const uri of bytes.matchAll(/\/URI\s*\(([^)]*)\)/g)) t.regex(uri[1]!, /^https?:/, `PDF link ${uri[1]}`);
    t.false(/\/(JavaScript|JS|Launch)\b/.test(bytes), 'no script or launch action in the PDF');
  }
});
