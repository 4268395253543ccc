// Parses the one-line packet summaries of `tcpdump -nn -l` (tcpdump 4.99), with or without -e,
// into records a check can compare. Only what tcpdump prints without -v is used: addresses, ports,
// ICMP message, TCP flags. Lines that are not packets (`listening on ...`) yield undefined.

import type { PacketRecord } from './types.ts';

/** `00:02:11.123456 ` (default), `2026-11-23 00:02:11.123456 ` (-tttt) or `1763856131.123456 ` (-tt). */
const TIMESTAMP = /^(?:\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d\.\d+ |^\d{9,}\.\d+ /;

/** `-i any` adds the interface and direction: `eth0  Out IP ...` / `veth0 In  IP ...`. */
const ANY_INTERFACE = /^\S+\s+(?:In|Out|M|B|P)\s+(?:ifindex \d+ )?/;

/**
 * -e: `e2:7a:96:83:6f:68 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: <rest>`;
 * with `-i any` only the source MAC: `e2:7a:96:83:6f:68 ethertype IPv4 (0x0800), length 104: <rest>`.
 */
const MAC = '[0-9a-f]{2}(?::[0-9a-f]{2}){5}';
const LINK_HEADER = new RegExp(
  `^(?:${MAC}(?: > ${MAC},)? )?ethertype ([^,]+?) \\(0x[0-9a-f]{4}\\), length \\d+: (.*)$`,
);

/** 802.1Q inside -e output: `vlan 10, p 0, ethertype IPv4 (0x0800), <rest>`. */
const VLAN_HEADER = /^vlan \d+, p \d+, ethertype ([^,]+?) \(0x[0-9a-f]{4}\), (.*)$/;

/** Known network-layer prefixes of the non -e form. */
const BODY_PREFIXES: Array<[string, (rest: string) => Omit<PacketRecord, 'line'>]> = [
  ['IP ', (rest) => parseIp(rest, 4)],
  ['IP6 ', (rest) => parseIp(rest, 6)],
  ['ARP, ', (rest) => parseArp(rest)],
];

export function parseTcpdumpLine(line: string): PacketRecord | undefined {
  const text = line.replace(/\r?\n$/, '').trimEnd();
  let rest = text;
  const ts = TIMESTAMP.exec(rest);
  if (ts) rest = rest.slice(ts[0].length);
  const any = ANY_INTERFACE.exec(rest);
  if (any) rest = rest.slice(any[0].length);

  const body = withoutLinkHeader(rest);
  if (body !== undefined) {
    return { ...(body === null ? { proto: 'other' } : (parseBody(body) ?? { proto: 'other' })), line: text };
  }
  const parsed = parseBody(rest);
  if (parsed) return { ...parsed, line: text };
  // Everything tcpdump prints for a packet starts with a timestamp; status lines do not.
  return ts ? { proto: 'other', line: text } : undefined;
}

export function parseTcpdump(text: string): PacketRecord[] {
  const records: PacketRecord[] = [];
  for (const line of text.split('\n')) {
    const record = parseTcpdumpLine(line);
    if (record) records.push(record);
  }
  return records;
}

/**
 * With -e the network layer follows the link header without its `IP `/`ARP, ` prefix, so the
 * ethertype says what it is. Returns the body rewritten to the non -e form, null for an
 * ethertype we do not decode, or undefined when there is no link header.
 */
function withoutLinkHeader(text: string): string | null | undefined {
  let m = LINK_HEADER.exec(text);
  if (!m) return undefined;
  let [, ethertype, rest] = m as unknown as [string, string, string];
  while ((m = VLAN_HEADER.exec(rest))) [, ethertype, rest] = m as unknown as [string, string, string];
  switch (ethertype) {
    case 'IPv4':
      return `IP ${rest}`;
    case 'IPv6':
      return `IP6 ${rest}`;
    case 'ARP':
      return `ARP, ${rest}`;
    default:
      return null;
  }
}

function parseBody(body: string): Omit<PacketRecord, 'line'> | undefined {
  for (const [prefix, parse] of BODY_PREFIXES) {
    if (body.startsWith(prefix)) return parse(body.slice(prefix.length));
  }
  return undefined;
}

/** `10.55.66.2.34740 > 10.55.66.3.8000: Flags [S], ...` or `fd00::2 > fd00::3: ICMP6, echo request, ...`. */
function parseIp(rest: string, version: 4 | 6): Omit<PacketRecord, 'line'> {
  const m = /^(\S+) > (\S+): (.*)$/.exec(rest);
  if (!m) return { proto: 'other' };
  const from = splitEndpoint(m[1]!, version);
  const to = splitEndpoint(m[2]!, version);
  const payload = m[3]!;
  const addrs = { src: from.addr, dst: to.addr };

  if (version === 4 && payload.startsWith('ICMP ')) {
    return { proto: 'icmp', ...addrs, icmp: icmpWords(payload.slice('ICMP '.length)) };
  }
  if (version === 6 && payload.startsWith('ICMP6, ')) {
    return { proto: 'icmp6', ...addrs, icmp: icmpWords(payload.slice('ICMP6, '.length)) };
  }
  if (from.port === undefined || to.port === undefined) return { proto: 'other', ...addrs };

  const ports = { sport: from.port, dport: to.port };
  const flags = /^Flags \[([^\]]*)\]/.exec(payload);
  if (flags) return { proto: 'tcp', ...addrs, ...ports, flags: flags[1] };
  // Ports without TCP flags: plain `UDP, length 5`, or a UDP payload tcpdump decoded itself
  // (DNS `41162+ A? example.test. (30)`, `domain [length 5 < 12] (invalid)`, NTP, DHCP...).
  // SCTP and DCCP also have ports and say so first.
  if (/^(?:sctp|dccp|DCCP)\b/.test(payload)) return { proto: 'other', ...addrs, ...ports };
  return { proto: 'udp', ...addrs, ...ports };
}

