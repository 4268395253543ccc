// The topology as an SVG drawing, laid out by nflab itself: containers on the left, hosts in the
// middle with their bridges inside, the simulated outside world on the right. Each veth pair is
// a line between two interface ports labelled with the interface's name and addresses.
// Text is monospace so widths can be computed without a font engine.
import type { DriverKind, Lab, NodeRole } from '../lab/types.ts';
import { escapeXml } from './escape.ts';
import { podRoles, serviceBoxes } from './service-box.ts';

const CHAR = 7.3; // width of one 12px monospace character, rounded up
const LINE = 15;
const PAD = 10;
const HEADER = 40; // node name and kind
const COL_GAP = 60; // room for a link between two columns
const NODE_GAP = 18;
const MARGIN = 16;
const CAPTION = 26;

const COLUMN: Record<NodeRole, number> = { container: 0, host: 1, outside: 2 };
const COLUMN_CAPTION = ['containers', 'host', 'outside world (simulated)'];
const FILL: Record<NodeRole, string> = { container: '#e3eefc', host: '#f1f1f1', outside: '#e5f5e5' };
const STROKE: Record<NodeRole, string> = { container: '#3b6fb6', host: '#555555', outside: '#3c8c3c' };

interface Port {
  node: string;
  iface: string;
  lines: string[];
  bridge?: string;
  side: 'left' | 'right';
  link: number;
  y: number;
}

interface Box {
  node: string;
  role: NodeRole;
  subtitle: string;
  info: string[];
  x: number;
  y: number;
  w: number;
  h: number;
  ports: Port[];
}

interface BridgeBox {
  name: string;
  node: string;
  lines: string[];
  x: number;
  y: number;
  w: number;
  h: number;
}

const textWidth = (s: string) => s.length * CHAR;
const slotHeight = (p: Port) => Math.max(34, 8 + p.lines.length * LINE);

