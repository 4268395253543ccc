// A byte stream to a TCP port as seen from inside a network namespace, for SSH to hosts that live
// in a namespace (an sshd in a test namespace, a VM whose qemu runs in one) without giving the root
// namespace an address or a route: `ip netns exec NS socat - TCP:HOST:PORT` carries the bytes.
import { spawn } from 'node:child_process';
import { Duplex } from 'node:stream';

export function socketThroughNetns(netns: string, host: string, port: number): Duplex {
  const address = host.includes(':') ? `[${host}]` : host;
  const child = spawn('ip', ['netns', 'exec', netns, 'socat', '-', `TCP:${address}:${port}`], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  // Writes to a socat that already failed are dropped: its exit status says what went wrong,
  // which is a better error than the EPIPE a write would raise first.
  child.stdin.on('error', () => {});
  const stream = new Duplex({
    read() {
      child.stdout.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      if (child.stdin.writable) child.stdin.write(chunk);
      callback();
    },
    final(callback) {
      child.stdin.end();
      callback();
    },
    destroy(err, callback) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      callback(err);
    },
  });
  child.stdout.on('data', (b: Buffer) => {
    if (!stream.push(b)) child.stdout.pause();
  });
  child.on('close', (code) => {
    if (code === 0 || stream.destroyed) stream.push(null);
    else
      stream.destroy(
        new Error(
          `cannot connect to ${address}:${port} in netns ${netns}: ${stderr.trim() || `socat exited with ${code}`}`,
        ),
      );
  });
  child.on('error', (e) => stream.destroy(e));
  return stream;
}
