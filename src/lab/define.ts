// The vocabulary a lab author writes with. Each helper returns plain data (src/lab/types.ts).
import type {
  Check,
  Command,
  CountExpectation,
  Lab,
  PacketMatch,
  PathFilter,
  PingTraffic,
  TcpTraffic,
  TupleMatch,
  UdpTraffic,
} from './types.ts';
import { splitWords } from './words.ts';

export function defineLab(lab: Lab): Lab {
  return lab;
}

/** A command on a node, written as a person types it: `cmd('host', 'iptables -P FORWARD DROP')`.
 * The words are split once, here (quotes group words; nothing is expanded), and run as argv. */
export function cmd(
  node: string,
  words: string | string[],
  options: Partial<Pick<Command, 'expectFailure'>> = {},
): Command {
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
    fails: (error?: string, description?: string): Check => ({
      kind: 'ping',
      traffic,
      expect: 'fails',
      error,
      description,
    }),
  };
}

export function tcp(
  from: string,
  to: string,
  port: number,
  options: Omit<TcpTraffic, 'kind' | 'from' | 'to' | 'port'> = {},
) {
  const traffic: TcpTraffic = { kind: 'tcp', from, to, port, ...options };
  const check = (
    expect: 'connects' | 'refused' | 'timeout' | 'unreachable',
    extra: { answeredBy?: string; clientSeen?: string; description?: string } = {},
  ): Check => ({ kind: 'tcp', traffic, expect, ...extra });
  return {
    traffic,
    /** Connects and is answered; optionally by a given node that saw a given client address. */
    connects: (extra: { answeredBy?: string; clientSeen?: string; description?: string } = {}) =>
      check('connects', extra),
    refused: (description?: string) => check('refused', { description }),
    timesOut: (description?: string) => check('timeout', { description }),
    unreachable: (description?: string) => check('unreachable', { description }),
    /** The connections spread over backends in these shares, within N·p ± 4·sqrt(N·p(1−p)) each. */
    spreads: (shares: Record<string, number>, options: { sigmas?: number; description?: string } = {}): Check => ({
      kind: 'distribution',
      traffic,
      shares,
      ...options,
    }),
    /** Every connection is answered by the same backend (optionally one of `among`). */
    sticks: (options: { among?: string[]; description?: string } = {}): Check => ({
      kind: 'sticky',
      traffic,
      ...options,
    }),
  };
}

/** UDP datagrams sent with socat, for a step's `send` list: `udp('c1', '198.51.100.8', 53, { sourcePort: 33894 })`. */
export function udp(
  from: string,
  to: string,
  port: number,
  options: Omit<UdpTraffic, 'kind' | 'from' | 'to' | 'port'> = {},
): UdpTraffic {
  return { kind: 'udp', from, to, port, ...options };
}

/** Every node pings every other node's address: `allPairs({ c1: '10.80.0.2', c2: '10.80.0.3' }).succeed()`.
 * Sources run `parallel` at a time (default 2 × CPUs), each sending its pings at once. */
export function allPairs(nodes: Record<string, string>, options: { parallel?: number; wait?: number } = {}) {
  return {
    succeed: (description?: string): Check => ({
      kind: 'all-pairs',
      nodes,
      expect: 'succeeds',
      ...options,
      description,
    }),
    fail: (description?: string): Check => ({ kind: 'all-pairs', nodes, expect: 'fails', ...options, description }),
  };
}

/** Each node of `from` pings `to` once: `allReach(containers, '10.80.0.1').succeeds('everyone reaches the gateway')`. */
export function allReach(from: string[], to: string, options: { parallel?: number; wait?: number } = {}) {
  return {
    succeeds: (description?: string): Check => ({
      kind: 'all-reach',
      from,
      to,
      expect: 'succeeds',
      ...options,
      description,
    }),
    fails: (description?: string): Check => ({ kind: 'all-reach', from, to, expect: 'fails', ...options, description }),
  };
}

// ---- observations during the step ----------------------------------------------------------------

type PathOptions = {
  exact?: boolean;
  packet?: 'first' | 'each' | number;
  notThrough?: string[];
  rule?: string;
  description?: string;
};

/**
 * The path packets take through a node's tables and chains, traced while the step's traffic runs:
 * `path('host', { proto: 'icmp', src: '10.55.66.2' }).through(['nat PREROUTING: DNAT', 'filter FORWARD: policy DROP'])`.
 * A hop is `<table> <CHAIN>: <target>` (`: policy DROP` when the policy decided), or `<table> <CHAIN>` for any hop of that chain.
 */
