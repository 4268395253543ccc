// Questions on a step are validated like every lab field, and the escapes handouts use keep lab
// text literal: Markdown escapes, code spans and fences longer than anything inside, http(s) links.
import test from 'ava';
import { loadAllLabs } from '../../src/resolve/load.ts';
import { validateLab } from '../../src/resolve/validate-lab.ts';
import { mdCode, mdFence, mdText, mdUrl, safeUrl } from '../../src/handout/escape.ts';
import { buildHandout } from '../../src/handout/model.ts';
import type { Lab } from '../../src/lab/types.ts';

const lab02 = (await loadAllLabs()).find((l) => l.id === '02')!;
const withQuestions = (questions: unknown): unknown => ({
  ...lab02,
  steps: lab02.steps.map((s, i) => (i === 2 ? { ...s, questions } : s)),
});

test('a question names its fields: observedIn out of range, an empty answer, a typo', (t) => {
  t.notThrows(() => validateLab(withQuestions([{ ask: 'which source?', answer: '10.55.66.2', observedIn: 1 }])));
  t.throws(() => validateLab(withQuestions([{ ask: 'which source?', answer: 'x', observedIn: 9 }])), {
    message: /step 3 .*questions\[0\]: field "observedIn" must be the index of one of the step's 4 checks/,
  });
  t.throws(() => validateLab(withQuestions([{ ask: 'which source?', answer: ' ' }])), {
    message: /questions\[0\]: field "answer" must be a non-empty string/,
  });
  t.throws(() => validateLab(withQuestions([{ ask: 'which source?', anwser: 'x' }])), {
    message: /questions\[0\]\.anwser.*did you mean answer/,
  });
});

test('the handout model carries the questions; the observed evidence only from a verdict on the named check', (t) => {
  const h = buildHandout(lab02 as Lab, 'netns', undefined, 'student');
  t.is(h.edition, 'student');
  t.deepEqual(
    h.steps[2]!.questions.map((q) => q.observed),
    [undefined],
  );
  t.true(h.steps[2]!.questions[0]!.ask.includes('source address'));
});

test('Markdown escapes: no markup, no block start, one line; code spans and fences outlast the backticks inside', (t) => {
  t.is(
    mdText('<script>x</script> *a* [l](javascript:x) `c` &amp;'),
    '\\<script\\>x\\</script\\> \\*a\\* \\[l\\](javascript:x) \\`c\\` \\&amp;',
  );
  t.is(mdText('# h\n- item'), '\\# h - item');
  t.is(mdText('1. one'), '1\\. one');
  t.is(mdCode('a`b'), '`` a`b ``');
  t.deepEqual(mdFence(['x', '````', 'y']), ['`````sh', 'x', '````', 'y', '`````']);
  t.deepEqual(mdFence(['plain']), ['```sh', 'plain', '```']);
  t.is(mdUrl('https://e.example/a(b)'), 'https://e.example/a%28b%29');
});

test('links: http(s) only', (t) => {
  t.is(safeUrl('https://www.hwchiu.com/x'), 'https://www.hwchiu.com/x');
  for (const bad of [
    'javascript:alert(1)',
    ' JaVaScRiPt:alert(1)',
    'data:text/html,<b>',
    'file:///etc/passwd',
    'not a url',
    undefined,
  ])
    t.is(safeUrl(bad), undefined, String(bad));
});
