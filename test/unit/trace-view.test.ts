// The trace as a person reads it, on recorded xtables-monitor output (test/fixtures/trace-*.txt) and
// a conntrack line recorded with it: NAT rewrites with where they were seen, TCP flags, grouping of
// identical paths, the caps; and the --filter words.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { parseTraceLines } from '../../src/observe/parse-trace.ts';
import { parseConntrack } from '../../src/observe/parse-conntrack.ts';
import { markMatches } from '../../src/observe/trace.ts';
import { parseTraceFilter } from '../../src/observe/trace-filter.ts';
import { lookupElsewhere, renderPaths, tracedPaths } from '../../src/report/trace-view.ts';
import type { TraceHop } from '../../src/observe/parse-trace.ts';
import { LabError } from '../../src/errors.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/trace-${name}.txt`, import.meta.url), 'utf8');

test('DNAT in nat PREROUTING: the new destination is seen in the header at filter FORWARD; TCP flags kept', (t) => {
  const paths = tracedPaths(parseTraceLines(fixture('dnat'), { includeTracer: true }));
  const first = paths[0]!;
  t.deepEqual(first.tcpFlags, ['SYN']);
  t.deepEqual(
    first.rewrites.map((r) => [r.field, r.from, r.to, r.by, r.evidence]),
    [['dst', '172.17.9.103:2345', '10.55.66.2:8000', 'DNAT', 'the header at filter FORWARD']],
  );
  t.is(first.ctState, 'NEW');
  t.is(first.hops[first.rewrites[0]!.hop]!.chain, 'PREROUTING');
  const text = renderPaths(paths).join('\n');
  t.regex(text, /⇒ dst 172\.17\.9\.103:2345 → 10\.55\.66\.2:8000 by DNAT {2}\(seen in the header at filter FORWARD\)/);
});

test('MASQUERADE in POSTROUTING: not in any later header; the reply tuple of conntrack gives the new source', (t) => {
  const hops = parseTraceLines(fixture('masquerade'), { includeTracer: true });
  const without = tracedPaths(hops)[0]!.rewrites.find((r) => r.by === 'MASQUERADE')!;
  t.is(without.to, '?');
  t.regex(without.evidence, /not visible/);
  const conntrack = parseConntrack(
    'icmp     1 29 src=10.55.66.2 dst=198.51.100.8 type=8 code=0 id=7 src=198.51.100.8 dst=10.0.2.15 type=0 code=0 id=7 mark=0 use=1\n',
  );
  const withCt = tracedPaths(hops, conntrack, 'host')[0]!.rewrites.find((r) => r.by === 'MASQUERADE')!;
  t.like(withCt, {
    field: 'src',
    from: '10.55.66.2',
    to: '10.0.2.15',
    evidence: 'the reply tuple of conntrack -L on host',
  });
});

test('MASQUERADE seen in the next node: the packet (same IPv4 ID, length, protocol and destination) entered it with the new source', (t) => {
  const hops = parseTraceLines(fixture('masquerade'), { includeTracer: true });
  const ext = (src: string, dst: string): TraceHop[] => [
    {
      packetId: 'e1',
      family: 'ip',
      table: 'nflab_trace_1',
      chain: 'mark_pre',
      proto: 'icmp',
      src,
      dst,
      ipId: 44344,
      len: 84,
    },
  ];
  const seen = tracedPaths(
    hops,
    undefined,
    'host',
    lookupElsewhere([{ node: 'ext', hops: ext('10.0.2.15', '198.51.100.8') }]),
  )[0]!.rewrites.find((r) => r.by === 'MASQUERADE')!;
  t.like(seen, { from: '10.55.66.2', to: '10.0.2.15', evidence: 'the header as it entered ext' });
  // The same IP ID towards another destination is another packet: no evidence from it.
  const other = tracedPaths(
    hops,
    undefined,
    'host',
    lookupElsewhere([{ node: 'ext', hops: ext('10.0.2.15', '203.0.113.9') }]),
  )[0]!.rewrites.find((r) => r.by === 'MASQUERADE')!;
  t.is(other.to, '?');
});

test('identical paths are grouped as ×N, and the caps bound the lines and their width', (t) => {
  const paths = tracedPaths(parseTraceLines(fixture('fast-ping'), { includeTracer: true }));
  const packets = paths.reduce((n, p) => n + p.count, 0);
  t.true(packets >= 30, `${packets} packets`);
  t.true(paths.length < packets / 5, `${paths.length} paths for ${packets} packets`);
  t.regex(renderPaths(paths).join('\n'), /path \d+ ×\d+ /);
  const small = renderPaths(paths, { paths: 1, hops: 1, width: 40 });
  t.true(small.every((l) => l.length <= 40));
  if (paths.length > 1) t.regex(small.join('\n'), /… \d+ more paths/);
});

test('--filter: tcpdump\'s words become the marking rule\'s match; "host" marks either side once', (t) => {
  t.deepEqual(parseTraceFilter('icmp and host 10.55.66.2'), { proto: 'icmp', host: '10.55.66.2' });
  t.deepEqual(parseTraceFilter('tcp and dst port 80 and src net 10.244.0.0/16'), {
    proto: 'tcp',
    dport: 80,
    src: '10.244.0.0/16',
  });
  t.deepEqual(markMatches({ proto: 'icmp', host: '10.55.66.2' }), [
    'meta l4proto icmp ip saddr 10.55.66.2',
    'meta l4proto icmp ip saddr != 10.55.66.2 ip daddr 10.55.66.2',
  ]);
  t.deepEqual(markMatches({ proto: 'tcp', port: 80 }), [
    'meta l4proto tcp th sport 80',
    'meta l4proto tcp th sport != 80 th dport 80',
  ]);
  t.deepEqual(parseTraceFilter(''), {});
  for (const bad of [
    'icmp or tcp',
    'host',
    'port 0',
    'icmp and port 80',
    'host 10.0.0.0/8',
    'nonsense',
    'host 1.2.3.4; drop',
  ]) {
    t.throws(() => parseTraceFilter(bad), { instanceOf: LabError }, bad);
  }
});
