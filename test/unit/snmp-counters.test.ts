// The namespace statistics the evidence of negative outcomes reads (src/engine/evidence.ts).
import test from 'ava';
import { grownCounters, parseSnmp } from '../../src/observe/snmp-counters.ts';

test('parseSnmp reads /proc/net/snmp name and value lines; grownCounters names what grew', (t) => {
  const before = parseSnmp('Ip: Forwarding DefaultTTL OutNoRoutes\nIp: 1 64 0\nTcp: RtoAlgorithm OutRsts\nTcp: 1 4\n');
  t.deepEqual(
    [...before],
    [
      ['Ip Forwarding', 1],
      ['Ip DefaultTTL', 64],
      ['Ip OutNoRoutes', 0],
      ['Tcp RtoAlgorithm', 1],
      ['Tcp OutRsts', 4],
    ],
  );
  const after = parseSnmp('Ip: Forwarding DefaultTTL OutNoRoutes\nIp: 1 64 2\nTcp: RtoAlgorithm OutRsts\nTcp: 1 4\n');
  t.deepEqual(grownCounters(before, after, ['Ip OutNoRoutes', 'Tcp OutRsts', 'Ip InNoRoutes']), [
    { counter: 'Ip OutNoRoutes', by: 2 },
  ]);
});
