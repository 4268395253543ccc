// Drives a step's traffic from a node: ping, or TCP connections to a port with the socat client.
import type { PingTraffic, TcpTraffic, Traffic, UdpTraffic } from '../lab/types.ts';
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
  /** Exit status and output of each socat run that sent a datagram. */
  udp?: { exitCode: number; output: string }[];
  /** Why the ping was stopped before its own timeout (see StopEarly), for the check's `reason`. */
  decidedBy?: string;
}

/** Lets a ping that is expected to fail stop waiting once the evidence says no reply can come. */
export interface StopEarly {
  /** Called every `everyMs` once every request has been sent; a reason stops the ping (SIGINT, so it
   * still prints its statistics), undefined lets it run on. */
  decide(): Promise<string | undefined>;
  everyMs: number;
  /** Called before each attempt (each TCP connection), to take the counters' starting point. */
  begin?(): Promise<void>;
}

const PING_INTERVAL_S = 0.2;

/** A stable key so a check finds the traffic it describes. */
export function trafficKey(t: Traffic): string {
  if (t.kind === 'udp')
    return `udp ${t.from} ${t.to}:${t.port} x${t.count ?? 1}${t.sourcePort ? ` sport ${t.sourcePort}` : ''}`;
  return t.kind === 'ping'
    ? `ping ${t.from} ${t.to} ${t.count ?? 1}`
    : `tcp ${t.from} ${t.to}:${t.port} x${t.connections ?? 1}${t.sourcePort ? ` sport ${t.sourcePort}` : ''}`;
}

export function pingArgv(t: PingTraffic): string[] {
  // A short interval keeps multi-packet pings fast; -W bounds the wait for each reply.
  return ['ping', '-c', String(t.count ?? 1), '-i', String(PING_INTERVAL_S), '-W', String(t.wait ?? 1), t.to];
}

/** The socat client of a TCP item, or of a UDP item (callers that show traffic treat both alike). */
export function tcpArgv(t: TcpTraffic | UdpTraffic): string[] {
  if (t.kind === 'udp') return udpArgv(t);
  return tcpClientArgv(t.to, t.port, { timeout: t.timeout ?? 2, sourcePort: t.sourcePort });
}

/** One datagram "nflab" from socat: `socat -u 'EXEC:echo nflab' UDP:<to>:<port>[,sourceport=<p>]` (EXEC runs no shell). */
export function udpArgv(t: UdpTraffic): string[] {
  return [
    'socat',
    '-u',
    'EXEC:echo nflab',
    `UDP:${t.to}:${t.port}${t.sourcePort !== undefined ? `,sourceport=${t.sourcePort}` : ''}`,
  ];
}

const MARK = '@@nflab-connection-end rc=';

export async function runTraffic(
  exec: Executor,
  wrap: (node: string, argv: string[]) => string[],
  display: (node: string, argv: string[]) => string,
  t: Traffic,
  options: { stopEarly?: StopEarly } = {},
): Promise<TrafficResult> {
  if (t.kind === 'ping') {
    const argv = pingArgv(t);
    if (options.stopEarly)
      return pingUntilDecided(exec, wrap(t.from, argv), display(t.from, argv), t, options.stopEarly);
    const r = await exec.run(wrap(t.from, argv));
    return { traffic: t, display: display(t.from, argv), ping: parsePing(r.stdout, r.stderr, r.code) };
  }
  if (t.kind === 'udp') {
    const argv = udpArgv(t);
    const sent: { exitCode: number; output: string }[] = [];
    for (let i = 0; i < (t.count ?? 1); i++) {
      const r = await exec.run(wrap(t.from, argv));
      sent.push({ exitCode: r.code ?? -1, output: (r.stdout + r.stderr).trim() });
    }
    return { traffic: t, display: display(t.from, argv), udp: sent };
  }
  const argv = tcpArgv(t);
  const n = t.connections ?? 1;
  if (options.stopEarly)
    return connectUntilDecided(exec, wrap(t.from, argv), display(t.from, argv), t, options.stopEarly);
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
      // stdout and stderr were merged: everything but the responder's answer came from stderr.
      const stderr = chunk.filter((l) => !/^\S+ client=\S+:\d+$/.test(l.trim())).join('\n');
      outcomes.push(parseTcpClient(text, stderr, Number(line.slice(MARK.length))));
      chunk = [];
    } else if (line !== '') chunk.push(line);
  }
  return { traffic: t, display: `${display(t.from, argv)}   # ${n} connections, one after another`, tcp: outcomes };
}

