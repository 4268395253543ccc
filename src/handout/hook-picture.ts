// The netfilter hook picture: PREROUTING, INPUT, FORWARD, OUTPUT and POSTROUTING with the tables
// each runs (raw, mangle, nat, filter, in kernel order), the bridge family's hooks above them when a
// packet met them, and on top the path each traced packet took, in colour, with how many traced
// packets passed each table and the counters a step read. Inline SVG, laid out by hand: text is
// 12 px, and the picture is at most 700 px wide, so printed on A4 it stays above 8 pt.
import { escapeXml as x } from './escape.ts';

export const HOOKS = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'] as const;
type Hook = (typeof HOOKS)[number];
type Family = 'ip' | 'bridge';

/** The tables of each hook in the order the kernel calls them (the security table left out). */
const TABLES: Record<Family, Record<Hook, string[]>> = {
  ip: {
    PREROUTING: ['raw', 'mangle', 'nat'],
    INPUT: ['mangle', 'nat', 'filter'],
    FORWARD: ['mangle', 'filter'],
    OUTPUT: ['raw', 'mangle', 'nat', 'filter'],
    POSTROUTING: ['mangle', 'nat'],
  },
  // ebtables-nft: nat and filter (there is no broute table).
  bridge: {
    PREROUTING: ['nat'],
    INPUT: ['filter'],
    FORWARD: ['filter'],
    OUTPUT: ['nat', 'filter'],
    POSTROUTING: ['nat'],
  },
};

export interface PicturePacket {
  /** `packet 1: icmp from 10.55.66.2 to 10.55.66.3`. */
  label: string;
  /** Hops as describeHop writes them: `bridge nat PREROUTING: CONTINUE`, `nat KUBE-SVC-…: KUBE-SEP-…`. */
  hops: string[];
  /** Drawn dashed: the path a lab expects (a handout made without a run). */
  expected?: boolean;
}

export interface HookPictureInput {
  id: string;
  node: string;
  packets: PicturePacket[];
  /** Counter deltas a step read, by `family table CHAIN` (`ip raw PREROUTING` → 2, `bridge nat PREROUTING` → 2). */
  counters?: Map<string, number>;
  /** Draw the bridge family even when no packet met it. */
  bridge?: boolean;
}

const COLORS = ['#c62828', '#1565c0', '#2e7d32', '#6a1b9a', '#ef6c00', '#00838f'];
const BOX_W = 130;
const ROW = 20;
const HEAD = 20;
const WIDTH = 700;

interface Cell {
  family: Family;
  hook: Hook;
  table: string;
  x: number;
  y: number;
}
const key = (family: Family, hook: string, table: string) => `${family} ${table} ${hook}`;

/** A hop string split into family, table, chain and verdict. */
export function parseHop(hop: string): { family: string; table: string; chain: string; verdict?: string } | undefined {
  const m = /^(?:(bridge|ip6|arp|inet|netdev) )?([a-z]+) ([A-Za-z0-9_.-]+?)(?:: (.+))?$/.exec(hop);
  if (!m) return undefined;
  return { family: m[1] ?? 'ip', table: m[2]!, chain: m[3]!, ...(m[4] ? { verdict: m[4] } : {}) };
}

/** The cells a packet visited in order (hops in a user chain count for the base chain that jumped
 * there), each with the last verdict seen in it and the user chains met on the way. */
export function visits(hops: string[]): Array<{ key: string; verdict?: string; chains: string[] }> {
  const out: Array<{ key: string; verdict?: string; chains: string[] }> = [];
  const current = new Map<string, string>(); // family+table -> cell key of the base chain in use
  for (const hop of hops) {
    const p = parseHop(hop);
    if (!p || (p.family !== 'ip' && p.family !== 'bridge')) continue;
    const family = p.family as Family;
    const base = (HOOKS as readonly string[]).includes(p.chain);
    const k = base ? key(family, p.chain, p.table) : current.get(`${family} ${p.table}`);
    if (!k || (base && !TABLES[family][p.chain as Hook]?.includes(p.table))) continue;
    if (base) current.set(`${family} ${p.table}`, k);
    const last = out[out.length - 1];
    const visit = last && last.key === k ? last : (out.push({ key: k, chains: [] }), out[out.length - 1]!);
    if (!base && !visit.chains.includes(p.chain)) visit.chains.push(p.chain);
    if (p.verdict) visit.verdict = p.verdict.replace(/^policy /, '');
  }
  return out;
}

