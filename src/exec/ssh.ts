// Runs argv arrays on a remote machine over SSH (the ssh2 package), for `--target ssh://...`.
//
// The remote side always has a shell: each argv is quoted with shellQuote and wrapped as
//   exec [sudo -n] sh -c 'echo $$; exec "$@"' sh ARGV...
// so the first line of stdout is the PID of the command itself (sh execs it). That PID is how
// a command is stopped: a separate `kill -s SIG PID` exec, because closing an SSH channel without
// a pty does not signal the remote process. `sudo -n` is added when the remote user is not root.
//
// Host keys are checked against an OpenSSH known_hosts file like `ssh` does with
// StrictHostKeyChecking=yes; acceptNewHostKey is StrictHostKeyChecking=accept-new.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2'; // CommonJS: Node does not see its named exports
import type {
  AgentAuthMethod,
  Client,
  ClientChannel,
  ConnectConfig,
  PublicKeyAuthMethod,
  ServerHostKeyAlgorithm,
} from 'ssh2';
import { EnvError, LabError } from '../errors.ts';
import {
  checkHostKey,
  fingerprint,
  hostKeyAlgorithmsFor,
  keyTypeOf,
  knownHostName,
  knownHostsLine,
  parseKnownHosts,
  patternsMatch,
} from './known-hosts.ts';
import { lineSplitter } from './lines.ts';
import { shellQuote } from './quote.ts';
import type { Executor, Process, RunOptions, RunResult, SpawnOptions } from './types.ts';

export interface SshTarget {
  user: string;
  host: string;
  port: number;
}

/** `ssh://user@host[:port]` (IPv6 hosts in brackets). Without a user, the local user name, as ssh does. */
export function parseSshTarget(s: string): SshTarget {
  const m = /^ssh:\/\/(?:([^@/\s]+)@)?(\[[0-9A-Fa-f:.]+\]|[^:/@[\]\s]+)(?::(\d{1,5}))?\/?$/.exec(s);
  if (!m) throw new LabError(`invalid SSH target '${s}': expected ssh://user@host[:port]`);
  const port = m[3] === undefined ? 22 : Number(m[3]);
  if (port < 1 || port > 65535) throw new LabError(`invalid SSH target '${s}': port ${port} is out of range`);
  const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  return { user: m[1] === undefined ? userInfo().username : decodeURIComponent(m[1]), host, port };
}

export function formatSshTarget(t: SshTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return `ssh://${t.user}@${host}${t.port === 22 ? '' : `:${t.port}`}`;
}

export interface SshConnectOptions {
  /** ssh://user@host[:port] */
  target: string;
  /** Private key file (unencrypted). Without it: ssh-agent ($SSH_AUTH_SOCK) and ~/.ssh/id_{ed25519,ecdsa,rsa}. */
  identity?: string;
  /** OpenSSH known_hosts file; default ~/.ssh/known_hosts. */
  knownHosts?: string;
  /** Trust a host that is not in known_hosts yet and append its key there (--accept-new-host-key). A changed key is still refused. */
  acceptNewHostKey?: boolean;
  /**
   * Reach the host through this stream instead of a TCP connection from this namespace, e.g. a
   * host inside a network namespace: `sock: () => socketThroughNetns('ns1', '127.0.0.1', 22)`.
   * A factory, because the executor opens one more SSH connection whenever the open ones carry
   * MAX_CHANNELS_PER_CONNECTION commands. The target's host and port still name the known_hosts entry.
   */
  sock?: () => Duplex | Promise<Duplex>;
  /** ProxyJump: reach the host through this one (itself maybe through another): each connection is
   * a direct-tcpip channel (forwardOut) of one SSH connection to the jump host, made on first use. */
  via?: SshConnectOptions;
  /** Time allowed for TCP connect + handshake + authentication; default 60 s: a VM under software
   * emulation on a busy machine can take tens of seconds for the key exchange of an extra connection. */
  readyTimeoutMs?: number;
}