export function topologySvg(lab: Lab, kindOf: (node: string) => DriverKind): string {
  const topo = lab.topology;
  const nodes = Object.keys(topo.nodes);
  const roleOf = (n: string) => topo.nodes[n]!.role;
  const col = (n: string) => COLUMN[roleOf(n)];
  // Kubernetes labs: the Services drawn inside their node, and what each pod is to them.
  const services = serviceBoxes(lab);
  const roles = podRoles(lab);
  const serviceLines = (node: string) => services.filter((b) => b.node === node).flatMap((b) => b.lines);
  const serviceHeight = (node: string) =>
    services.filter((b) => b.node === node).reduce((sum, b) => sum + b.lines.length * LINE + 16, 0);

  // ---- ports: one per link end, on the side that faces the peer ----------------------------------
  const ports = new Map<string, Port[]>(nodes.map((n) => [n, []]));
  topo.links.forEach((link, i) => {
    for (const [end, peer] of [
      [link.a, link.b],
      [link.b, link.a],
    ] as const) {
      const own = col(end.node);
      const other = col(peer.node);
      // Peers in the same column are joined by a bracket on the outer side of the column.
      const side = other < own || (other === own && own === 2) ? 'left' : 'right';
      ports.get(end.node)!.push({
        node: end.node,
        iface: end.name,
        lines: [end.name, ...(end.addresses ?? [])],
        ...(end.bridge ? { bridge: end.bridge } : {}),
        side,
        link: i,
        y: 0,
      });
    }
  });

  // ---- node boxes (sizes first, positions later) --------------------------------------------------
  const boxes = new Map<string, Box>();
  for (const node of nodes) {
    const spec = topo.nodes[node]!;
    const info = [
      ...Object.entries(spec.addresses ?? {}).map(([iface, cidrs]) => `${iface} ${cidrs.join(' ')}`),
      ...(spec.routes ?? []).map((r) => `route ${r.to}${r.via ? ` via ${r.via}` : ''}${r.dev ? ` dev ${r.dev}` : ''}`),
      ...(spec.listen ?? []).map((p) => `listens on tcp/${p}`),
    ];
    const role = roles.get(node);
    // A backend's port is part of its role (`pod · backend :80`), one line less per pod.
    const backend =
      role?.startsWith('backend') && spec.listen?.length
        ? `backend :${spec.listen.join(',')}`
        : role?.startsWith('backend')
          ? 'backend'
          : role;
    if (backend?.includes(':')) info.splice(0, info.length, ...info.filter((l) => !l.startsWith('listens on')));
    const subtitle = backend
      ? `pod · ${backend}`
      : `${spec.role} · ${kindOf(node) === 'docker' ? 'docker container' : 'netns'}`;
    boxes.set(node, { node, role: spec.role, subtitle, info, x: 0, y: 0, w: 0, h: 0, ports: ports.get(node)! });
  }
  // A route every container has (the pods' default route) is said once, under the column caption,
  // instead of in every box: the diagram stays short enough to print beside the lab's header.
  const containers = [...boxes.values()].filter((b) => b.role === 'container');
  const shared =
    containers.length > 2
      ? containers[0]!.info.filter((l) => l.startsWith('route ') && containers.every((b) => b.info.includes(l)))
      : [];
  for (const b of containers) b.info = b.info.filter((l) => !shared.includes(l));
  const sharedCaption = shared.length ? `each container: ${shared.join(', ')}` : '';
  const bridges: BridgeBox[] = Object.entries(topo.bridges ?? {}).map(([name, spec]) => {
    const lines = [`${name} (bridge)`, ...(spec.addresses ?? [])];
    return {
      name,
      node: spec.node,
      lines,
      x: 0,
      y: 0,
      w: Math.max(100, Math.max(...lines.map(textWidth)) + 2 * PAD),
      h: 0,
    };
  });

  // Widths: side nodes fit their longest line; hosts have a column of port labels on each side
  // and the bridges between them.
  const hostLayout = new Map<string, { left: number; right: number; bridgeW: number }>();
  for (const box of boxes.values()) {
    const texts = [box.node, box.subtitle, ...box.info, ...serviceLines(box.node).map((l) => `${l}  `)];
    if (box.role !== 'host') {
      box.w = Math.max(130, ...[...texts, ...box.ports.flatMap((p) => p.lines)].map(textWidth)) + 2 * PAD;
      continue;
    }
    const left = Math.max(0, ...box.ports.filter((p) => p.side === 'left').flatMap((p) => p.lines.map(textWidth)));
    const right = Math.max(0, ...box.ports.filter((p) => p.side === 'right').flatMap((p) => p.lines.map(textWidth)));
    const bridgeW = Math.max(0, ...bridges.filter((b) => b.node === box.node).map((b) => b.w));
    hostLayout.set(box.node, { left, right, bridgeW });
    const inner = (left ? left + 2 * PAD : 0) + (bridgeW ? bridgeW + 2 * 20 : 0) + (right ? right + 2 * PAD : 0);
    box.w = Math.max(inner, ...texts.map(textWidth), 160) + 2 * PAD;
  }
  const colWidth = [0, 1, 2].map((c) =>
    Math.max(0, ...[...boxes.values()].filter((b) => COLUMN[b.role] === c).map((b) => b.w)),
  );
  const colX: number[] = [];
  let x = MARGIN;
  for (let c = 0; c < 3; c++) {
    colX[c] = x;
    if (colWidth[c]! > 0) x += colWidth[c]! + COL_GAP;
  }
  for (const box of boxes.values()) {
    const c = COLUMN[box.role];
    // Side columns hug the host column; hosts are centred in theirs.
    box.x = c === 0 ? colX[0]! + colWidth[0]! - box.w : c === 2 ? colX[2]! : colX[1]! + (colWidth[1]! - box.w) / 2;
  }

  // ---- vertical placement: each host with the side nodes it connects to ---------------------------
  const top = MARGIN + CAPTION + (sharedCaption ? LINE : 0);
  const placed = new Set<string>();
  const cursor = [top, top, top];
  const placeSide = (box: Box, y: number) => {
    box.y = y;
    let py = y + HEADER + box.info.length * LINE;
    for (const p of box.ports) {
      p.y = py + 14;
      py += slotHeight(p);
    }
    box.h = py - y + PAD;
    placed.add(box.node);
    cursor[COLUMN[box.role]] = box.y + box.h + NODE_GAP;
  };
  const peerPort = (p: Port): Port => {
    const link = topo.links[p.link]!;
    const peer = link.a.node === p.node && link.a.name === p.iface ? link.b : link.a;
    return boxes.get(peer.node)!.ports.find((q) => q.link === p.link && q.iface === peer.name)!;
  };

  for (const host of nodes.filter((n) => roleOf(n) === 'host')) {
    const box = boxes.get(host)!;
    box.y = Math.max(...cursor);
    const bodyTop = box.y + HEADER + box.info.length * LINE;
    for (const c of [0, 2]) cursor[c] = Math.max(cursor[c]!, bodyTop + 4);
    for (const p of box.ports) {
      const peer = peerPort(p);
      if (roleOf(peer.node) !== 'host' && !placed.has(peer.node))
        placeSide(boxes.get(peer.node)!, cursor[COLUMN[roleOf(peer.node)]]!);
    }
    // Each port sits level with its peer's port; ports whose peer lies elsewhere go below.
    let bottom = bodyTop + 8;
    for (const side of ['left', 'right'] as const) {
      const mine = box.ports.filter((p) => p.side === side);
      let next = bodyTop + 14;
      for (const p of mine) {
        const peer = peerPort(p);
        const level = roleOf(peer.node) !== 'host' && peer.y > bodyTop ? peer.y : next;
        p.y = Math.max(level, next);
        next = p.y + slotHeight(p);
      }
      bottom = Math.max(bottom, next - 14);
    }
    // Bridges span the ports enslaved to them.
    const layout = hostLayout.get(host)!;
    const bridgeX = box.x + PAD + (layout.left ? layout.left + 2 * PAD + 20 : 20);
    let bridgeNext = bodyTop + 4;
    for (const bridge of bridges.filter((b) => b.node === host)) {
      const enslaved = box.ports.filter((p) => p.bridge === bridge.name);
      const minY = enslaved.length ? Math.min(...enslaved.map((p) => p.y)) - 14 : bridgeNext;
      const maxY = enslaved.length ? Math.max(...enslaved.map((p) => p.y)) + 14 : bridgeNext;
      bridge.x = bridgeX + (layout.bridgeW - bridge.w) / 2;
      bridge.y = Math.max(minY, bridgeNext);
      bridge.h = Math.max(maxY - bridge.y, 12 + bridge.lines.length * LINE);
      bridgeNext = bridge.y + bridge.h + 10;
      bottom = Math.max(bottom, bridge.y + bridge.h);
    }
    box.h = bottom - box.y + 2 * PAD + serviceHeight(host);
    placed.add(host);
    for (let c = 0; c < 3; c++) cursor[c] = Math.max(cursor[c]!, c === 1 ? box.y + box.h + NODE_GAP : cursor[c]!);
    cursor[1] = Math.max(...cursor);
  }
  for (const node of nodes) if (!placed.has(node)) placeSide(boxes.get(node)!, cursor[col(node)]!);

  const width =
    Math.max(
      ...[...boxes.values()].map((b) => b.x + b.w),
      colWidth[2]! > 0 ? colX[2]! + textWidth(COLUMN_CAPTION[2]!) : 0,
    ) +
    MARGIN +
    10;
  const height = Math.max(...[...boxes.values()].map((b) => b.y + b.h)) + MARGIN;

  // ---- drawing --------------------------------------------------------------------------------------
  const out: string[] = [];
  const text = (tx: number, ty: number, s: string, attrs = '') =>
    out.push(`<text x="${r(tx)}" y="${r(ty)}"${attrs}>${escapeXml(s)}</text>`);
  for (let c = 0; c < 3; c++) {
    if (colWidth[c] === 0) continue;
    const inCol = [...boxes.values()].filter((b) => COLUMN[b.role] === c);
    if (c === 2) {
      const y0 = Math.min(...inCol.map((b) => b.y)) - 8;
      const y1 = Math.max(...inCol.map((b) => b.y + b.h)) + 8;
      out.push(
        `<rect class="world" x="${r(colX[2]! - 8)}" y="${r(y0)}" width="${r(colWidth[2]! + 16)}" height="${r(y1 - y0)}" rx="14" fill="none" stroke="#3c8c3c" stroke-dasharray="6 4"/>`,
      );
    }
    text(
      c === 0 ? colX[0]! + colWidth[0]! : c === 1 ? colX[1]! + colWidth[1]! / 2 : colX[2]!,
      MARGIN + 12,
      COLUMN_CAPTION[c]!,
      ` class="caption" fill="#666" text-anchor="${c === 0 ? 'end' : c === 1 ? 'middle' : 'start'}"`,
    );
  }
  if (sharedCaption) text(colX[0]!, MARGIN + 12 + LINE, sharedCaption, ' class="caption" fill="#666"');
  for (const box of boxes.values()) {
    out.push(`<g class="node" data-node="${escapeXml(box.node)}">`);
    out.push(
      `<rect x="${r(box.x)}" y="${r(box.y)}" width="${r(box.w)}" height="${r(box.h)}" rx="8" fill="${FILL[box.role]}" stroke="${STROKE[box.role]}" stroke-width="1.5"/>`,
    );
    text(box.x + PAD, box.y + 18, box.node, ' font-weight="bold" font-size="14"');
    text(
      box.x + PAD,
      box.y + 33,
      box.subtitle,
      ` fill="${roles.get(box.node)?.startsWith('backend') ? '#6a1b9a' : '#666'}" font-size="12"${roles.has(box.node) ? ' font-weight="bold"' : ''}`,
    );
    let sy = box.y + box.h - serviceHeight(box.node) - 4;
    for (const svc of services.filter((b) => b.node === box.node)) {
      const h = svc.lines.length * LINE + 10;
      out.push(
        `<g class="service" data-service="${escapeXml(svc.lines[0]!)}"><rect x="${r(box.x + PAD)}" y="${r(sy)}" width="${r(box.w - 2 * PAD)}" height="${r(h)}" rx="5" fill="#f5ecfa" stroke="#6a1b9a" stroke-dasharray="5 3"/>`,
      );
      // SVG collapses leading spaces: an indented line is drawn further right instead.
      svc.lines.forEach((line, i) =>
        text(
          box.x + 2 * PAD + (line.length - line.trimStart().length) * CHAR,
          sy + 15 + i * LINE,
          line.trimStart(),
          i === 0 ? ' font-weight="bold" fill="#4a148c"' : ' fill="#333"',
        ),
      );
      out.push('</g>');
      sy += h + 6;
    }
    box.info.forEach((line, i) => text(box.x + PAD, box.y + HEADER + 10 + i * LINE, line, ' fill="#333"'));
    for (const p of box.ports) {
      const edge = p.side === 'left' ? box.x : box.x + box.w;
      const inside = p.side === 'left' ? edge + PAD : edge - PAD;
      const anchor = p.side === 'left' ? 'start' : 'end';
      out.push(
        `<rect class="port" x="${r(edge - 4)}" y="${r(p.y - 4)}" width="8" height="8" fill="#fff" stroke="${STROKE[box.role]}"/>`,
      );
      p.lines.forEach((line, i) =>
        text(
          inside,
          p.y + 4 + i * LINE,
          line,
          ` text-anchor="${anchor}"${i === 0 ? ' font-weight="bold"' : ' fill="#333"'}`,
        ),
      );
      if (p.bridge) {
        const bridge = bridges.find((b) => b.node === p.node && b.name === p.bridge);
        if (bridge) {
          const from =
            p.side === 'left'
              ? inside + Math.max(...p.lines.map(textWidth)) + 4
              : inside - Math.max(...p.lines.map(textWidth)) - 4;
          const to = p.side === 'left' ? bridge.x : bridge.x + bridge.w;
          out.push(
            `<line class="enslaved" x1="${r(from)}" y1="${r(p.y)}" x2="${r(to)}" y2="${r(p.y)}" stroke="#b36b00" stroke-width="1.5"/>`,
          );
        }
      }
    }
    out.push('</g>');
  }
  for (const b of bridges) {
    out.push(`<g class="bridge" data-bridge="${escapeXml(b.name)}">`);
    out.push(
      `<rect x="${r(b.x)}" y="${r(b.y)}" width="${r(b.w)}" height="${r(b.h)}" rx="4" fill="#fff4e0" stroke="#b36b00" stroke-width="1.5"/>`,
    );
    b.lines.forEach((line, i) =>
      text(b.x + b.w / 2, b.y + 16 + i * LINE, line, ` text-anchor="middle"${i === 0 ? ' font-weight="bold"' : ''}`),
    );
    out.push('</g>');
  }
  let bracket = 0;
  topo.links.forEach((link, i) => {
    const a = boxes.get(link.a.node)!.ports.find((p) => p.link === i && p.iface === link.a.name)!;
    const b = boxes.get(link.b.node)!.ports.find((p) => p.link === i && p.iface === link.b.name)!;
    const ax = portX(boxes.get(a.node)!, a);
    const bx = portX(boxes.get(b.node)!, b);
    const label = `veth ${link.a.node}:${link.a.name} ↔ ${link.b.node}:${link.b.name}`;
    if (a.side === b.side) {
      // Same column: a bracket outside the column.
      const out_ = a.side === 'right' ? Math.max(ax, bx) + 14 + 8 * bracket : Math.min(ax, bx) - 14 - 8 * bracket;
      bracket++;
      out.push(
        `<path class="link" data-link="${i}" d="M${r(ax)},${r(a.y)} H${r(out_)} V${r(b.y)} H${r(bx)}" fill="none" stroke="#222" stroke-width="2"><title>${escapeXml(label)}</title></path>`,
      );
    } else {
      out.push(
        `<line class="link" data-link="${i}" x1="${r(ax)}" y1="${r(a.y)}" x2="${r(bx)}" y2="${r(b.y)}" stroke="#222" stroke-width="2"><title>${escapeXml(label)}</title></line>`,
      );
      text((ax + bx) / 2, (a.y + b.y) / 2 - 5, 'veth', ' text-anchor="middle" fill="#666" font-size="11"');
    }
  });

  const desc = describeTopology(lab);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="topology" viewBox="0 0 ${r(width)} ${r(height)}" width="${r(width)}" height="${r(height)}" role="img" aria-labelledby="topo-title-${escapeXml(lab.id)} topo-desc-${escapeXml(lab.id)}" font-family="'DejaVu Sans Mono', 'Liberation Mono', Menlo, Consolas, monospace" font-size="12">`,
    `<title id="topo-title-${escapeXml(lab.id)}">Topology of lab ${escapeXml(lab.id)}</title>`,
    `<desc id="topo-desc-${escapeXml(lab.id)}">${escapeXml(desc)}</desc>`,
    ...out,
    '</svg>',
  ].join('\n');
}

function portX(box: Box, p: Port): number {
  return p.side === 'left' ? box.x : box.x + box.w;
}

function r(n: number): string {
  return String(Math.round(n * 10) / 10);
}

/** The same topology in one paragraph of words (the SVG's description, for screen readers). */
export function describeTopology(lab: Lab): string {
  const t = lab.topology;
  const nodes = Object.entries(t.nodes)
    .map(([n, s]) => `${n} (${s.role})`)
    .join(', ');
  const bridges = Object.entries(t.bridges ?? {}).map(
    ([b, s]) => `bridge ${b} in ${s.node}${s.addresses?.length ? ` with ${s.addresses.join(', ')}` : ''}`,
  );
  const links = t.links.map(
    (l) =>
      `${l.a.node}:${l.a.name}${l.a.addresses?.length ? ` ${l.a.addresses.join(' ')}` : ''} to ${l.b.node}:${l.b.name}${l.b.addresses?.length ? ` ${l.b.addresses.join(' ')}` : ''}${l.b.bridge ? ` on ${l.b.bridge}` : ''}${l.a.bridge ? ` (${l.a.name} on ${l.a.bridge})` : ''}`,
  );
  return `Nodes: ${nodes}. ${bridges.length ? `${bridges.join('; ')}. ` : ''}veth pairs: ${links.join('; ')}.`;
}
