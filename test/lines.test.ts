// lineSplitter: lines from a stream of chunks, whatever the chunk boundaries.
import test from 'ava';
import { lineSplitter } from '../src/exec/lines.ts';

function linesOf(chunks: Array<Buffer | string>): string[] {
  const lines: string[] = [];
  const feed = lineSplitter((line) => lines.push(line));
  for (const chunk of chunks) feed(chunk);
  return lines;
}

test('a multi-byte UTF-8 character split across two chunks comes out whole', (t) => {
  const bytes = Buffer.from('café → ok\n', 'utf8');
  const split = bytes.indexOf(Buffer.from('é')) + 1; // inside é's two bytes
  t.deepEqual(linesOf([bytes.subarray(0, split), bytes.subarray(split)]), ['café → ok']);
});

test('every split point of 2-, 3- and 4-byte characters gives the same lines', (t) => {
  const text = 'é ↔ 🐧 ü\nzweite Zeile ✓\n';
  const bytes = Buffer.from(text, 'utf8');
  for (let a = 0; a <= bytes.length; a++) {
    for (let b = a; b <= bytes.length; b++) {
      const got = linesOf([bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)]);
      t.deepEqual(got, ['é ↔ 🐧 ü', 'zweite Zeile ✓'], `split at ${a} and ${b}`);
    }
  }
});

test('one byte at a time, and string chunks, still give whole lines', (t) => {
  const bytes = Buffer.from('🐧🐧\nend\n', 'utf8');
  t.deepEqual(linesOf([...bytes].map((b) => Buffer.from([b]))), ['🐧🐧', 'end']);
  t.deepEqual(linesOf(['a', 'b\nc', '\n']), ['ab', 'c']);
});