/** OpenSSH's sshd allows 10 sessions per connection (MaxSessions); stay below it. */
export const MAX_CHANNELS_PER_CONNECTION = 8;

const SUPPORTED_HOST_KEY_ALGORITHMS = new Set<string>([
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
]);

interface Connection {
  client: Client;
  channels: number;
  closed: boolean;
}

/** Dials new SSH connections to one host; after the first, the host key is pinned to the one verified.
 * close() ends the connections to its jump hosts. */
type Dial = { (): Promise<Client>; close(): void };

export class SshExecutor implements Executor {
  readonly name: string;
  private readonly connections: Connection[] = [];
  private opening: Promise<void> | undefined;
  private readonly live = new Set<RemoteProcess>();
  private closed = false;
  /** ['sudo', '-n'] when the remote user is not root, else []. */
  private sudo: string[] = [];

  private constructor(
    readonly target: SshTarget,
    private readonly dial: Dial,
  ) {
    this.name = formatSshTarget(target);
  }

  static async connect(opts: SshConnectOptions): Promise<SshExecutor> {
    const target = parseSshTarget(opts.target);
    const executor = new SshExecutor(target, makeDial(target, opts));
    try {
      await executor.checkPrivileges();
    } catch (e) {
      await executor.close();
      throw e;
    }
    return executor;
  }

  /** Whether commands run as root (directly, or through sudo -n). */
  get usesSudo(): boolean {
    return this.sudo.length > 0;
  }

  private async checkPrivileges(): Promise<void> {
    const id = await this.raw(['id', '-u']);
    if (id.stdout.trim() === '0') return;
    const sudo = await this.raw(['sudo', '-n', 'true']);
    if (sudo.code !== 0) {
      throw new EnvError(
        `${this.target.user} on ${this.name} is not root and cannot run sudo without a password` +
          (sudo.stderr.trim() ? ` (${sudo.stderr.trim()})` : ''),
        `connect as root (ssh://root@${this.target.host}...), or allow passwordless sudo for ` +
          `${this.target.user} there: echo '${this.target.user} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/nflab`,
      );
    }
    this.sudo = ['sudo', '-n'];
  }

  /** The remote command line: exec'ed so the command is the session's process, PID printed first. */
  private wrap(argv: string[], detached = false): string {
    if (argv.length === 0) throw new LabError(`empty command for ${this.name}`);
    const script = detached ? 'setsid "$@" </dev/null >/dev/null 2>&1 & echo $!; wait $!' : 'echo $$; exec "$@"';
    return `exec ${shellQuote([...this.sudo, 'sh', '-c', script, 'sh', ...argv])}`;
  }

  /** Runs argv as is (no PID wrapper, no sudo): used for probes and kill. */
  private async raw(argv: string[]): Promise<RunResult> {
    const ch = await this.channel(shellQuote(argv));
    return collect(ch, undefined, noPid);
  }

