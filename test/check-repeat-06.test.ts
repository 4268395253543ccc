// Lab 06 (session affinity): `nflab check` gives the same verdicts three times, after `trace` and
// after traffic by hand. has() counts only xt_recent entries the check's own connections wrote;
// lacks() and empty() judge the lists as the student left them (resetting them is step 3's point),
// so the hand-made traffic here is a student's poking at the pods directly, not at the ClusterIP.
import test from 'ava';
import { repeatability } from './helpers/repeat.ts';

for (let n = 1; n <= 5; n++)
  test(`lab 06 step ${n}: checks the same three times, after trace, and after traffic to the pods by hand`, async (t) => {
    await repeatability(t, '06', n, [
      ['pc', ['ping', '-c', '2', '-i', '0.2', '-W', '1', '10.244.0.2']],
      ['pc', ['socat', '-T', '1', '-', 'TCP:10.244.0.3:80,connect-timeout=2']],
      ['pd', ['socat', '-T', '1', '-', 'TCP:10.244.0.4:80,connect-timeout=2']],
    ]);
  });
