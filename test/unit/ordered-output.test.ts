// Output of labs run at once is printed in lab order, each lab's text together (nflab run --jobs).
import test from 'ava';
import { orderedOutput } from '../../src/report/ordered-output.ts';

test('the first lab writes through; later labs are held until every lab before them is done', (t) => {
  const printed: string[] = [];
  const out = orderedOutput({ write: (s: string) => printed.push(s) }, 3);
  const [a, b, c] = [out.sink(0), out.sink(1), out.sink(2)];
  c.write('c1 ');
  b.write('b1 ');
  a.write('a1 ');
  t.deepEqual(printed, ['a1 '], 'only the first lab is printed while it runs');
  c.write('c2 ');
  out.done(2);
  t.deepEqual(printed, ['a1 '], 'a finished later lab waits for the ones before it');
  a.write('a2 ');
  out.done(0);
  t.deepEqual(
    printed,
    ['a1 ', 'a2 ', 'b1 '],
    "the next lab's held text follows the first lab's, and it now writes through",
  );
  b.write('b2 ');
  t.deepEqual(printed.join(''), 'a1 a2 b1 b2 ');
  out.done(1);
  t.is(printed.join(''), 'a1 a2 b1 b2 c1 c2 ', 'the third lab, finished earlier, is printed whole at the end');
});

test('a lab that ends without writing does not hold back the next one', (t) => {
  const printed: string[] = [];
  const out = orderedOutput({ write: (s: string) => printed.push(s), isTTY: true }, 2);
  t.true(out.sink(1).isTTY, "the sinks report the stream's TTY-ness (colours)");
  out.sink(1).write('b');
  out.done(0);
  t.deepEqual(printed, ['b']);
});

test('flush prints what labs that never finished left, in lab order', (t) => {
  const printed: string[] = [];
  const out = orderedOutput({ write: (s: string) => printed.push(s) }, 3);
  out.sink(2).write('c ');
  out.sink(1).write('b ');
  t.deepEqual(printed, []);
  out.flush();
  t.is(printed.join(''), 'b c ');
});