  async run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
    const ch = await this.channel(this.wrap(argv));
    let pid: number | undefined;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        if (pid !== undefined) void this.signal(pid, 'SIGKILL');
      }, options.timeoutMs);
    }
    const result = await collect(ch, options.stdin, (p) => {
      pid = p;
      if (timedOut) void this.signal(p, 'SIGKILL');
    }).finally(() => clearTimeout(timer));
    if (timedOut) return { ...result, code: null };
    if (result.code === 127 && /not found|No such file/.test(result.stderr)) {
      throw new EnvError(
        `command '${argv[0]}' is not available on ${this.name} (exit 127: ${result.stderr.trim()})`,
        `install the package that provides ${argv[0]} on ${this.target.host} (apt-get install ...)`,
      );
    }
    return result;
  }

  spawn(argv: string[], options: SpawnOptions = {}): Process {
    const proc = new RemoteProcess(this, argv[0] ?? '');
    if (!options.detached) this.live.add(proc);
    void proc.exited.then(() => this.live.delete(proc));
    this.channel(this.wrap(argv, options.detached ?? false)).then(
      (ch) => proc.attach(ch),
      (e: unknown) => proc.fail(e),
    );
    return proc;
  }

  /** Sends a signal to a remote PID with a separate exec (the only reliable way without a pty). */
  async signal(pid: number, signal: NodeJS.Signals): Promise<void> {
    try {
      await this.raw([...this.sudo, 'kill', '-s', signal.replace(/^SIG/, ''), String(pid)]);
    } catch {
      // The connection is gone: so is the process's session, and there is nothing left to signal.
    }
  }

  /** Stops the commands started with spawn (not detached ones), then closes the connections. */
  async close(): Promise<void> {
    await Promise.all([...this.live].map((p) => p.stop()));
    this.closed = true;
    for (const c of this.connections) c.client.end();
    this.dial.close();
  }

  private async channel(command: string): Promise<ClientChannel> {
    const conn = await this.reserveChannel();
    try {
      const ch = await new Promise<ClientChannel>((resolve, reject) =>
        conn.client.exec(command, (err, stream) => (err ? reject(err) : resolve(stream))),
      );
      ch.once('close', () => {
        conn.channels--;
      });
      return ch;
    } catch (e) {
      conn.channels--;
      throw new EnvError(
        `could not start a command on ${this.name}: ${(e as Error).message}`,
        `check that ${this.target.host} is still up and that sshd allows ${MAX_CHANNELS_PER_CONNECTION}+ sessions (MaxSessions)`,
      );
    }
  }

  /** A connection with a free session slot, the slot already counted (commands start concurrently). */
  private async reserveChannel(): Promise<Connection> {
    for (;;) {
      if (this.closed) throw new Error(`SSH executor for ${this.name} is closed`);
      const free = this.connections.find((c) => !c.closed && c.channels < MAX_CHANNELS_PER_CONNECTION);
      if (free) {
        free.channels++;
        return free;
      }
      this.opening ??= this.dial()
        .then((client) => {
          const conn: Connection = { client, channels: 0, closed: false };
          const gone = () => {
            conn.closed = true;
          };
          client.on('close', gone).on('end', gone).on('error', gone);
          this.connections.push(conn);
        })
        .finally(() => {
          this.opening = undefined;
        });
      await this.opening;
    }
  }
}

/** A spawned remote command: output arrives as lines; the first stdout line is its PID. */
class RemoteProcess implements Process {
  pid: number | undefined;
  readonly exited: Promise<RunResult>;
  private resolveExited!: (r: RunResult) => void;
  private readonly outListeners: ((line: string) => void)[] = [];
  private readonly errListeners: ((line: string) => void)[] = [];
  private readonly out: string[] = [];
  private readonly err: string[] = [];
  private pendingSignal: NodeJS.Signals | undefined;
  private done = false;
  private readonly pidKnown: Promise<number>;
  private resolvePid!: (pid: number) => void;

  constructor(
    private readonly executor: SshExecutor,
    private readonly command: string,
  ) {
    this.exited = new Promise((resolve) => {
      this.resolveExited = resolve;
    });
    this.pidKnown = new Promise((resolve) => {
      this.resolvePid = resolve;
    });
  }

  /** TERM, then KILL if still running after graceMs; resolves once the signals were delivered and it exited (or gave up). */
  async stop(graceMs = 3000): Promise<void> {
    const pid = await Promise.race([this.pidKnown, this.exited.then(() => undefined)]);
    if (pid === undefined || this.done) return;
    await this.executor.signal(pid, 'SIGTERM');
    if (await exitsWithin(this.exited, graceMs)) return;
    await this.executor.signal(pid, 'SIGKILL');
    await exitsWithin(this.exited, graceMs);
  }