/** IPv4 `a.b.c.d[.port]`; IPv6 `x::y[.port]` (tcpdump joins the port with a dot in both). */
function splitEndpoint(text: string, version: 4 | 6): { addr: string; port?: number } {
  const dot = text.lastIndexOf('.');
  const hasPort = version === 4 ? text.split('.').length === 5 : dot > 0 && /^\d+$/.test(text.slice(dot + 1));
  if (!hasPort) return { addr: text };
  return { addr: text.slice(0, dot), port: Number(text.slice(dot + 1)) };
}

/**
 * The ICMP message as tcpdump words joined by '-', with addresses and numbers left out, so one
 * kind of message always reads the same: `echo request, id 5` -> 'echo-request';
 * `198.51.100.8 udp port 53 unreachable` -> 'udp-port-unreachable';
 * `host 198.51.100.9 unreachable - admin prohibited filter` -> 'host-unreachable-admin-prohibited-filter'.
 */
function icmpWords(text: string): string {
  const message = text.split(', ')[0]!;
  return message
    .split(/\s+/)
    .filter((w) => w !== '-' && w !== '' && !/^[\d.]+$/.test(w) && !/^[0-9a-f]*:[0-9a-f:.]*$/i.test(w))
    .join('-');
}

/** `Request who-has 10.55.66.3 tell 10.55.66.2, length 28` / `Reply 10.55.66.3 is-at e2:86:..., length 28`. */
function parseArp(rest: string): Omit<PacketRecord, 'line'> {
  const request = /^Request who-has (\S+)(?: \([^)]*\))? tell (\S+?),/.exec(rest);
  if (request) return { proto: 'arp', src: request[2], dst: request[1] };
  const reply = /^Reply (\S+) is-at /.exec(rest);
  if (reply) return { proto: 'arp', src: reply[1] };
  return { proto: 'arp' };
}
