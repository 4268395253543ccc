// Parses an xt_recent list as the kernel prints it in /proc/net/xt_recent/<list> (one line per
// remembered address), e.g.
//   src=10.244.0.10 ttl: 64 last_seen: 4295201254 oldest_pkt: 6 4295201152, 4295201152, 4295201203, ...
// kube-proxy's ClientIP affinity keeps one list per endpoint chain (`-m recent --set --name KUBE-SEP-…`).

export interface RecentEntry {
  /** The remembered address (the source, with --rsource). */
  address: string;
  ttl: number;
  /** Jiffies of the last packet that updated the entry. */
  lastSeen: number;
  /** How many packet times the entry holds (at most ip_pkt_list_tot, 20 by default). */
  hits: number;
  /** An nftables set element: when it expires (nft's words, e.g. 2h59m58s). */
  expires?: string;
  line: string;
}

/**
 * The elements of an nftables set as `nft list set` prints them (kube-proxy's affinity sets, e.g.
 * `elements = { 10.244.0.10 timeout 3h expires 2h59m58s }`), as entries of the same shape.
 */
export function parseNftSetElements(text: string): RecentEntry[] {
  const m = /elements = \{([^}]*)\}/s.exec(text);
  if (!m) return [];
  return m[1]!
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '')
    .map((line) => {
      const address = line.split(/\s+/)[0]!;
      const expires = /\bexpires (\S+)/.exec(line)?.[1];
      return { address, ttl: 0, lastSeen: 0, hits: 0, ...(expires ? { expires } : {}), line };
    });
}

const ENTRY = /^src=(\S+) ttl: (\d+) last_seen: (\d+) oldest_pkt: \d+ ?(.*)$/;

export function parseXtRecent(text: string): RecentEntry[] {
  const entries: RecentEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const m = ENTRY.exec(line);
    if (!m) throw new Error(`unexpected line in an xt_recent list: ${line}`);
    const times = m[4]!
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t !== '');
    entries.push({ address: m[1]!, ttl: Number(m[2]), lastSeen: Number(m[3]), hits: times.length, line });
  }
  return entries;
}
