// tcpdump on one interface of one node for the duration of a step's traffic.
import type { Executor, Process } from '../exec/types.ts';
import type { PacketRecord } from './types.ts';
import { parseTcpdumpLine } from './parse-tcpdump.ts';

export interface Capture {
  node: string;
  iface: string;
  /** Stops tcpdump once it has printed every packet the kernel handed it, and returns them. */
  stop(): Promise<{ packets: PacketRecord[]; error?: string }>;
}

/** `tcpdump: 3 packets captured, 3 packets received by filter, 0 packets dropped by kernel` (on SIGUSR1). */
const STATS = /(\d+) packets? captured, (\d+) packets? received by filter/;
const STOP_DEADLINE_MS = 3000;

/** Where to keep a capture as a pcap file as well (`--pcap DIR`): tcpdump writes it (-w) while it
 * prints the text this module reads (--print), so both come from one capture. */
export interface PcapOptions {
  /** The file to write, on the machine the lab runs on. */
  file: string;
}

export async function startCapture(
  exec: Executor,
  argvInNode: (argv: string[]) => string[],
  node: string,
  iface: string,
  pcap?: PcapOptions,
): Promise<Capture> {
  // -Z root: with -w tcpdump otherwise drops to its own user, who may not write in the user's directory.
  const keep = pcap ? ['-Z', 'root', '-w', pcap.file, '--print'] : [];
  const proc: Process = exec.spawn(
    argvInNode(['tcpdump', '-nn', '-l', '-U', '--immediate-mode', '-i', iface, ...keep]),
  );
  const packets: PacketRecord[] = [];
  const errors: string[] = [];
  let printed = 0;
  let onStats: ((captured: number, received: number) => void) | undefined;
  proc.onStdoutLine((line) => {
    if (line.trim() === '') return;
    printed++;
    const record = parseTcpdumpLine(line);
    if (record) packets.push(record);
  });
  // Readiness: tcpdump says "listening on" once its socket is bound, not before. One that ends
  // before that saw nothing: a capture error, never "0 captured".
  let listening = false;
  await new Promise<void>((resolve) => {
    proc.onStderrLine((line) => {
      const stats = STATS.exec(line);
      if (stats) onStats?.(Number(stats[1]), Number(stats[2]));
      else if (line.includes('listening on')) {
        listening = true;
        resolve();
      } else if (/No such device|permission|syntax error|can't|cannot/i.test(line)) {
        errors.push(line);
        resolve();
      }
    });
    void proc.exited.then((r) => {
      if (!listening && errors.length === 0)
        errors.push(
          `tcpdump on ${node}:${iface} ended before it was listening (${r.stderr.trim() || `exit ${r.code}`})`,
        );
      resolve();
    });
  });

  /** Asks tcpdump (SIGUSR1) how many packets the kernel gave it and how many it has printed. */
  const stats = () =>
    new Promise<{ captured: number; received: number } | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 300);
      onStats = (captured, received) => {
        clearTimeout(timer);
        resolve({ captured, received });
      };
      proc.kill('SIGUSR1');
    });

  return {
    node,
    iface,
    async stop() {
      // Killing tcpdump discards packets it has received but not yet printed (under load that is
      // real). So wait until it has printed all the kernel delivered, and we have read them all.
      // On lo the kernel counts each packet twice (outgoing and incoming); tcpdump prints it once.
      const deadline = Date.now() + STOP_DEADLINE_MS;
      while (errors.length === 0 && Date.now() < deadline) {
        const s = await stats();
        if (s && (iface === 'lo' ? s.captured * 2 >= s.received : s.captured >= s.received) && printed >= s.captured)
          break;
        await new Promise((r) => setTimeout(r, 10));
      }
      proc.kill('SIGINT');
      await proc.exited;
      if (pcap) await handToUser(exec, pcap.file);
      return { packets, error: errors.length > 0 ? errors.join('; ') : undefined };
    },
  };
}

/** A pcap file's name: the parts that say which capture it is (lab, step or check, node, interface),
 * each reduced to characters safe in a file name. */
export function pcapName(...parts: (string | number)[]): string {
  return `${parts.map((p) => String(p).replace(/[^A-Za-z0-9_.-]+/g, '_')).join('-')}.pcap`;
}

/** Makes the directory for --pcap files (on the machine the lab runs on). */
export async function preparePcapDir(exec: Executor, dir: string): Promise<void> {
  const r = await exec.run(['mkdir', '-p', '--', dir]);
  if (r.code !== 0) throw new Error(`could not make the --pcap directory ${dir}: ${r.stderr.trim()}`);
}

/** Under sudo, the file belongs to the user who asked for it, not to root. */
async function handToUser(exec: Executor, file: string): Promise<void> {
  const uid = process.env.SUDO_UID;
  const gid = process.env.SUDO_GID;
  if (exec.name === 'this machine' && uid && /^\d+$/.test(uid))
    await exec.run(['chown', `${uid}${gid && /^\d+$/.test(gid) ? `:${gid}` : ''}`, '--', file]);
}

/** A capture kept only as a pcap file (nflab trace --pcap): every interface of the node, or those
 * the BPF filter selects. stop() ends tcpdump once it has written what the kernel gave it. */
export async function startPcap(
  exec: Executor,
  argvInNode: (argv: string[]) => string[],
  file: string,
  bpf?: string,
): Promise<{ file: string; stop(): Promise<{ error?: string }> }> {
  const capture = await startCapture(
    exec,
    (argv) => argvInNode(bpf ? [...argv, '--', ...bpf.split(/\s+/)] : argv),
    'node',
    'any',
    { file },
  );
  return {
    file,
    async stop() {
      const r = await capture.stop();
      return r.error ? { error: r.error } : {};
    },
  };
}
