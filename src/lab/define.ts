// The vocabulary a lab author writes with. Each helper returns plain data (src/lab/types.ts).
import type {
  Check, Command, CountExpectation, Lab, PacketMatch, PingTraffic, TcpTraffic, TupleMatch,
} from './types.ts';
import { splitWords } from './words.ts';

export function defineLab(lab: Lab): Lab {
  return lab;
}

/** A command on a node, written as a person types it: `cmd('host', 'iptables -P FORWARD DROP')`.
 * The words are split once, here (quotes group words; nothing is expanded), and run as argv. */
export function cmd(node: string, words: string | string[], options: Partial<Pick<Command, 'expectFailure'>> = {}): Command {
  return { node, argv: Array.isArray(words) ? words : splitWords(words), ...options };
}

/** Write a value into a file of the node (/proc, /sys), shown as `echo VALUE > PATH`. */
export function write(node: string, path: string, value: string): Command {
  return { node, argv: ['tee', path], stdin: `${value}\n`, display: `echo ${value} > ${path}` };
}

/** Load rules with `iptables-restore --noflush` (fast, atomic per table). */
export function restore(node: string, rules: string): Command {
  return { node, argv: ['iptables-restore', '--noflush'], stdin: rules.endsWith('\n') ? rules : `${rules}\n` };
}

// ---- reachability: each check sends its own traffic --------------------------------------------

export function ping(from: string, to: string, options: Omit<PingTraffic, 'kind' | 'from' | 'to'> = {}) {
  const traffic: PingTraffic = { kind: 'ping', from, to, ...options };
  return {
    traffic,
    succeeds: (description?: string): Check => ({ kind: 'ping', traffic, expect: 'succeeds', description }),
    fails: (error?: string, description?: string): Check => ({ kind: 'ping', traffic, expect: 'fails', error, description }),
  };
}

export function tcp(from: string, to: string, port: number, options: Omit<TcpTraffic, 'kind' | 'from' | 'to' | 'port'> = {}) {
  const traffic: TcpTraffic = { kind: 'tcp', from, to, port, ...options };
  const check = (expect: 'connects' | 'refused' | 'timeout' | 'unreachable', extra: { answeredBy?: string; clientSeen?: string; description?: string } = {}): Check =>
    ({ kind: 'tcp', traffic, expect, ...extra });
  return {
    traffic,
    /** Connects and is answered; optionally by a given node that saw a given client address. */
    connects: (extra: { answeredBy?: string; clientSeen?: string; description?: string } = {}) => check('connects', extra),
    refused: (description?: string) => check('refused', { description }),
    timesOut: (description?: string) => check('timeout', { description }),
    unreachable: (description?: string) => check('unreachable', { description }),
  };
}

// ---- observations during the step ----------------------------------------------------------------

/** Packets captured with tcpdump on an interface of a node while the step's traffic ran. */
export function packets(node: string, iface: string, match: PacketMatch = {}) {
  const check = (count: CountExpectation, description?: string): Check => ({ kind: 'packets', node, iface, match, count, description });
  return {
    seen: (description?: string) => check({ min: 1 }, description),
    count: (count: CountExpectation, description?: string) => check(count, description),
    none: (description?: string) => check(0, description),
  };
}

type CounterDelta = { packets?: CountExpectation; bytes?: CountExpectation };

/** The packet/byte delta of one rule across the step: `rule('host', 'nat POSTROUTING', '-j MASQUERADE')`. */
export function rule(node: string, tableChain: string, words: string) {
  const [table, chain] = splitTableChain(tableChain);
  return {
    delta: (delta: CounterDelta, description?: string): Check => ({ kind: 'counter', node, table, chain, rule: words, ...delta, description }),
  };
}

/** The delta of a built-in chain's policy counter: `policy('host', 'filter FORWARD')`. */
export function policy(node: string, tableChain: string) {
  const [table, chain] = splitTableChain(tableChain);
  return {
    delta: (delta: CounterDelta, description?: string): Check => ({ kind: 'counter', node, table, chain, ...delta, description }),
  };
}

/** Conntrack entries of a node after the step's traffic. */
export function conntrack(node: string, match: { proto?: string; orig?: TupleMatch; reply?: TupleMatch } = {}) {
  const check = (count: CountExpectation, description?: string): Check => ({ kind: 'conntrack', node, ...match, count, description });
  return {
    present: (description?: string) => check({ min: 1 }, description),
    count: (count: CountExpectation, description?: string) => check(count, description),
    absent: (description?: string) => check(0, description),
  };
}

/** The output of a command run after the traffic, e.g. `output('c1', 'ip route').includes('default via 10.55.66.1')`. */
export function output(node: string, words: string | string[]) {
  const command = cmd(node, words);
  return {
    includes: (...texts: string[]): Check => ({ kind: 'output', command, includes: texts }),
    excludes: (...texts: string[]): Check => ({ kind: 'output', command, excludes: texts }),
  };
}

function splitTableChain(tableChain: string): [string, string] {
  const parts = tableChain.trim().split(/\s+/);
  return parts.length === 1 ? ['filter', parts[0]!] : [parts[0]!, parts[1]!];
}