/** The ping runs as usual; once its last request is out (count − 1 intervals), `decide` is asked
 * every few milliseconds, and a reason ends the ping with SIGINT: it prints the same statistics it
 * prints at its timeout, so the outcome (transmitted, received 0) is what waiting would have given.
 * The argv must exec ping itself (ip netns exec does; a `docker exec` client would not pass SIGINT on). */
async function pingUntilDecided(
  exec: Executor,
  argv: string[],
  shown: string,
  t: PingTraffic,
  stop: StopEarly,
): Promise<TrafficResult> {
  const started = Date.now();
  const proc = exec.spawn(argv);
  let exited = false;
  const result = proc.exited.then((r) => {
    exited = true;
    return r;
  });
  const lastRequestAt = started + ((t.count ?? 1) - 1) * PING_INTERVAL_S * 1000;
  let decidedBy: string | undefined;
  while (!exited && decidedBy === undefined) {
    await Promise.race([result, new Promise((r) => setTimeout(r, stop.everyMs))]);
    if (exited || Date.now() < lastRequestAt) continue;
    decidedBy = await stop.decide();
  }
  if (decidedBy !== undefined && !exited) proc.kill('SIGINT');
  else decidedBy = undefined;
  const r = await result;
  const seconds = ((Date.now() - started) / 1000).toFixed(2);
  return {
    traffic: t,
    display: shown,
    ping: parsePing(r.stdout, r.stderr, r.code),
    ...(decidedBy
      ? { decidedBy: `stopped after ${seconds} s instead of waiting up to ${t.wait ?? 1} s for a reply: ${decidedBy}` }
      : {}),
  };
}

/** Each connection on its own (a decision is about one handshake): the client runs as usual, and
 * `decide` is asked every few milliseconds; a reason ends the client, and the outcome is the
 * timeout that waiting would have given. The argv must exec socat itself (ip netns exec does). */
async function connectUntilDecided(
  exec: Executor,
  argv: string[],
  shown: string,
  t: TcpTraffic,
  stop: StopEarly,
): Promise<TrafficResult> {
  const outcomes: TcpOutcome[] = [];
  const reasons: string[] = [];
  const n = t.connections ?? 1;
  for (let i = 0; i < n; i++) {
    await stop.begin?.();
    const started = Date.now();
    const proc = exec.spawn(argv);
    let exited = false;
    const result = proc.exited.then((r) => {
      exited = true;
      return r;
    });
    let decidedBy: string | undefined;
    while (!exited && decidedBy === undefined) {
      await Promise.race([result, new Promise((r) => setTimeout(r, stop.everyMs))]);
      if (!exited) decidedBy = await stop.decide();
    }
    if (decidedBy !== undefined && !exited) {
      proc.kill('SIGKILL');
      const r = await result;
      const seconds = ((Date.now() - started) / 1000).toFixed(2);
      outcomes.push({ result: 'timeout', output: `${r.stdout}${r.stderr}(stopped after ${seconds} s: ${decidedBy})` });
      reasons.push(
        `connection ${i + 1} stopped after ${seconds} s instead of waiting up to ${t.timeout ?? 2} s: ${decidedBy}`,
      );
    } else {
      const r = await result;
      outcomes.push(parseTcpClient(r.stdout, r.stderr, r.code));
    }
  }
  return {
    traffic: t,
    display: n === 1 ? shown : `${shown}   # ${n} connections, one after another`,
    tcp: outcomes,
    ...(reasons.length > 0 ? { decidedBy: reasons.join('; ') } : {}),
  };
}
