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
  line: string;
}

const ENTRY = /^src=(\S+) ttl: (\d+) last_seen: (\d+) oldest_pkt: \d+ ?(.*)$/;

export function parseXtRecent(text: string): RecentEntry[] {
  const entries: RecentEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const m = ENTRY.exec(line);
    if (!m) throw new Error(`unexpected line in an xt_recent list: ${line}`);
    const times = m[4]!.split(',').map((t) => t.trim()).filter((t) => t !== '');
    entries.push({ address: m[1]!, ttl: Number(m[2]), lastSeen: Number(m[3]), hits: times.length, line });
  }
  return entries;
}
