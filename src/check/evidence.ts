// Evidence that several kinds' hints draw on, beyond their own check's observations: the drops
// iptables counted while the step's traffic ran, and where a traced packet's path ended. Each
// sentence names the node, the table and chain, or the rule it came from.
import type { Observations } from './observations.ts';
import { dropCounters, dropsBetween } from '../observe/drop-counters.ts';
import { describeHop, hopsByPacket } from '../observe/trace.ts';
import type { TraceHop } from '../observe/parse-trace.ts';
import { hopMatches } from './path.ts';

/** "filter FORWARD policy DROP on host counted 3 packets": every drop counter that grew during the step. */
export function dropsDuringStep(obs: Observations): string[] {
  return obs
    .all('counters')
    .flatMap(([[node, family], c]) =>
      family
        ? []
        : dropsBetween(dropCounters(c.before), dropCounters(c.after)).map(
            (d) => `${d.what} on ${node} counted ${d.packets} dropped packet${d.packets === 1 ? '' : 's'}`,
          ),
    );
}

/** Where the step's packets went, as the host nodes' counters tell it (the fallback when nothing
 * dropped and nothing was traced): "on host: nat PREROUTING -A PREROUTING … -j DNAT (3), filter FORWARD policy ACCEPT (6)". */
export function countersMoved(obs: Observations, limit = 4): string[] {
  return obs.all('counters').flatMap(([[node, family], { before, after }]) => {
    if (family) return [];
    const moved: string[] = [];
    for (const r of after.rules) {
      const b = before.rules.find((x) => x.table === r.table && x.chain === r.chain && x.spec === r.spec);
      const n = r.packets - (b?.packets ?? 0);
      if (n > 0) moved.push(`${r.table} -A ${r.chain} ${r.spec} (${n})`);
    }
    for (const c of after.chains) {
      const b = before.chains.find((x) => x.table === c.table && x.chain === c.chain);
      const n = c.packets - (b?.packets ?? 0);
      if (n > 0 && c.policy !== '-') moved.push(`${c.table} ${c.chain} policy ${c.policy} (${n})`);
    }
    if (moved.length === 0) return [`no rule or policy on ${node} counted a packet of the step`];
    return [
      `on ${node} these counted the step's packets: ${moved.slice(0, limit).join(', ')}${moved.length > limit ? `, and ${moved.length - limit} more` : ''}`,
    ];
  });
}

/** Drops first; else where the packets went. */
export function whereTheyWent(obs: Observations): string[] {
  const drops = dropsDuringStep(obs);
  return drops.length > 0 ? drops : countersMoved(obs);
}

/** Where the first traced packet to `dst` (of `proto`) ended in each traced node, in words:
 * "the echo request reached filter FORWARD on host and met its policy DROP". */
export function traceEnds(obs: Observations, proto: string, dst: string, noun: string): string[] {
  const out: string[] = [];
  for (const [[node, fproto, , fdst], t] of obs.all('trace')) {
    if ('error' in t || (fproto && fproto !== proto) || (fdst && fdst !== dst)) continue;
    const first = hopsByPacket(t.hops)[0];
    if (first && first.length > 0) out.push(`the ${noun} ${lastHopWords(first, node!)}`);
  }
  return out;
}

/** "reached filter FORWARD on host and met its policy DROP" / "… and was accepted by -A FORWARD …". */
export function lastHopWords(packet: TraceHop[], node: string): string {
  const last = packet[packet.length - 1]!;
  const where = `${last.family && last.family !== 'ip' ? `${last.family} ` : ''}${last.table} ${last.chain}`;
  const verdict = last.verdict ?? '?';
  const how = last.policy
    ? `met its policy ${verdict}`
    : last.rule
      ? `met ${last.rule} (${verdict})`
      : `ended with ${verdict}`;
  return `reached ${where} on ${node} and ${how}`;
}

/** The hop of `wanted` the path did not reach, after the last one it did (for "the expected path continues to …"). */
export function nextExpected(packet: TraceHop[], wanted: string[]): string | undefined {
  const path = packet.map(describeHop);
  let at = 0;
  for (const hop of path) if (at < wanted.length && hopMatches(wanted[at]!, hop)) at++;
  return wanted[at];
}

/** Sentences joined as one hint, or undefined when there are none. */
export function sentences(parts: (string | undefined | false)[]): string | undefined {
  const kept = parts.filter((p): p is string => typeof p === 'string' && p !== '');
  return kept.length > 0 ? kept.join('; ') : undefined;
}
