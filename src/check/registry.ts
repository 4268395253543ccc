// Every check kind, by its `kind`. Adding a kind is one module in ./kinds plus its builder in
// src/lab/define.ts (and its data shape in src/lab/types.ts); nothing else switches over kinds.
import type { Check, Traffic } from '../lab/types.ts';
import type { CheckKind, CheckOf } from './kind.ts';
import type { ObservationRequest } from './observations.ts';
import { pingKind } from './kinds/ping.ts';
import { tcpKind } from './kinds/tcp.ts';
import { packetsKind } from './kinds/packets.ts';
import { counterKind } from './kinds/counter.ts';
import { distributionKind } from './kinds/distribution.ts';
import { stickyKind } from './kinds/sticky.ts';
import { recentKind } from './kinds/recent.ts';
import { allPairsKind, allReachKind } from './kinds/reach.ts';
import { conntrackKind } from './kinds/conntrack.ts';
import { pathKind } from './kinds/path.ts';
import { outputKind } from './kinds/output.ts';

const KINDS: { [K in Check['kind']]: CheckKind<K, any> } = {
  ping: pingKind,
  tcp: tcpKind,
  packets: packetsKind,
  counter: counterKind,
  distribution: distributionKind,
  sticky: stickyKind,
  recent: recentKind,
  'all-pairs': allPairsKind,
  'all-reach': allReachKind,
  conntrack: conntrackKind,
  path: pathKind,
  output: outputKind,
};

export const CHECK_KINDS = Object.keys(KINDS) as Check['kind'][];

/** The module of a known kind (`Object.hasOwn`: "constructor" or "toString" name no kind). */
export function kindModule(kind: unknown): CheckKind | undefined {
  return typeof kind === 'string' && Object.hasOwn(KINDS, kind)
    ? (KINDS[kind as Check['kind']] as unknown as CheckKind)
    : undefined;
}

/** The module of a check, typed for that check. */
export function moduleOf<C extends Check>(check: C): CheckKind<C['kind']> {
  const m = kindModule(check.kind);
  if (!m) throw new Error(`unknown check kind ${String(check.kind)}`);
  return m as unknown as CheckKind<C['kind']>;
}

export function describeCheck(check: Check): string {
  return check.description ?? moduleOf(check).describe(check as CheckOf<typeof check.kind>);
}

export function checkTraffic(check: Check): Traffic[] {
  return moduleOf(check).traffic?.(check as never) ?? [];
}

/** Everything a check needs observed: its traffic first, then what its kind reads. */
export function checkNeeds(check: Check): ObservationRequest[] {
  return [
    ...checkTraffic(check).map((traffic) => ({ type: 'traffic' as const, traffic })),
    ...moduleOf(check).needs(check as never),
  ];
}
