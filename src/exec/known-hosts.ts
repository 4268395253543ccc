// Reads OpenSSH known_hosts files and decides whether a server's host key is the one on record.
// Format (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): [@marker] patterns keytype base64-key [comment],
// where patterns are comma-separated names with * ? wildcards and ! negation, or one hashed name
// |1|base64(salt)|base64(HMAC-SHA1(salt, name)). A name is `host` on port 22, `[host]:port` otherwise.
import { createHash, createHmac } from 'node:crypto';

export interface KnownHostEntry {
  /** '@revoked' and '@cert-authority' lines; plain lines have none. */
  marker?: string;
  patterns: string;
  keyType: string;
  key: Buffer;
  /** 1-based line number, for messages. */
  line: number;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    const marker = fields[0]!.startsWith('@') ? fields.shift() : undefined;
    const [patterns, keyType, b64] = fields;
    if (!patterns || !keyType || !b64) return; // malformed lines are skipped, as ssh does
    const key = Buffer.from(b64, 'base64');
    if (key.length === 0) return;
    entries.push({ ...(marker ? { marker } : {}), patterns, keyType, key, line: i + 1 });
  });
  return entries;
}

/** The name a known_hosts line uses for this host and port. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatches(pattern: string, name: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i').test(name);
}

function hashedMatches(field: string, name: string): boolean {
  const [, , salt, hash] = field.split('|');
  if (!salt || !hash) return false;
  const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
  return mac === hash;
}

/** Whether a line's host field names `name`: a negated pattern that matches excludes the line. */
export function patternsMatch(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) return hashedMatches(patterns, name);
  let matched = false;
  for (const p of patterns.split(',')) {
    if (p.startsWith('!')) {
      if (globMatches(p.slice(1), name)) return false;
    } else if (globMatches(p, name)) matched = true;
  }
  return matched;
}

/** The algorithm name inside an SSH wire-format public key blob (uint32 length + name). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}

/** The fingerprint ssh prints: SHA256 of the key blob, base64 without padding. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export type HostKeyVerdict =
  | { kind: 'match'; entry: KnownHostEntry }
  | { kind: 'unknown' }
  /** The host is on record with other keys: the key changed (or a server is impersonating it). */
  | { kind: 'changed'; known: KnownHostEntry[] }
  | { kind: 'revoked'; entry: KnownHostEntry };

export function checkHostKey(entries: KnownHostEntry[], host: string, port: number, blob: Buffer): HostKeyVerdict {
  const name = knownHostName(host, port);
  const revoked = entries.find((e) => e.marker === '@revoked' && e.key.equals(blob));
  if (revoked) return { kind: 'revoked', entry: revoked };
  // Certificate authorities are not supported: such lines are ignored rather than trusted.
  const forHost = entries.filter((e) => e.marker === undefined && patternsMatch(e.patterns, name));
  const same = forHost.find((e) => e.key.equals(blob));
  if (same) return { kind: 'match', entry: same };
  if (forHost.length > 0) return { kind: 'changed', known: forHost };
  return { kind: 'unknown' };
}

/** A known_hosts line recording this key for this host (plain, not hashed, so people can read it). */
export function knownHostsLine(host: string, port: number, blob: Buffer): string {
  return `${knownHostName(host, port)} ${keyTypeOf(blob)} ${blob.toString('base64')}\n`;
}

/** ssh's host key algorithm names that can verify a key of this known_hosts type. */
export function hostKeyAlgorithmsFor(keyType: string): string[] {
  return keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [keyType];
}
