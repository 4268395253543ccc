// A step's traffic as a person types it: the same argv the engine sends (src/traffic/run.ts).
import type { Traffic } from '../lab/types.ts';
import { pingArgv, tcpArgv, udpArgv } from '../traffic/run.ts';
import type { ResolvedLab } from './resolve-lab.ts';

/** The argv a traffic item runs on its source node. */
export function trafficArgv(t: Traffic): string[] {
  return t.kind === 'ping' ? pingArgv(t) : t.kind === 'udp' ? udpArgv(t) : tcpArgv(t);
}

/** One line per traffic item; repeated connections and datagrams say how many. */
export function trafficLine(r: ResolvedLab, t: Traffic): string {
  const n = t.kind === 'tcp' ? (t.connections ?? 1) : t.kind === 'udp' ? (t.count ?? 1) : 1;
  return `${r.show(t.from, trafficArgv(t))}${n > 1 ? `   # ${n} times` : ''}`;
}
