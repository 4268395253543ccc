// The repository stands on its own: no tracked file points at the design notes or lab corpus that
// lived outside it. What the code and handouts cite is in docs/ (kernel-facts.md, labs.md, design.md).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { KERNEL_FACTS } from '../../src/handout/citations.ts';

// Spelled in pieces so this file does not match itself.
const FORBIDDEN = ['../' + 'shared', 'labs' + '-spec', 'DESIGN' + '.md'];

test('no tracked file mentions the shared folder outside the repository, the old lab corpus or the old design notes', (t) => {
  const files = execFileSync('git', ['ls-files', '-z'], { encoding: 'utf8' }).split('\0').filter(Boolean);
  t.true(files.length > 50, 'git ls-files lists the repository');
  const hits: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    } // a file deleted in the work tree
    text.split('\n').forEach((line, i) => {
      for (const word of FORBIDDEN) if (line.includes(word)) hits.push(`${file}:${i + 1}: ${word}`);
    });
  }
  t.deepEqual(hits, []);
});

test('every kernel fact a handout can print has its section in docs/kernel-facts.md', (t) => {
  const doc = readFileSync('docs/kernel-facts.md', 'utf8');
  for (const id of Object.keys(KERNEL_FACTS)) t.true(doc.includes(`<a id="${id.toLowerCase()}"></a>\n## ${id}: `), id);
});

test('every docs/labs.md or docs/kernel-facts.md anchor the code cites exists', (t) => {
  const files = execFileSync('git', ['ls-files', '-z', 'src', 'labs', 'test', 'scripts', 'README.md', 'docs'], {
    encoding: 'utf8',
  })
    .split('\0')
    .filter(Boolean);
  const anchors = (doc: string) =>
    new Set([...readFileSync(doc, 'utf8').matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1]!));
  const known: Record<string, Set<string>> = {
    'labs.md': anchors('docs/labs.md'),
    'kernel-facts.md': anchors('docs/kernel-facts.md'),
    'design.md': anchors('docs/design.md'),
  };
  const missing: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const m of text.matchAll(/(labs\.md|kernel-facts\.md|design\.md)#([a-z0-9-]+)/g))
      if (!known[m[1]!]!.has(m[2]!)) missing.push(`${file}: ${m[0]}`);
  }
  t.deepEqual(missing, []);
});