export function path(node: string, filter: PathFilter = {}) {
  return {
    /** The packet goes through these hops in this order (others may come between, unless `exact`). */
    through: (hops: string[], options: PathOptions = {}): Check => ({
      kind: 'path',
      node,
      filter,
      through: hops,
      ...options,
    }),
    /** The packet goes through none of these hops. */
    notThrough: (hops: string[], options: Omit<PathOptions, 'exact' | 'notThrough'> = {}): Check => ({
      kind: 'path',
      node,
      filter,
      notThrough: hops,
      ...options,
    }),
  };
}

/** Packets captured with tcpdump on an interface of a node while the step's traffic ran. */
export function packets(node: string, iface: string, match: PacketMatch = {}) {
  const check = (count: CountExpectation, description?: string): Check => ({
    kind: 'packets',
    node,
    iface,
    match,
    count,
    description,
  });
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
    delta: (delta: CounterDelta, description?: string): Check => ({
      kind: 'counter',
      node,
      table,
      chain,
      rule: words,
      ...delta,
      description,
    }),
    /** The rule counts as many packets as `answeredBy` answered connections of `traffic` (NAT rules count connections). */
    countsAnswers: (traffic: TcpTraffic, answeredBy: string, description?: string): Check => ({
      kind: 'counter',
      node,
      table,
      chain,
      rule: words,
      answersOf: { traffic, answeredBy },
      description,
    }),
  };
}

/** The summed delta of several rules of one chain, each written as for rule(). */
export function rules(node: string, tableChain: string, words: string[]) {
  const [table, chain] = splitTableChain(tableChain);
  return {
    delta: (delta: CounterDelta, description?: string): Check => ({
      kind: 'counter',
      node,
      table,
      chain,
      rules: words,
      ...delta,
      description,
    }),
  };
}

/** An ebtables rule's counters across the step (ebtables-save -c): `ebrule('host', 'nat PREROUTING', '-p IPv4 --ip-src 10.55.66.0/24')`. */
export function ebrule(node: string, tableChain: string, words: string) {
  const [table, chain] = splitTableChain(tableChain);
  return {
    delta: (delta: CounterDelta, description?: string): Check => ({
      kind: 'counter',
      family: 'bridge',
      node,
      table,
      chain,
      rule: words,
      ...delta,
      description,
    }),
  };
}

/** The delta of a built-in chain's policy counter: `policy('host', 'filter FORWARD')`. */
export function policy(node: string, tableChain: string) {
  const [table, chain] = splitTableChain(tableChain);
  return {
    delta: (delta: CounterDelta, description?: string): Check => ({
      kind: 'counter',
      node,
      table,
      chain,
      ...delta,
      description,
    }),
  };
}

/** Conntrack entries of a node after the step's traffic. */
export function conntrack(
  node: string,
  match: { proto?: string; orig?: TupleMatch; reply?: TupleMatch; mark?: number } = {},
) {
  const check = (count: CountExpectation, description?: string): Check => ({
    kind: 'conntrack',
    node,
    ...match,
    count,
    description,
  });
  return {
    present: (description?: string) => check({ min: 1 }, description),
    count: (count: CountExpectation, description?: string) => check(count, description),
    absent: (description?: string) => check(0, description),
  };
}

/**
 * Entries of xt_recent lists on a node after the traffic: one list by name, or one list per backend
 * node, e.g. `recent('node', { p1: 'KUBE-SEP-…', p2: … }).has('10.244.0.10', { chosenBy: traffic })`.
 */
export function recent(node: string, lists: string | Record<string, string>) {
  return {
    /** The list holds the address; with per-backend lists, only the list of the backend that answered `chosenBy`. */
    has: (address: string, options: { chosenBy?: TcpTraffic; description?: string } = {}): Check => ({
      kind: 'recent',
      node,
      lists,
      expect: 'has',
      address,
      ...options,
    }),
    /** No list holds the address. */
    lacks: (address: string, description?: string): Check => ({
      kind: 'recent',
      node,
      lists,
      expect: 'lacks',
      address,
      description,
    }),
    /** The lists hold no entry at all. */
    empty: (description?: string): Check => ({ kind: 'recent', node, lists, expect: 'empty', description }),
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

/** 'CHAIN' (filter), 'table CHAIN', or an nftables 'family table chain' ('ip kube-proxy services'). */
function splitTableChain(tableChain: string): [string, string] {
  const parts = tableChain.trim().split(/\s+/);
  if (parts.length >= 3) return [`${parts[0]} ${parts[1]}`, parts.slice(2).join(' ')];
  return parts.length === 1 ? ['filter', parts[0]!] : [parts[0]!, parts[1]!];
}

/** Marks checks that hold only in the sandbox (see CheckCommon.sandboxOnly): with --root-namespace
 * they are skipped with `why`, e.g. sandboxOnly('the VM\'s own SSH traffic is counted too', ...checks). */
export function sandboxOnly<C extends Check>(why: string, ...checks: C[]): C[] {
  return checks.map((c) => ({ ...c, sandboxOnly: why }));
}