  attach(ch: ClientChannel): void {
    let code: number | null = null;
    ch.on(
      'data',
      lineSplitter((line) => {
        if (this.pid === undefined) {
          this.pid = Number(line);
          this.resolvePid(this.pid);
          if (this.pendingSignal) this.kill(this.pendingSignal);
          return;
        }
        this.out.push(line);
        this.outListeners.forEach((fn) => fn(line));
      }),
    );
    ch.stderr.on(
      'data',
      lineSplitter((line) => {
        this.err.push(line);
        this.errListeners.forEach((fn) => fn(line));
      }),
    );
    ch.on('exit', (c: number | null) => {
      code = typeof c === 'number' ? c : null;
    });
    ch.on('close', () => this.finish({ code, stdout: this.out.join('\n'), stderr: this.err.join('\n') }));
    ch.end();
  }

  fail(e: unknown): void {
    this.finish({ code: null, stdout: '', stderr: `${this.command}: could not start: ${(e as Error).message}` });
  }

  private finish(r: RunResult): void {
    if (this.done) return;
    this.done = true;
    this.resolveExited(r);
  }

  onStdoutLine(fn: (line: string) => void): void {
    this.outListeners.push(fn);
  }
  onStderrLine(fn: (line: string) => void): void {
    this.errListeners.push(fn);
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.done) return;
    if (this.pid === undefined) this.pendingSignal = signal;
    else void this.executor.signal(this.pid, signal);
  }
}

/** Reads a wrapped command's channel to the end: PID line (reported via onPid), stdout, stderr, exit. */
function collect(ch: ClientChannel, stdin: string | undefined, onPid: (pid: number) => void): Promise<RunResult> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let head: Buffer | undefined = onPid === noPid ? undefined : Buffer.alloc(0);
    let code: number | null = null;
    ch.on('data', (b: Buffer) => {
      if (head === undefined) {
        out.push(b);
        return;
      }
      head = Buffer.concat([head, b]);
      const nl = head.indexOf(0x0a);
      if (nl < 0) return;
      onPid(Number(head.subarray(0, nl).toString()));
      out.push(head.subarray(nl + 1));
      head = undefined;
    });
    ch.stderr.on('data', (b: Buffer) => err.push(b));
    ch.on('exit', (c: number | null) => {
      code = typeof c === 'number' ? c : null;
    });
    ch.on('close', () =>
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
    ch.end(stdin ?? '');
  });
}
const noPid = () => {};

function exitsWithin(exited: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  return Promise.race([exited.then(() => true), timeout]).finally(() => clearTimeout(timer));
}

function defaultKnownHosts(): string {
  return join(homedir(), '.ssh', 'known_hosts');
}

