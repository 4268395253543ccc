// Lab 11 (chain traversal): `nflab check` gives the same verdicts three times, after `trace` and
// after traffic by hand through the same chains: iptables and ebtables counters are deltas across
// the check's own traffic (the issue saw step 2 met, then not met: ebtables pcnt read as absolute text).
import test from 'ava';
import { repeatability } from './helpers/repeat.ts';

for (let n = 1; n <= 5; n++)
  test(`lab 11 step ${n}: checks the same three times, after trace, and after pings and a connection by hand`, async (t) => {
    await repeatability(t, '11', n, [
      ['c1', ['ping', '-c', '3', '-i', '0.2', '-W', '1', '10.55.66.3']],
      ['host', ['ping', '-c', '2', '-i', '0.2', '-W', '1', '10.55.66.2']],
      ['ext', ['socat', '-T', '1', '-', 'TCP:10.0.2.15:5566,connect-timeout=2']],
      ['c1', ['ping', '-c', '2', '-i', '0.2', '-W', '1', '198.51.100.8']],
    ]);
  });
