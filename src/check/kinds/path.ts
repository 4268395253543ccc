// path(node, filter).through(hops) / .notThrough(hops) / .matches(rule): the tables, chains and
// rules a traced packet went through in one node while the step's traffic ran.
import { isIPv4 } from 'node:net';
import { defineKind } from '../kind.ts';
import { quoteWord as q } from '../../exec/quote.ts';
import { describePath, HOP_FORM, judgePath } from '../path.ts';
import { parseCidr } from '../../net/cidr.ts';
import { hopsByPacket } from '../../observe/trace.ts';
import { filterWords } from '../path.ts';
import { lastHopWords, nextExpected } from '../evidence.ts';

const isPort = (n: unknown) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;

export const pathKind = defineKind({
  kind: 'path',
  builder: 'path(node, filter).through(hops)',
  fields: { filter: 'object', through: 'array-of-strings', notThrough: 'array-of-strings' },
  validate(c, v) {
    v.knownNode(c.node);
    const f = c.filter;
    if (typeof f !== 'object' || f === null)
      v.add('path check: field "filter" must be an object { proto?, src?, dst?, sport?, dport? }');
    else {
      if (f.proto !== undefined && !['icmp', 'tcp', 'udp'].includes(f.proto))
        v.add(`path check: filter.proto must be icmp, tcp or udp (got ${v.show(f.proto)})`);
      for (const field of ['src', 'dst'] as const) {
        if (f[field] !== undefined && !(isIPv4(String(f[field])) || parseCidr(String(f[field]))))
          v.add(`path check: filter.${field} must be an IPv4 address or CIDR (got ${v.show(f[field])})`);
      }
      for (const field of ['sport', 'dport'] as const) {
        if (f[field] !== undefined && !isPort(f[field]))
          v.add(`path check: filter.${field} must be 1-65535 (got ${v.show(f[field])})`);
      }
      if (f.proto === 'icmp' && (f.sport !== undefined || f.dport !== undefined))
        v.add('path check: an icmp filter has no ports');
    }
    for (const field of ['through', 'notThrough'] as const) {
      const list = c[field];
      if (list === undefined) continue;
      if (!Array.isArray(list) || list.length === 0) {
        v.add(`path check: field "${field}" must be a non-empty array of hops`);
        continue;
      }
      for (const hop of list) {
        if (typeof hop !== 'string' || !HOP_FORM.test(hop)) {
          v.add(
            `path check: hop ${v.show(hop)} in "${field}" is malformed (write "<table> <CHAIN>: <target>", e.g. "nat PREROUTING: DNAT", "filter FORWARD: policy DROP", "bridge filter FORWARD: ACCEPT", or "<table> <CHAIN>" for any hop of the chain)`,
          );
        }
      }
    }
    if (c.through === undefined && c.notThrough === undefined && c.rule === undefined)
      v.add('path check: give "through", "notThrough" or "rule"');
    if (c.exact && c.through === undefined) v.add('path check: "exact" needs "through"');
    if (
      c.packet !== undefined &&
      c.packet !== 'first' &&
      c.packet !== 'each' &&
      !(Number.isInteger(c.packet) && (c.packet as number) >= 1)
    ) {
      v.add(`path check: field "packet" must be 'first', 'each' or a packet number from 1 (got ${v.show(c.packet)})`);
    }
    if (c.rule !== undefined && (typeof c.rule !== 'string' || c.rule.trim() === ''))
      v.add('path check: field "rule" must be rule words, e.g. "-j DNAT --to-destination 10.55.66.2:8000"');
  },
  describe: describePath,
  needs: (c) => [{ type: 'trace', node: c.node, filter: c.filter }],
  judge: (c, obs) => judgePath(c, obs.trace(c.node, c.filter)),
  // The path is behaviour; a check that names the rule a hop must match is about the reference's rule.
  about: (c) => (c.rule !== undefined ? 'reference' : 'behaviour'),
  hint(c, _verdict, obs) {
    const trace = obs.trace(c.node, c.filter);
    if (!trace || 'error' in trace) return undefined;
    const packets = hopsByPacket(trace.hops);
    if (packets.length === 0)
      return `no ${filterWords(c.filter)} was traced on ${c.node}: it never reached ${c.node}'s netfilter hooks (or has other addresses there: NAT before ${c.node}?)`;
    const n = c.packet === 'first' || c.packet === undefined ? 1 : c.packet === 'each' ? 1 : c.packet;
    const packet = packets[n - 1];
    if (!packet)
      return `only ${packets.length} ${filterWords(c.filter)}${packets.length === 1 ? ' was' : 's were'} traced on ${c.node}`;
    const next = c.through ? nextExpected(packet, c.through) : undefined;
    return `${filterWords(c.filter)} number ${n} ${lastHopWords(packet, c.node)}${next ? `; the expected path continues to ${next}` : ''}`;
  },
  // Shell cannot read the kernel's packet traces: the script says so, nflab run makes the check.
  exportLine: (_c, desc) =>
    `skip_check ${desc} ${q('a path check cannot be made by the exported script; nflab run makes it')}`,
});