function makeDial(target: SshTarget, opts: SshConnectOptions): Dial {
  const name = formatSshTarget(target);
  const knownHostsFile = opts.knownHosts ?? defaultKnownHosts();
  const auth = authMethods(target, name, opts.identity);
  let pinned: Buffer | undefined;
  const hop = opts.via ? jumpThrough(target, name, opts.via) : undefined;

  const dial = async () => {
    const text = existsSync(knownHostsFile) ? readFileSync(knownHostsFile, 'utf8') : '';
    const entries = parseKnownHosts(text);
    const hostName = knownHostName(target.host, target.port);
    // Ask for the key types on record first, so a host with several keys offers the one we know.
    const preferred = [
      ...new Set(
        entries
          .filter((e) => e.marker === undefined && patternsMatch(e.patterns, hostName))
          .flatMap((e) => hostKeyAlgorithmsFor(e.keyType))
          .filter((a) => SUPPORTED_HOST_KEY_ALGORITHMS.has(a)),
      ),
    ] as ServerHostKeyAlgorithm[];
    const sock = hop ? await hop.channel() : opts.sock ? await opts.sock() : undefined;

    return new Promise<Client>((resolve, reject) => {
      const client = new ssh2.Client();
      let refusal: EnvError | undefined;
      const hostVerifier = (key: Buffer): boolean => {
        if (pinned) {
          if (key.equals(pinned)) return true;
          refusal = changedKeyError(
            name,
            hostName,
            key,
            [`the key verified earlier in this session (${fingerprint(pinned)})`],
            knownHostsFile,
          );
          return false;
        }
        const verdict = checkHostKey(entries, target.host, target.port, key);
        switch (verdict.kind) {
          case 'match':
            break;
          case 'revoked':
            refusal = new EnvError(
              `the host key of ${hostName} (${name}) is marked @revoked in ${knownHostsFile}:${verdict.entry.line} ` +
                `(${keyTypeOf(key)} ${fingerprint(key)}); refusing to connect`,
              `find out why the key was revoked; the host needs a new host key`,
            );
            return false;
          case 'changed':
            refusal = changedKeyError(
              name,
              hostName,
              key,
              verdict.known.map((e) => `${knownHostsFile}:${e.line} (${e.keyType} ${fingerprint(e.key)})`),
              knownHostsFile,
            );
            return false;
          case 'unknown':
            if (!opts.acceptNewHostKey) {
              refusal = new EnvError(
                `the host key of ${hostName} (${name}) is not known: it is not in ${knownHostsFile}.\n` +
                  `  ${keyTypeOf(key)} key fingerprint is ${fingerprint(key)}`,
                `check that fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_${shortType(key)}_key.pub), ` +
                  `then run again with --accept-new-host-key to add it to ${knownHostsFile}`,
              );
              return false;
            }
            mkdirSync(dirname(knownHostsFile), { recursive: true, mode: 0o700 });
            appendFileSync(knownHostsFile, knownHostsLine(target.host, target.port, key), { mode: 0o600 });
            break;
        }
        pinned = key;
        return true;
      };
      client.on('ready', () => resolve(client));
      client.on('error', (err: Error & { level?: string }) =>
        reject(refusal ?? connectionError(err, target, name, opts)),
      );
      // A handshake cut short by sshd (MaxStartups, a closed socket) ends without 'error'.
      client.on('close', () =>
        reject(refusal ?? new EnvError(`${name} closed the connection during the SSH handshake`, reachFix(target))),
      );
      const config: ConnectConfig = {
        host: target.host,
        port: target.port,
        username: target.user,
        authHandler: auth(),
        hostVerifier,
        readyTimeout: opts.readyTimeoutMs ?? 60_000,
        // A connection is declared dead after 2 minutes without an answer, not 45 s (ssh2's default count is 3).
        keepaliveInterval: 15_000,
        keepaliveCountMax: 8,
        ...(sock ? { sock } : {}),
        ...(preferred.length > 0
          ? { algorithms: { serverHostKey: { prepend: preferred, append: [], remove: [] } } }
          : {}),
      };
      client.connect(config);
    });
  };
  return Object.assign(dial, { close: () => hop?.close() });
}

/** One SSH connection to a jump host, opened when first needed (and again if it dropped), carrying
 * a forwardOut channel to the target for every connection the executor dials. */
function jumpThrough(
  target: SshTarget,
  name: string,
  via: SshConnectOptions,
): { channel: () => Promise<Duplex>; close: () => void } {
  const dialJump = makeDial(parseSshTarget(via.target), via);
  let jump: Promise<Client> | undefined;
  let clients: Client[] = [];
  const connect = () => {
    const p = dialJump().then((client) => {
      clients.push(client);
      const gone = () => {
        if (jump === p) jump = undefined;
      };
      client.on('close', gone).on('end', gone).on('error', gone);
      return client;
    });
    p.catch(() => {
      if (jump === p) jump = undefined;
    });
    return p;
  };
  return {
    async channel() {
      jump ??= connect();
      const client = await jump;
      return new Promise<Duplex>((resolve, reject) =>
        client.forwardOut('127.0.0.1', 0, target.host, target.port, (err, ch) =>
          err
            ? reject(
                new EnvError(
                  `the jump host ${via.target} could not open a connection to ${name}: ${err.message}`,
                  `check that ${via.target} reaches ${target.host}:${target.port} (ssh -J ${via.target.replace(/^ssh:\/\//, '')} ...) and that its sshd allows TCP forwarding (AllowTcpForwarding)`,
                ),
              )
            : resolve(ch),
        ),
      );
    },
    close() {
      for (const c of clients) c.end();
      clients = [];
      dialJump.close();
    },
  };
}

