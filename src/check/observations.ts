// What a step observes for its checks: typed requests (a check kind says what it needs) and the
// store the engine fills and the kinds read. The one place where observation keys are made, so a
// check and the code that observes for it can never disagree on a key.
import type { Command, PathFilter, Traffic } from '../lab/types.ts';
import type { RunResult } from '../exec/types.ts';
import type { ConntrackEntry, PacketRecord, SavedRuleset } from '../observe/types.ts';
import type { RecentEntry } from '../observe/parse-xt-recent.ts';
import type { TraceHop } from '../observe/parse-trace.ts';
import { trafficKey, type TrafficResult } from '../traffic/run.ts';
import { reachKey, type ReachCheck, type ReachResult } from '../traffic/reach.ts';

/** Something a check needs observed during its step. */
export type ObservationRequest =
  /** Traffic the check sends (or refers to): sent once per step, in the order first asked for. */
  | { type: 'traffic'; traffic: Traffic }
  /** tcpdump on an interface of a node while the traffic runs. */
  | { type: 'capture'; node: string; iface: string }
  /** `iptables-save -c` of a node before and after the traffic; with `nft`, that nftables table's
   * rule counters (`nft list table ip kube-proxy`) instead; family bridge: `ebtables-save -c`. */
  | { type: 'counters'; node: string; nft?: string; family?: 'bridge' }
  /** `conntrack -L` of a node before and after the traffic (the check's own flows are the new entries). */
  | { type: 'conntrack'; node: string }
  /** One xt_recent list of a node before and after the traffic. */
  | { type: 'recent'; node: string; list: string }
  /** A command's output after the traffic. */
  | { type: 'output'; command: Command }
  /** Reachability at scale: many pings of an all-pairs or all-reach check. */
  | { type: 'reach'; check: ReachCheck }
  /** A packet trace of a node while the traffic runs. */
  | { type: 'trace'; node: string; filter: PathFilter };

export type RequestType = ObservationRequest['type'];
export type RequestOf<T extends RequestType> = Extract<ObservationRequest, { type: T }>;

/** What one trace session of a step recorded: its hops, or why there are none. */
export type TraceObservation = { hops: TraceHop[]; problems: string[] } | { error: string };
export type CaptureObservation = { packets: PacketRecord[]; error?: string };
export type CounterObservation = { before: SavedRuleset; after: SavedRuleset };
/** Every observation is relative to a baseline taken when the check starts, so that a check gives
 * the same verdict however often it runs and whatever traffic came before: `before` is that baseline. */
export type ConntrackObservation = {
  before?: ConntrackEntry[];
  after: ConntrackEntry[];
  /** `destination|address:port`: where each of the step's TCP connections went and the client the responder saw, one per connection. */
  ownClients?: string[];
};
export type RecentObservation = { entries: RecentEntry[]; before?: RecentEntry[] } | { error: string };

/** One TCP connection as a conntrack entry names it: where it went, and the client address and port
 * its responder saw (the entry's reply destination). Both sides of `ownClients` are keyed here. */
export const connectionKey = (destination: string, client: string, port: number | undefined): string =>
  `${destination}|${client}:${port}`;

/** The observation each request type yields. */
export interface ObservedOf {
  traffic: TrafficResult;
  capture: CaptureObservation;
  counters: CounterObservation;
  conntrack: ConntrackObservation;
  recent: RecentObservation;
  output: RunResult;
  reach: ReachResult;
  trace: TraceObservation;
}

/** One trace session per node and filter: path checks with the same ones share it. */
export const traceKey = (node: string, filter: PathFilter) =>
  `${node}\0${['proto', 'src', 'dst', 'sport', 'dport'].map((k) => String(filter[k as keyof PathFilter] ?? '')).join('\0')}`;

/** The identity of a request: two requests with the same key are observed once. */
export function requestKey(r: ObservationRequest): string {
  switch (r.type) {
    case 'traffic':
      return `traffic\0${trafficKey(r.traffic)}`;
    case 'capture':
      return `capture\0${r.node}\0${r.iface}`;
    case 'counters':
      return `counters\0${r.node}${r.nft ? `\0${r.nft}` : ''}${r.family ? `\0${r.family}` : ''}`;
    case 'conntrack':
      return `conntrack\0${r.node}`;
    case 'recent':
      return `recent\0${r.node}\0${r.list}`;
    case 'output':
      return `output\0${r.command.node}\0${r.command.argv.join('\0')}`;
    case 'reach':
      return `reach\0${reachKey(r.check)}`;
    case 'trace':
      return `trace\0${traceKey(r.node, r.filter)}`;
  }
}

/** Requests without repeats, in first-asked order, grouped by type. */
export function distinctRequests<T extends RequestType>(requests: ObservationRequest[], type: T): RequestOf<T>[] {
  const seen = new Map<string, RequestOf<T>>();
  for (const r of requests) if (r.type === type && !seen.has(requestKey(r))) seen.set(requestKey(r), r as RequestOf<T>);
  return [...seen.values()];
}

/** The observations of one step, by request. */
export class Observations {
  private readonly values = new Map<string, unknown>();

  set<T extends RequestType>(request: RequestOf<T>, value: ObservedOf[T]): void {
    this.values.set(requestKey(request), value);
  }

  get<T extends RequestType>(request: RequestOf<T>): ObservedOf[T] | undefined {
    return this.values.get(requestKey(request)) as ObservedOf[T] | undefined;
  }

  has(request: ObservationRequest): boolean {
    return this.values.has(requestKey(request));
  }

  /** Every value by request type, then by the rest of its key (words joined by spaces): the raw
   * evidence `nflab run --record` keeps. */
  byType(): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {};
    for (const [key, value] of this.values) {
      const [type, ...rest] = key.split('\0');
      (out[type!] ??= {})[rest.join(' ')] = value;
    }
    return out;
  }

  // Shorthands the check kinds read with.
  traffic(traffic: Traffic): TrafficResult | undefined {
    return this.get({ type: 'traffic', traffic });
  }
  capture(node: string, iface: string): CaptureObservation | undefined {
    return this.get({ type: 'capture', node, iface });
  }
  counters(node: string, nft?: string, family?: 'bridge'): CounterObservation | undefined {
    return this.get({ type: 'counters', node, ...(nft ? { nft } : {}), ...(family ? { family } : {}) });
  }
  conntrack(node: string): ConntrackObservation | undefined {
    return this.get({ type: 'conntrack', node });
  }

  /** Every observation of one type, by request key: the evidence a hint draws on beyond its own check's. */
  all<T extends RequestType>(type: T): [string[], ObservedOf[T]][] {
    return [...this.values]
      .filter(([key]) => key.split('\0')[0] === type)
      .map(([key, value]) => [key.split('\0').slice(1), value as ObservedOf[T]]);
  }
  recent(node: string, list: string): RecentObservation | undefined {
    return this.get({ type: 'recent', node, list });
  }
  output(command: Command): RunResult | undefined {
    return this.get({ type: 'output', command });
  }
  reach(check: ReachCheck): ReachResult | undefined {
    return this.get({ type: 'reach', check });
  }
  trace(node: string, filter: PathFilter): TraceObservation | undefined {
    return this.get({ type: 'trace', node, filter });
  }
}

/** Maps (the observations' own shape) as plain objects, so that JSON keeps them. */
export function plain(value: unknown): unknown {
  if (value instanceof Map)
    return Object.fromEntries([...value].map(([k, v]) => [String(k).replaceAll('\0', ' '), plain(v)]));
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}
