// OpenSSH client configuration (ssh_config) as nflab reads it: `--target myvm` takes the host's
// HostName, User, Port, IdentityFile, ProxyJump (and the host key settings) from ~/.ssh/config or
// --ssh-config FILE, and `vagrant ssh-config` output is read the same way. Parsing and the Host
// matching (first value wins, patterns, negation) are the `ssh-config` package's; this module
// only turns its answer into connect options. `Match exec` is never evaluated: a config file is
// data, not a program nflab runs.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import SSHConfig from 'ssh-config';
import { EnvError, LabError } from '../errors.ts';
import type { SshConnectOptions } from './ssh.ts';

/** What ssh_config says about one host, with defaults applied and ~ and %-tokens expanded. */
export interface SshHostConfig {
  /** The name asked for (`Host myvm`). */
  alias: string;
  hostName: string;
  user: string;
  port: number;
  /** In order; a missing file is skipped like ssh does. Empty: ssh-agent and the default keys. */
  identityFiles: string[];
  /** The hops to go through first, nearest first (ProxyJump a,b: a then b). */
  proxyJump: SshHostConfig[];
  strictHostKeyChecking?: string;
  userKnownHostsFile?: string;
  proxyCommand?: string;
}

/** The config text with `Include` lines replaced by the files they name (ssh-config keeps them as lines). */
export function readSshConfigText(file: string, depth = 0): string {
  if (depth > 16) throw new LabError(`ssh_config ${file}: Include nests more than 16 deep`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LabError(`cannot read ssh_config ${file}: ${(e as Error).message}`);
  }
  return text
    .split(/\r?\n/)
    .map((line) => {
      const m = /^\s*include(?:\s*=\s*|\s+)(.+)$/i.exec(line);
      if (!m) return line;
      return splitWords(m[1]!)
        .flatMap((pattern) => includedFiles(pattern, dirname(file)))
        .map((f) => readSshConfigText(f, depth + 1))
        .join('\n');
    })
    .join('\n');
}

