// packets(node, iface, match).seen() / .count(n) / .none(): what tcpdump on an interface saw during the step.
import { isIPv4 } from 'node:net';
import type { PacketMatch } from '../../lab/types.ts';
import { defineKind } from '../kind.ts';
import { quoteWord as q } from '../../exec/quote.ts';
import { countOk, packetMatches, shellRange, stripTimestamp } from '../compare.ts';
import { countWords } from '../words.ts';
import { sentences } from '../evidence.ts';

export const packetsKind = defineKind({
  kind: 'packets',
  builder: 'packets(node, iface, match).seen() / .count(n) / .none()',
  fields: { match: 'object' },
  validate(c, v) {
    if (v.knownNode(c.node) && !v.ifaces.get(c.node)?.has(c.iface))
      v.add(
        `packets check: node ${c.node} has no interface ${v.show(c.iface)} (it has ${[...v.ifaces.get(c.node)!].join(', ')})`,
      );
    if (typeof c.match !== 'object' || c.match === null)
      v.add(
        `packets check: field "match" must be an object, e.g. { proto: 'icmp' } or {} for every packet (got ${v.show(c.match)})`,
      );
    for (const f of ['src', 'dst'] as const)
      if (c.match?.[f] !== undefined && !isIPv4(c.match[f]!))
        v.add(`packets check: match.${f} must be an IPv4 address`);
    v.count(c.count);
  },
  describe: (c) => `tcpdump on ${c.node}:${c.iface} sees ${countWords(c.count, 'packet')}${matchWords(c.match)}`,
  needs: (c) => [{ type: 'capture', node: c.node, iface: c.iface }],
  judge(c, obs) {
    const capture = obs.capture(c.node, c.iface);
    const expected = { match: c.match, count: c.count };
    if (!capture) return { met: false, expected, observed: 'no capture ran' };
    if (capture.error) return { met: false, expected, observed: { error: capture.error } };
    const matching = capture.packets.filter((p) => packetMatches(p, c.match));
    return {
      met: countOk(matching.length, c.count),
      expected,
      observed: {
        count: matching.length,
        packets: matching.slice(0, 6).map((p) => stripTimestamp(p.line)),
        capturedInAll: capture.packets.length,
      },
    };
  },
  about: () => 'behaviour',
  hint(c, _verdict, obs) {
    const capture = obs.capture(c.node, c.iface);
    if (!capture || capture.error) return undefined;
    const n = capture.packets.filter((p) => packetMatches(p, c.match)).length;
    // The same packet with its addresses and ports left open: where translation shows.
    const loose: PacketMatch = {
      ...(c.match.proto ? { proto: c.match.proto } : {}),
      ...(c.match.icmp ? { icmp: c.match.icmp } : {}),
      ...(c.match.flags ? { flags: c.match.flags } : {}),
    };
    const here = capture.packets.filter((p) => packetMatches(p, loose) && !packetMatches(p, c.match));
    // The step's other captures that saw the packet as the check describes it.
    const elsewhere = obs
      .all('capture')
      .filter(
        ([[node, iface], o]) =>
          !(node === c.node && iface === c.iface) && o.packets.some((p) => packetMatches(p, c.match)),
      )
      .map(([[node, iface], o]) => `${node}:${iface} (${o.packets.filter((p) => packetMatches(p, c.match)).length})`);
    return sentences([
      `tcpdump on ${c.node}:${c.iface} saw ${n} matching of ${capture.packets.length} packets`,
      here.length > 0 &&
        `on ${c.node}:${c.iface} it saw ${here.length} like it with other addresses, e.g. "${stripTimestamp(here[0]!.line)}"`,
      elsewhere.length > 0 && `the packet was seen on ${elsewhere.join(', ')}`,
      n === 0 &&
        here.length === 0 &&
        elsewhere.length === 0 &&
        `no capture of the step saw it: it never reached ${c.node}:${c.iface}`,
    ]);
  },
  exportLine(c, desc, ids) {
    const m = c.match;
    const fields = [m.proto, m.src, m.dst, m.sport, m.dport, m.icmp, m.flags].map((x) =>
      q(x === undefined ? '' : String(x)),
    );
    return `check_packets ${ids.capture(c.node, c.iface)} ${shellRange(c.count)} ${desc} ${fields.join(' ')}`;
  },
  watch: (c, show) => [show(c.node, ['tcpdump', '-nn', '-i', c.iface])],
});

function matchWords(m: PacketMatch): string {
  const parts = [
    m.proto,
    m.icmp ? `ICMP ${m.icmp}` : undefined,
    m.flags ? `flags [${m.flags}]` : undefined,
    m.src ? `from ${m.src}${m.sport ? `.${m.sport}` : ''}` : undefined,
    m.dst ? `to ${m.dst}${m.dport ? `.${m.dport}` : ''}` : undefined,
  ].filter(Boolean);
  return parts.length ? ` (${parts.join(' ')})` : '';
}
