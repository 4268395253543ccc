// Lab 04 (ClusterIP, 150 connections a step): `nflab check` gives the same verdicts three times,
// after `trace` and after connections opened by hand, because conntrack checks count only the
// entries their own flows made (the issue observed 159, then 608 entries against 150 expected).
import test from 'ava';
import { repeatability } from './helpers/repeat.ts';

const VIP = '10.98.51.150';
const connect = ['socat', '-T', '1', '-', `TCP:${VIP}:80,connect-timeout=2`];

for (let n = 1; n <= 5; n++)
  test(`lab 04 step ${n}: checks the same three times, after trace, and after seven connections by hand`, async (t) => {
    await repeatability(t, '04', n, [
      ...Array.from({ length: 7 }, () => ['pc', connect] as [string, string[]]),
      ['node', connect],
    ]);
  });
