// Drives a step's traffic from a node: ping, or TCP connections to a port with the socat client.
import type { PingTraffic, TcpTraffic, Traffic } from '../lab/types.ts';
import type { Executor } from '../exec/types.ts';
import type { PingOutcome, TcpOutcome } from '../observe/types.ts';
import { parsePing } from '../observe/parse-ping.ts';
import { parseTcpClient, tcpClientArgv } from '../observe/parse-tcp-client.ts';

export interface TrafficResult {
  traffic: Traffic;
  /** The command as a person types it. */
  display: string;
  ping?: PingOutcome;
  /** One outcome per connection. */
  tcp?: TcpOutcome[];
}

/** A stable key so a check finds the traffic it describes. */
export function trafficKey(t: Traffic): string {
  return t.kind === 'ping'
    ? `ping ${t.from} ${t.to} ${t.count ?? 1}`
    : `tcp ${t.from} ${t.to}:${t.port} x${t.connections ?? 1}${t.sourcePort ? ` sport ${t.sourcePort}` : ''}`;
}

export function pingArgv(t: PingTraffic): string[] {
  // A short interval keeps multi-packet pings fast; -W bounds the wait for each reply.
  return ['ping', '-c', String(t.count ?? 1), '-i', '0.2', '-W', String(t.wait ?? 1), t.to];
}

export function tcpArgv(t: TcpTraffic): string[] {
  return tcpClientArgv(t.to, t.port, { timeout: t.timeout ?? 2, sourcePort: t.sourcePort });
}

const MARK = '@@nflab-connection-end rc=';

export async function runTraffic(
  exec: Executor,
  wrap: (node: string, argv: string[]) => string[],
  display: (node: string, argv: string[]) => string,
  t: Traffic,
): Promise<TrafficResult> {
  if (t.kind === 'ping') {
    const argv = pingArgv(t);
    const r = await exec.run(wrap(t.from, argv));
    return { traffic: t, display: display(t.from, argv), ping: parsePing(r.stdout, r.stderr, r.code) };
  }
  const argv = tcpArgv(t);
  const n = t.connections ?? 1;
  if (n === 1) {
    const r = await exec.run(wrap(t.from, argv));
    return { traffic: t, display: display(t.from, argv), tcp: [parseTcpClient(r.stdout, r.stderr, r.code)] };
  }
  // Many connections run in one shell loop inside the node: one process start instead of n.
  // The client argv is passed as positional parameters, never pasted into the script.
  const script = `i=0; while [ $i -lt ${n} ]; do "$@" </dev/null 2>&1; echo "${MARK}$?"; i=$((i+1)); done`;
  const r = await exec.run(wrap(t.from, ['sh', '-c', script, 'sh', ...argv]));
  const outcomes: TcpOutcome[] = [];
  let chunk: string[] = [];
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith(MARK)) {
      const text = chunk.join('\n');
      outcomes.push(parseTcpClient(text, text, Number(line.slice(MARK.length))));
      chunk = [];
    } else if (line !== '') chunk.push(line);
  }
  return { traffic: t, display: `${display(t.from, argv)}   # ${n} connections, one after another`, tcp: outcomes };
}