/** Include paths: relative ones are under ~/.ssh (as ssh reads the user's config); `*` and `?` in the last part. */
function includedFiles(pattern: string, base: string): string[] {
  const path = expandTilde(pattern);
  const full = isAbsolute(path) ? path : join(base === '/etc/ssh' ? base : join(homedir(), '.ssh'), path);
  const dir = dirname(full);
  const last = full.slice(dir.length + 1);
  if (!/[*?]/.test(last)) return existsSync(full) ? [full] : [];
  const re = globPattern(last);
  try {
    return readdirSync(dir)
      .filter((f) => re.test(f))
      .sort()
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

/** An ssh_config-style pattern (`*` any run, `?` one character) as an anchored RegExp. */
export function globPattern(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
}

function splitWords(s: string): string[] {
  return [...s.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

function expandTilde(p: string): string {
  return p === '~' ? homedir() : p.startsWith('~/') ? join(homedir(), p.slice(2)) : p;
}

/** The Host aliases a config names literally (no patterns), in file order: "the hosts of an ssh_config". */
export function sshConfigHosts(text: string): string[] {
  const hosts: string[] = [];
  for (const line of SSHConfig.parse(text)) {
    if (line.type !== SSHConfig.DIRECTIVE || line.param.toLowerCase() !== 'host') continue;
    const values = typeof line.value === 'string' ? splitWords(line.value) : line.value.map((v) => v.val);
    for (const v of values) if (!/[*?!]/.test(v) && !hosts.includes(v)) hosts.push(v);
  }
  return hosts;
}

/** Whether a name has a Host block of its own (a pattern such as `Host *` alone does not count). */
export function namesHost(text: string, alias: string): boolean {
  return sshConfigHosts(text).includes(alias);
}

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
const all = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Resolves `alias` as `ssh alias` would (the parts nflab uses). `source` names the config in errors. */
export function resolveSshHost(text: string, alias: string, source: string, seen: string[] = []): SshHostConfig {
  if (seen.includes(alias)) throw new LabError(`${source}: ProxyJump loops: ${[...seen, alias].join(' -> ')}`);
  const config = SSHConfig.parse(text);
  const c = config.compute(alias, { ignoreCase: true, matchExec: false });
  const hostName = (first(c.hostname) ?? alias).replace(/%h/g, alias);
  const user = first(c.user) ?? userInfo().username;
  const portText = first(c.port) ?? '22';
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535)
    throw new LabError(`${source}: Host ${alias}: Port ${portText} is not a port number`);
  const tokens = (s: string) =>
    s.replace(/%(.)/g, (m, t: string) =>
      t === '%'
        ? '%'
        : t === 'h'
          ? hostName
          : t === 'p'
            ? String(port)
            : t === 'r'
              ? user
              : t === 'u'
                ? userInfo().username
                : t === 'd'
                  ? homedir()
                  : t === 'n'
                    ? alias
                    : m,
    );
  const identityFiles = all(c.identityfile)
    .filter((f) => f.toLowerCase() !== 'none')
    .map((f) => tokens(expandTilde(f)));
  const jumpText = first(c.proxyjump);
  const proxyJump =
    jumpText === undefined || jumpText.toLowerCase() === 'none'
      ? []
      : jumpText.split(',').map((hop) => jumpHost(text, hop.trim(), source, [...seen, alias]));
  const knownHosts = first(c.userknownhostsfile);
  return {
    alias,
    hostName,
    user,
    port,
    identityFiles,
    proxyJump,
    ...(c.stricthostkeychecking !== undefined
      ? { strictHostKeyChecking: first(c.stricthostkeychecking)!.toLowerCase() }
      : {}),
    ...(knownHosts !== undefined ? { userKnownHostsFile: tokens(expandTilde(knownHosts)) } : {}),
    ...(c.proxycommand !== undefined && first(c.proxycommand)!.toLowerCase() !== 'none'
      ? { proxyCommand: all(c.proxycommand).join(' ') }
      : {}),
  };
}

/** One ProxyJump hop: `[user@]host[:port]` or `ssh://[user@]host[:port]`; the host part is itself looked up in the config. */
function jumpHost(text: string, hop: string, source: string, seen: string[]): SshHostConfig {
  const m = /^(?:ssh:\/\/)?(?:([^@\s]+)@)?(\[[0-9A-Fa-f:.]+\]|[^:@\s]+)(?::(\d{1,5}))?$/.exec(hop);
  if (!m) throw new LabError(`${source}: ProxyJump hop '${hop}' is not [user@]host[:port]`);
  const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  const resolved = resolveSshHost(text, host, source, seen);
  return {
    ...resolved,
    ...(m[1] !== undefined ? { user: m[1] } : {}),
    ...(m[3] !== undefined ? { port: Number(m[3]) } : {}),
  };
}

export interface SshOverrides {
  /** --identity: used for every hop instead of the config's IdentityFile. */
  identity?: string;
  /** --known-hosts: instead of the config's UserKnownHostsFile. */
  knownHosts?: string;
  /** --accept-new-host-key, or StrictHostKeyChecking accept-new/no in the config. */
  acceptNewHostKey?: boolean;
}

/**
 * SshExecutor.connect options for a resolved host, its ProxyJump hops chained through `via`.
 * StrictHostKeyChecking accept-new and no both become accept-new (a changed key is always
 * refused); a ProxyCommand is refused: nflab runs no command from a config file.
 */
export function connectOptionsFor(
  host: SshHostConfig,
  source: string,
  overrides: SshOverrides = {},
  fileExists: (path: string) => boolean = existsSync,
): SshConnectOptions {
  if (host.proxyCommand) {
    throw new EnvError(
      `${source}: Host ${host.alias} is reached through a ProxyCommand (${host.proxyCommand}), which nflab does not run`,
      'use ProxyJump, or a target sshd reaches directly (ssh://user@host:port)',
    );
  }
  const hostPart = host.hostName.includes(':') ? `[${host.hostName}]` : host.hostName;
  const identity = overrides.identity ?? host.identityFiles.find((f) => fileExists(f)) ?? host.identityFiles[0];
  const knownHosts = overrides.knownHosts ?? host.userKnownHostsFile;
  const lenient = host.strictHostKeyChecking === 'accept-new' || host.strictHostKeyChecking === 'no';
  let via: SshConnectOptions | undefined;
  // ProxyJump a,b: a as its own config says (its own ProxyJump too), then b through a.
  for (const [i, hop] of host.proxyJump.entries()) {
    const options = connectOptionsFor(i === 0 ? hop : { ...hop, proxyJump: [] }, source, overrides, fileExists);
    via = via ? { ...options, via } : options;
  }
  return {
    target: `ssh://${encodeURIComponent(host.user)}@${hostPart}:${host.port}`,
    ...(identity ? { identity } : {}),
    ...(knownHosts ? { knownHosts } : {}),
    acceptNewHostKey: (overrides.acceptNewHostKey ?? false) || lenient,
    ...(via ? { via } : {}),
  };
}
