// `nflab trace --filter 'icmp and host 10.55.66.2'`: the words a student already knows from tcpdump,
// read into the tracer's filter (which becomes the nft match of the marking rule in the lab's own
// namespace). Only what the tracer can match is accepted: terms joined by `and`.
import { LabError } from '../errors.ts';
import type { TraceFilter } from './trace.ts';

const PROTOS = new Set(['icmp', 'tcp', 'udp']);
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/;

const GRAMMAR =
  "terms joined by \"and\": icmp | tcp | udp, [src|dst] host A, [src|dst] net A/N, [src|dst] port P (e.g. 'icmp and host 10.55.66.2', 'tcp and dst port 80')";

/** Reads a tcpdump-style filter into a TraceFilter; anything else is a usage error naming the word. */
export function parseTraceFilter(text: string): TraceFilter {
  const words = text
    .trim()
    .split(/\s+/)
    .filter((w) => w !== '');
  const filter: TraceFilter = {};
  const set = <K extends keyof TraceFilter>(key: K, value: TraceFilter[K], word: string) => {
    if (filter[key] !== undefined && filter[key] !== value)
      throw new LabError(
        `--filter ${JSON.stringify(text)}: ${word} given twice with different values (only "and" is supported)`,
      );
    filter[key] = value;
  };
  let i = 0;
  const next = (what: string): string => {
    const w = words[i++];
    if (w === undefined)
      throw new LabError(`--filter ${JSON.stringify(text)}: ${what} expected at the end; ${GRAMMAR}`);
    return w;
  };
  while (i < words.length) {
    if (i > 0) {
      const joiner = next('"and"');
      if (joiner !== 'and' && joiner !== '&&')
        throw new LabError(`--filter ${JSON.stringify(text)}: "${joiner}" is not supported; ${GRAMMAR}`);
    }
    let word = next('a term');
    if (PROTOS.has(word)) {
      set('proto', word as TraceFilter['proto'], word);
      continue;
    }
    let side: 'src' | 'dst' | undefined;
    if (word === 'src' || word === 'dst') {
      side = word;
      word = next(`host, net or port after ${side}`);
    }
    if (word === 'host' || word === 'net' || IPV4.test(word)) {
      const address = IPV4.test(word) ? word : next(`an address after ${word}`);
      if (!IPV4.test(address))
        throw new LabError(
          `--filter ${JSON.stringify(text)}: "${address}" is not an IPv4 address${word === 'net' ? ' or network (A/N)' : ''}`,
        );
      if (word === 'host' && address.includes('/'))
        throw new LabError(`--filter ${JSON.stringify(text)}: host takes an address; use net for ${address}`);
      set(side ?? 'host', address, `${side ? `${side} ` : ''}${word}`);
      continue;
    }
    if (word === 'port') {
      const value = next('a port after port');
      const port = Number(value);
      if (!/^\d+$/.test(value) || port < 1 || port > 65535)
        throw new LabError(`--filter ${JSON.stringify(text)}: "${value}" is not a port 1-65535`);
      set(side === 'src' ? 'sport' : side === 'dst' ? 'dport' : 'port', port, `${side ? `${side} ` : ''}port`);
      continue;
    }
    throw new LabError(`--filter ${JSON.stringify(text)}: "${word}" is not understood; ${GRAMMAR}`);
  }
  if (filter.proto === 'icmp' && (filter.port ?? filter.sport ?? filter.dport) !== undefined)
    throw new LabError(`--filter ${JSON.stringify(text)}: icmp has no ports`);
  return filter;
}

/** The filter in the words a person reads ("icmp packets from or to 10.55.66.2"). */
export function traceFilterWords(f: TraceFilter): string {
  const parts = [`${f.proto ?? 'IPv4'} packets`];
  if (f.host) parts.push(`from or to ${f.host}`);
  if (f.src) parts.push(`from ${f.src}`);
  if (f.dst) parts.push(`to ${f.dst}`);
  if (f.port) parts.push(`port ${f.port}`);
  if (f.sport) parts.push(`source port ${f.sport}`);
  if (f.dport) parts.push(`destination port ${f.dport}`);
  return parts.join(' ');
}