function shortType(key: Buffer): string {
  const t = keyTypeOf(key);
  if (t.startsWith('ecdsa')) return 'ecdsa';
  return t.replace(/^ssh-/, '');
}

function changedKeyError(name: string, hostName: string, key: Buffer, known: string[], file: string): EnvError {
  return new EnvError(
    `@@@ WARNING: THE HOST KEY OF ${hostName} (${name}) HAS CHANGED! @@@\n` +
      `  Someone could be intercepting the connection, or the machine was reinstalled. Refusing to connect.\n` +
      `  offered: ${keyTypeOf(key)} ${fingerprint(key)}\n` +
      known.map((k) => `  on record: ${k}`).join('\n'),
    `only if you know the machine was reinstalled: ssh-keygen -R '${hostName}' -f ${file}, then connect ` +
      `again with --accept-new-host-key (which never replaces a changed key by itself)`,
  );
}

function reachFix(target: SshTarget): string {
  return (
    `check that ${target.host} is up and sshd listens on port ${target.port} ` +
    `(for the nflab VM: scripts/vm/boot.sh; for Vagrant: vagrant up)`
  );
}

function connectionError(
  err: Error & { level?: string },
  target: SshTarget,
  name: string,
  opts: SshConnectOptions,
): EnvError {
  if (err.level === 'client-authentication') {
    return new EnvError(
      `authentication failed for ${name}: the server refused ` +
        (opts.identity ? `the key ${opts.identity}` : 'ssh-agent and the default keys in ~/.ssh'),
      `pass --identity <private key> whose public key is in ~${target.user}/.ssh/authorized_keys on ${target.host}`,
    );
  }
  return new EnvError(`cannot reach ${name}: ${err.message}`, reachFix(target));
}

/** The ways to log in, tried in order: the given identity, or ssh-agent and ssh's default key files. */
function authMethods(
  target: SshTarget,
  name: string,
  identity: string | undefined,
): () => (PublicKeyAuthMethod | AgentAuthMethod)[] {
  const username = target.user;
  const readKey = (file: string, required: boolean): Buffer | undefined => {
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch (e) {
      if (!required) return undefined;
      throw new EnvError(
        `cannot read the SSH identity ${file} for ${name}: ${(e as Error).message}`,
        'pass an existing private key file to --identity',
      );
    }
    const parsed = ssh2.utils.parseKey(data);
    if (parsed instanceof Error) {
      if (!required) return undefined;
      throw new EnvError(
        `cannot use the SSH identity ${file} for ${name}: ${parsed.message}`,
        /encrypt|passphrase/i.test(parsed.message)
          ? 'load the key into ssh-agent (ssh-add) and omit --identity, or use a key without a passphrase'
          : 'pass an OpenSSH or PEM private key file to --identity',
      );
    }
    return data;
  };
  if (identity) {
    const key = readKey(identity, true)!;
    return () => [{ type: 'publickey', username, key }];
  }
  return () => {
    const methods: (PublicKeyAuthMethod | AgentAuthMethod)[] = [];
    if (process.env.SSH_AUTH_SOCK) methods.push({ type: 'agent', username, agent: process.env.SSH_AUTH_SOCK });
    for (const f of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
      const key = readKey(join(homedir(), '.ssh', f), false);
      if (key) methods.push({ type: 'publickey', username, key });
    }
    return methods;
  };
}