export function hookPictureSvg(input: HookPictureInput): string {
  const withBridge = input.bridge || input.packets.some((p) => p.hops.some((h) => h.startsWith('bridge ')));
  const cells = new Map<string, Cell>();
  const boxes: Array<{ family: Family; hook: Hook; x: number; y: number; h: number }> = [];
  const place = (family: Family, hook: Hook, bx: number, by: number) => {
    const tables = TABLES[family][hook];
    boxes.push({ family, hook, x: bx, y: by, h: HEAD + tables.length * ROW + 4 });
    tables.forEach((t, i) =>
      cells.set(key(family, hook, t), { family, hook, table: t, x: bx, y: by + HEAD + i * ROW }),
    );
  };
  const top = 34;
  const bridgeH = withBridge ? HEAD + 2 * ROW + 4 + 46 : 0;
  if (withBridge) {
    const gap = (WIDTH - 20 - 5 * BOX_W) / 4;
    HOOKS.forEach((hook, i) => place('bridge', hook, 10 + i * (BOX_W + gap), top));
  }
  const a = top + bridgeH; // the routed path: PREROUTING → FORWARD → POSTROUTING
  const b = a + HEAD + 3 * ROW + 46; // the local path: INPUT → process → OUTPUT
  place('ip', 'PREROUTING', 10, a);
  place('ip', 'FORWARD', (WIDTH - BOX_W) / 2, a);
  place('ip', 'POSTROUTING', WIDTH - 10 - BOX_W, a);
  place('ip', 'INPUT', 150, b);
  place('ip', 'OUTPUT', WIDTH - 150 - BOX_W, b);
  const height = b + HEAD + 4 * ROW + 20;

  const out: string[] = [];
  const text = (tx: number, ty: number, s: string, attrs = '') =>
    out.push(`<text x="${r(tx)}" y="${r(ty)}"${attrs}>${x(s)}</text>`);
  out.push(
    '<defs><marker id="hp-arrow-' +
      x(input.id) +
      '" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#999"/></marker></defs>',
  );
  const arrow = (x1: number, y1: number, x2: number, y2: number) =>
    out.push(
      `<line x1="${r(x1)}" y1="${r(y1)}" x2="${r(x2)}" y2="${r(y2)}" stroke="#bbb" stroke-width="2" marker-end="url(#hp-arrow-${x(input.id)})"/>`,
    );
  const boxOf = (family: Family, hook: Hook) => boxes.find((bx) => bx.family === family && bx.hook === hook)!;
  const pre = boxOf('ip', 'PREROUTING'),
    fwd = boxOf('ip', 'FORWARD'),
    post = boxOf('ip', 'POSTROUTING');
  const inp = boxOf('ip', 'INPUT'),
    outp = boxOf('ip', 'OUTPUT');
  // The kernel's fixed routes between hooks.
  arrow(pre.x + BOX_W, a + 30, fwd.x - 2, a + 30);
  arrow(fwd.x + BOX_W, a + 30, post.x - 2, a + 30);
  arrow(pre.x + BOX_W / 2, pre.y + pre.h, inp.x + 20, b - 2);
  arrow(outp.x + BOX_W - 20, b, post.x + BOX_W / 2, post.y + post.h + 2);
  arrow(inp.x + BOX_W, b + 40, outp.x - 2, b + 40);
  text(WIDTH / 2, b + 34, 'local process', ' text-anchor="middle" fill="#666" font-style="italic"');
  text(10, 18, `netfilter hooks in ${input.node}`, ' font-weight="bold" font-size="13"');
  if (withBridge) {
    text(WIDTH - 10, 18, 'bridge family (ebtables)', ' text-anchor="end" fill="#b36b00" font-size="12"');
    text(WIDTH - 10, a - 8, 'ip family (iptables)', ' text-anchor="end" fill="#607080" font-size="12"');
  }

  const counts = new Map<string, number>();
  const packetVisits = input.packets.map((p) => visits(p.hops));
  for (const v of packetVisits) for (const k of new Set(v.map((y) => y.key))) counts.set(k, (counts.get(k) ?? 0) + 1);

  for (const bx of boxes) {
    const fill = bx.family === 'bridge' ? '#fff4e0' : '#f3f5f8';
    const stroke = bx.family === 'bridge' ? '#b36b00' : '#607080';
    out.push(`<g class="hook" data-hook="${bx.family} ${bx.hook}">`);
    out.push(
      `<rect x="${r(bx.x)}" y="${r(bx.y)}" width="${BOX_W}" height="${r(bx.h)}" rx="6" fill="${fill}" stroke="${stroke}" stroke-width="1.5"/>`,
    );
    text(bx.x + BOX_W / 2, bx.y + 14, bx.hook, ' text-anchor="middle" font-weight="bold"');
    out.push('</g>');
  }
  for (const [k, c] of cells) {
    const passed = counts.get(k) ?? 0;
    // Keyed by family too: ebtables' nat PREROUTING counts both frames, iptables' only the first.
    const counter = input.counters?.get(`${c.family} ${c.table} ${c.hook}`);
    out.push(
      `<g class="table" data-cell="${x(k)}" data-traced="${passed}"${counter !== undefined ? ` data-counter="${counter}"` : ''}>`,
    );
    out.push(
      `<rect x="${r(c.x + 4)}" y="${r(c.y)}" width="${BOX_W - 8}" height="${ROW - 2}" rx="3" fill="${passed ? '#ffffff' : 'none'}" stroke="${passed ? '#607080' : '#d5d9de'}"/>`,
    );
    text(c.x + 10, c.y + 13, c.table, passed ? '' : ' fill="#999"');
    // One number per table: the counter the step read there, or else how many traced packets passed.
    const badge = counter !== undefined ? String(counter) : passed ? `${passed}×` : '';
    if (badge)
      text(
        c.x + BOX_W - 9,
        c.y + 13,
        badge,
        ` text-anchor="end" font-size="12" font-weight="bold" fill="${counter !== undefined ? '#8a4b00' : '#333'}"`,
      );
    out.push('</g>');
  }
  // Each packet's path: a line through the tables it met, offset a little per packet.
  packetVisits.forEach((v, i) => {
    const color = COLORS[i % COLORS.length]!;
    const dx = 78 + (i - (input.packets.length - 1) / 2) * 11;
    const points = v.map((y) => cells.get(y.key)!).map((c) => [c.x + dx, c.y + ROW / 2 - 1] as const);
    if (points.length === 0) return;
    const dash = input.packets[i]!.expected ? ' stroke-dasharray="5 3"' : '';
    out.push(`<g class="packet" data-packet="${i + 1}">`);
    out.push(
      `<polyline points="${points.map(([px, py]) => `${r(px)},${r(py)}`).join(' ')}" fill="none" stroke="${color}" stroke-width="2.5" stroke-opacity="0.85"${dash}/>`,
    );
    const [sx, sy] = points[0]!;
    out.push(`<circle cx="${r(sx)}" cy="${r(sy)}" r="6" fill="${color}"/>`);
    text(sx, sy + 4, String(i + 1), ' text-anchor="middle" fill="#fff" font-size="11" font-weight="bold"');
    const last = v[v.length - 1]!;
    const [ex, ey] = points[points.length - 1]!;
    if (last.verdict === 'DROP' || last.verdict === 'REJECT') {
      out.push(
        `<path d="M${r(ex - 6)},${r(ey - 6)} L${r(ex + 6)},${r(ey + 6)} M${r(ex + 6)},${r(ey - 6)} L${r(ex - 6)},${r(ey + 6)}" stroke="${color}" stroke-width="3"/>`,
      );
    } else {
      out.push(`<circle cx="${r(ex)}" cy="${r(ey)}" r="3.5" fill="${color}"/>`);
    }
    out.push('</g>');
  });
  const legendY = height - 6;
  const legend = input.counters?.size ? 'numbers: counter deltas of the step' : 'n×: traced packets that passed';
  text(10, legendY, `line n: traced packet n from ● (✕: dropped); ${legend}`, ' fill="#555" font-size="12"');

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="hooks" viewBox="0 0 ${WIDTH} ${r(height)}" width="${WIDTH}" height="${r(height)}" role="img" aria-label="${x(`netfilter hooks in ${input.node} with ${input.packets.length} traced packets`)}" font-family="'DejaVu Sans', 'Liberation Sans', sans-serif" font-size="12">`,
    ...out,
    '</svg>',
  ].join('\n');
}

/** The picture's legend in words: one line per packet with its hops, for the page below the picture. */
export function pathWords(p: PicturePacket): string {
  const v = visits(p.hops);
  return (
    v
      .map(
        (y) =>
          `${y.key.replace(/^ip /, '')}${y.chains.length ? ` (${y.chains.join(', ')})` : ''}${y.verdict && !['CONTINUE', 'ACCEPT'].includes(y.verdict) ? `: ${y.verdict}` : ''}`,
      )
      .join(' → ') || '(no hop)'
  );
}

function r(n: number): string {
  return String(Math.round(n * 10) / 10);
}
