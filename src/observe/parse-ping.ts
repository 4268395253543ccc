// Parses the output of iputils ping (20221126) and busybox ping (1.35) into counts and the error
// that explains a failure: a local error on stderr (`ping: connect: Network is unreachable`) or
// an ICMP error a router sent back (`From 10.55.66.1 icmp_seq=1 Destination Host Unreachable`).

import type { PingOutcome } from './types.ts';

/** iputils `1 packets transmitted, 0 received, +1 errors, 100% packet loss, time 0ms`; busybox `... 0 packets received, 100% packet loss`. */
const STATISTICS = /(\d+) packets transmitted, (\d+) (?:packets )?received,(?: .*?)? ([\d.]+)% packet loss/;
/** iputils reply `64 bytes from 10.55.66.3: icmp_seq=1 ttl=64 time=0.054 ms`; busybox `... seq=0 ttl=64 ...`. */
const REPLY = /^\d+ bytes from .*?(?:icmp_seq|seq)=(\d+)/;
/** iputils ICMP error: `From 10.55.66.1 icmp_seq=1 Destination Host Unreachable`. */
const ICMP_ERROR = /^From \S+ icmp_seq=(\d+) /;

/**
 * @param exitCode the exit status; null when the caller killed ping (reported as -1).
 */
export function parsePing(stdout: string, stderr: string, exitCode: number | null): PingOutcome {
  const output = stderr ? (stdout && !stdout.endsWith('\n') ? `${stdout}\n${stderr}` : stdout + stderr) : stdout;
  const lines = stdout.split('\n').map((l) => l.trim());

  const localError = stderr
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '');
  const icmpError = lines.find((l) => ICMP_ERROR.test(l));
  const error = localError ?? icmpError;

  let transmitted: number;
  let received: number;
  let loss: number;
  const stats = lines.map((l) => STATISTICS.exec(l)).find((m) => m !== null);
  if (stats) {
    transmitted = Number(stats[1]);
    received = Number(stats[2]);
    loss = Number(stats[3]);
  } else {
    // No summary: ping failed before sending, or was killed. Count what the lines show.
    const replies = lines.filter((l) => REPLY.test(l));
    const seqs = new Set(lines.map((l) => (REPLY.exec(l) ?? ICMP_ERROR.exec(l))?.[1]).filter((s) => s !== undefined));
    received = replies.length;
    transmitted = seqs.size;
    // Nothing got through when nothing was sent: 100% loss rather than 0/0.
    loss = transmitted === 0 ? 100 : Math.round((100 * (transmitted - Math.min(received, transmitted))) / transmitted);
  }

  return {
    transmitted,
    received,
    loss,
    ...(error !== undefined ? { error } : {}),
    exitCode: exitCode ?? -1,
    output,
  };
}
