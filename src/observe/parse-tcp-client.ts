// TCP reachability is probed with socat on both ends: a responder that answers every connection
// with its node name and the client address it saw, and a client that prints that answer. The
// answer proves which node was reached and whether the source was translated on the way.

import type { TcpOutcome } from './types.ts';

/**
 * argv of the responder: `socat TCP-LISTEN:<port>,fork,reuseaddr SYSTEM:'echo "<node> client=$SOCAT_PEERADDR:$SOCAT_PEERPORT"'`.
 * The SYSTEM: address is one argv element; socat hands the text after `SYSTEM:` to /bin/sh, which
 * expands the two variables socat sets for each accepted connection.
 */
export function responderArgv(node: string, port: number): string[] {
  if (!/^[A-Za-z0-9_.-]+$/.test(node)) {
    // The name is pasted into a shell command line and must survive socat's own address parsing.
    throw new Error(`responder node name ${JSON.stringify(node)} may only contain letters, digits, '_', '.', '-'`);
  }
  checkPort(port, 'responder port');
  return ['socat', `TCP-LISTEN:${port},fork,reuseaddr`, `SYSTEM:echo "${node} client=$SOCAT_PEERADDR:$SOCAT_PEERPORT"`];
}

/**
 * argv of one client connection: `socat -T<t> - TCP:<ip>:<port>,connect-timeout=<t>[,sourceport=<p>]`.
 * Run it with an empty, closed standard input (`</dev/null`) so socat half-closes at once and
 * exits when the responder has answered.
 */
export function tcpClientArgv(to: string, port: number, opts: { timeout: number; sourcePort?: number }): string[] {
  checkPort(port, 'destination port');
  if (!(opts.timeout > 0))
    throw new Error(`TCP client timeout must be a positive number of seconds, got ${opts.timeout}`);
  const host = to.includes(':') ? `[${to}]` : to;
  let address = `TCP:${host}:${port},connect-timeout=${opts.timeout}`;
  if (opts.sourcePort !== undefined) {
    checkPort(opts.sourcePort, 'source port');
    address += `,sourceport=${opts.sourcePort}`;
  }
  return ['socat', `-T${opts.timeout}`, '-', address];
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new Error(`${what} must be an integer 1-65535, got ${port}`);
}

/** The responder's answer, e.g. `c1 client=10.55.66.2:47960` (IPv6 peers print without brackets). */
const ANSWER = /^(\S+) client=(\S+):(\d+)$/;

/** socat's error lines: `2026/11/23 00:05:29 socat[5861] E connect(5, AF=2 10.55.66.3:8001, 16): Connection refused`. */
const SOCAT_ERROR = /socat\[\d+\] E (.*)$/;

/**
 * Classifies one client run from its output and exit status (null: killed by the caller's timeout).
 */
export function parseTcpClient(stdout: string, stderr: string, exitCode: number | null): TcpOutcome {
  const output = joinOutput(stdout, stderr);
  const errorLine = stderr
    .split('\n')
    .map((l) => SOCAT_ERROR.exec(l.trim())?.[1])
    .find((m) => m !== undefined);
  const error = errorLine ?? (stderr.trim() ? stderr.trim().split('\n')[0] : undefined);

  const answer = stdout
    .split('\n')
    .map((l) => ANSWER.exec(l.trim()))
    .find((m) => m !== null);
  if (answer) {
    // The responder only answers an established connection, whatever socat reported afterwards.
    const seen = { answeredBy: answer[1]!, clientSeen: answer[2]!, clientPort: Number(answer[3]) };
    return { result: 'connects', ...seen, ...(error !== undefined ? { error } : {}), output };
  }

  const text = error ?? '';
  if (/Connection refused/i.test(text)) return { result: 'refused', error, output };
  if (/Network is unreachable|No route to host|Host is unreachable/i.test(text))
    return { result: 'unreachable', error, output };
  // socat 1.8 (Debian 13) reports its connect-timeout with the errno of the connect still pending
  // when the timer fired ("TCP:10.0.0.1:80: Operation now in progress"); 1.7 says "Connection timed out".
  if (/timed out|Operation now in progress/i.test(text)) return { result: 'timeout', error, output };
  // Killed by the caller's own deadline: nothing answered in time.
  if (exitCode === null) return { result: 'timeout', error, output };
  // Connected and closed cleanly, but nothing (or something unexpected) was answered.
  if (exitCode === 0 && errorLine === undefined) return { result: 'connects', output };
  return { result: 'error', error: error ?? `socat exited with status ${exitCode}`, output };
}

function joinOutput(stdout: string, stderr: string): string {
  if (!stderr) return stdout;
  if (!stdout) return stderr;
  return stdout.endsWith('\n') ? stdout + stderr : `${stdout}\n${stderr}`;
}
