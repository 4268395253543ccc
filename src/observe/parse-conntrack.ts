// Parses `conntrack -L` (conntrack-tools 1.4.x) into entries with their original and reply tuples.
// The reply tuple is where NAT shows: its destination is the translated source, its source the
// translated destination.

import type { ConntrackEntry, ConntrackTuple } from './types.ts';

/** Keys that belong to a tuple; all others (mark, use, zone, secctx...) describe the entry. */
const TUPLE_KEYS = new Set(['src', 'dst', 'sport', 'dport', 'type', 'code', 'id']);

/**
 * One entry per line, e.g.
 * `tcp      6 116 TIME_WAIT src=172.17.9.1 dst=172.17.9.103 sport=56844 dport=2345 src=10.55.66.2 dst=172.17.9.1 sport=8000 dport=56844 [ASSURED] mark=0 use=1`.
 * `-o extended` lines (`ipv4     2 tcp      6 ...`) are accepted too. The summary
 * `conntrack v1.4.7 (conntrack-tools): N flow entries have been shown.` and other lines are ignored.
 */
export function parseConntrack(text: string): ConntrackEntry[] {
  const entries: ConntrackEntry[] = [];
  for (const raw of text.split('\n')) {
    const entry = parseLine(raw.trim());
    if (entry) entries.push(entry);
  }
  return entries;
}

function parseLine(line: string): ConntrackEntry | undefined {
  let words = line.split(/\s+/);
  if ((words[0] === 'ipv4' || words[0] === 'ipv6') && isNumber(words[1])) words = words.slice(2);
  const [proto, protonum, timeout] = words;
  if (proto === undefined || !/^[a-z][a-z0-9-]*$/.test(proto) || !isNumber(protonum) || !isNumber(timeout))
    return undefined;

  const tuples: Array<Partial<Record<string, string>>> = [{}, {}];
  let current = -1; // -1 before the first tuple, 0 original, 1 reply, 2 after both
  let state: string | undefined;
  const flags: string[] = [];
  let mark = 0;
  let entryId: number | undefined;

  for (const word of words.slice(3)) {
    const flag = /^\[([A-Z_]+)\]$/.exec(word);
    if (flag) {
      flags.push(flag[1]!);
      continue;
    }
    const eq = word.indexOf('=');
    if (eq < 0) {
      if (current === -1 && /^[A-Z_]+$/.test(word)) state = word; // TCP/SCTP/DCCP state before the tuples
      continue;
    }
    const key = word.slice(0, eq);
    const value = word.slice(eq + 1);
    if (TUPLE_KEYS.has(key) && current < 2) {
      // Each tuple starts with src=; a second src= starts the reply tuple.
      if (key === 'src') current++;
      if (current >= 0 && current < 2) tuples[current]![key] = value;
      continue;
    }
    // An entry attribute ends the tuples (`-o id` prints an `id=` of the entry after them).
    if (current >= 0) current = 2;
    if (key === 'mark') mark = Number(value);
    if (key === 'id' && current === 2 && isNumber(value)) entryId = Number(value);
  }

  const orig = toTuple(tuples[0]!);
  const reply = toTuple(tuples[1]!);
  if (!orig || !reply) return undefined;
  return {
    proto,
    protonum: Number(protonum),
    timeout: Number(timeout),
    ...(state !== undefined ? { state } : {}),
    orig,
    reply,
    flags,
    mark,
    ...(entryId !== undefined ? { entryId } : {}),
    line,
  };
}

function toTuple(fields: Partial<Record<string, string>>): ConntrackTuple | undefined {
  if (fields.src === undefined || fields.dst === undefined) return undefined;
  const tuple: ConntrackTuple = { src: fields.src, dst: fields.dst };
  for (const key of ['sport', 'dport', 'type', 'code', 'id'] as const) {
    const value = fields[key];
    if (isNumber(value)) tuple[key] = Number(value);
  }
  return tuple;
}

function isNumber(text: string | undefined): text is string {
  return text !== undefined && /^\d+$/.test(text);
}
