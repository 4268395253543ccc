// Strict lab shape: every field of a lab is one the model knows, at every level. A typo
// (`listens:` for `listen:`) would otherwise be ignored: the node is built without a responder and
// its checks fail with no hint why. Each unknown field is named by its path with the nearest known
// field ("topology.nodes.c1.listens: did you mean listen?"). Keys that are names the lab chooses
// (nodes, bridges, interfaces, sysctls, backends) are not fields and are not checked here.
//
// The field lists follow src/lab/types.ts (and the limits of src/resolve/bounds.ts); a field added
// to the model is added here too, or every lab using it is refused (tests load every lab).

type Spec = { fields: Record<string, Child> };
/** What a field holds, for the walk: nothing to look into, an object of a spec, an array of them,
 * a map of names to them, or a value whose spec depends on it (checks by kind, traffic by kind). */
type Child =
  | null
  | { object: Spec | ((value: Record<string, unknown>) => Spec | undefined) }
  | { array: Spec | ((value: Record<string, unknown>) => Spec | undefined) }
  | { map: Spec }
  | { rangeOrNumber: true };

const spec = (fields: Record<string, Child>): Spec => ({ fields });
const leaf = null;
const RANGE = spec({ min: leaf, max: leaf });
const rangeOrNumber: Child = { rangeOrNumber: true };

const LIMITS = spec({ commandSeconds: leaf, stepSeconds: leaf });
const COMMAND = spec({ node: leaf, argv: leaf, stdin: leaf, display: leaf, expectFailure: leaf });
const PING = spec({ kind: leaf, from: leaf, to: leaf, count: leaf, wait: leaf });
const TCP = spec({ kind: leaf, from: leaf, to: leaf, port: leaf, connections: leaf, sourcePort: leaf, timeout: leaf });
const UDP = spec({ kind: leaf, from: leaf, to: leaf, port: leaf, sourcePort: leaf, count: leaf });
const TRAFFIC: Record<string, Spec> = { ping: PING, tcp: TCP, udp: UDP };
/** The spec of a kind, by own key only: a kind "valueOf" names nothing. */
const ofKind = (specs: Record<string, Spec>) => (v: Record<string, unknown>) =>
  Object.hasOwn(specs, String(v.kind)) ? specs[String(v.kind)] : undefined;
const byTrafficKind = ofKind(TRAFFIC);
const TUPLE = spec({ src: leaf, dst: leaf, sport: rangeOrNumber, dport: rangeOrNumber });

const COMMON = { kind: leaf, description: leaf, sandboxOnly: leaf, about: leaf, hint: leaf };
const CHECKS: Record<string, Spec> = {
  ping: spec({ ...COMMON, traffic: { object: PING }, expect: leaf, error: leaf }),
  tcp: spec({ ...COMMON, traffic: { object: TCP }, expect: leaf, answeredBy: leaf, clientSeen: leaf }),
  packets: spec({
    ...COMMON,
    node: leaf,
    iface: leaf,
    match: { object: spec({ proto: leaf, src: leaf, dst: leaf, sport: leaf, dport: leaf, icmp: leaf, flags: leaf }) },
    count: rangeOrNumber,
  }),
  counter: spec({
    ...COMMON,
    node: leaf,
    family: leaf,
    table: leaf,
    chain: leaf,
    rule: leaf,
    rules: leaf,
    packets: rangeOrNumber,
    bytes: rangeOrNumber,
    answersOf: { object: spec({ traffic: { object: TCP }, answeredBy: leaf }) },
  }),
  distribution: spec({ ...COMMON, traffic: { object: TCP }, shares: leaf, sigmas: leaf }),
  sticky: spec({ ...COMMON, traffic: { object: TCP }, among: leaf }),
  recent: spec({ ...COMMON, node: leaf, lists: leaf, expect: leaf, address: leaf, chosenBy: { object: TCP } }),
  'all-pairs': spec({ ...COMMON, nodes: leaf, expect: leaf, parallel: leaf, wait: leaf }),
  'all-reach': spec({ ...COMMON, from: leaf, to: leaf, expect: leaf, parallel: leaf, wait: leaf }),
  conntrack: spec({
    ...COMMON,
    node: leaf,
    proto: leaf,
    orig: { object: TUPLE },
    reply: { object: TUPLE },
    mark: leaf,
    count: rangeOrNumber,
  }),
  path: spec({
    ...COMMON,
    node: leaf,
    filter: { object: spec({ proto: leaf, src: leaf, dst: leaf, sport: leaf, dport: leaf }) },
    through: leaf,
    exact: leaf,
    notThrough: leaf,
    packet: leaf,
    rule: leaf,
  }),
  output: spec({ ...COMMON, command: { object: COMMAND }, includes: leaf, excludes: leaf }),
};

const END = spec({ node: leaf, name: leaf, addresses: leaf, bridge: leaf, mac: leaf });
const NODE = spec({
  role: leaf,
  addresses: leaf,
  sysctls: leaf,
  listen: leaf,
  driver: leaf,
  routes: { array: spec({ to: leaf, via: leaf, dev: leaf, extra: leaf }) },
  neighbors: { array: spec({ address: leaf, mac: leaf, dev: leaf }) },
});
const SERVICE = spec({
  name: leaf,
  namespace: leaf,
  portName: leaf,
  clusterIP: leaf,
  port: leaf,
  protocol: leaf,
  targetPort: leaf,
  endpoints: leaf,
  type: leaf,
  nodePort: leaf,
  sessionAffinity: { object: spec({ timeoutSeconds: leaf }) },
});
const LAB = spec({
  id: leaf,
  title: leaf,
  summary: leaf,
  requires: leaf,
  file: leaf,
  limits: { object: LIMITS },
  source: { object: spec({ title: leaf, url: leaf, spec: leaf }) },
  topology: {
    object: spec({
      nodes: { map: NODE },
      bridges: { map: spec({ node: leaf, addresses: leaf, mac: leaf }) },
      links: { array: spec({ a: { object: END }, b: { object: END } }) },
      setup: { array: COMMAND },
    }),
  },
  steps: {
    array: spec({
      title: leaf,
      teaches: leaf,
      limits: { object: LIMITS },
      questions: { array: spec({ ask: leaf, answer: leaf, observedIn: leaf }) },
      run: { array: COMMAND },
      send: { array: byTrafficKind },
      expect: { array: ofKind(CHECKS) },
    }),
  },
  kubeProxy: {
    object: spec({
      node: leaf,
      services: { array: SERVICE },
      options: { object: spec({ era: leaf, clusterCIDR: leaf, omit: leaf, nodeIPs: leaf, serviceCIDRs: leaf }) },
    }),
  },
});

/** Every unknown field of the lab, as "path: did you mean X?" (or the fields known there). Runs after
 * shape.ts (types, cycles): values of the wrong type are that module's to report. */
export function unknownFieldProblems(lab: Record<string, unknown>): string[] {
  const problems: string[] = [];
  walk(lab, LAB, '', problems);
  return problems;
}

function walk(obj: Record<string, unknown>, s: Spec, path: string, problems: string[]): void {
  for (const [key, value] of Object.entries(obj)) {
    const here = path ? `${path}.${key}` : key;
    if (!Object.hasOwn(s.fields, key)) {
      // A field explicitly undefined (a builder's unset option) says nothing: only present values count.
      if (value !== undefined) problems.push(unknownField(here, key, Object.keys(s.fields)));
      continue;
    }
    const child = s.fields[key]!;
    if (child === null || value === undefined || value === null) continue;
    if ('rangeOrNumber' in child) {
      if (isObject(value)) walk(value, RANGE, here, problems);
    } else if ('object' in child) {
      if (!isObject(value)) continue;
      const sub = typeof child.object === 'function' ? child.object(value) : child.object;
      if (sub) walk(value, sub, here, problems);
    } else if ('array' in child) {
      if (!Array.isArray(value)) continue;
      value.forEach((item, i) => {
        if (!isObject(item)) return;
        const sub = typeof child.array === 'function' ? child.array(item) : child.array;
        // An unknown kind is validate.ts's to name; its fields cannot be judged.
        if (sub) walk(item, sub, `${here}[${i}]`, problems);
      });
    } else if ('map' in child) {
      if (!isObject(value)) continue;
      for (const [name, item] of Object.entries(value))
        if (isObject(item)) walk(item, child.map, `${here}.${name}`, problems);
    }
  }
}

function unknownField(path: string, key: string, known: string[]): string {
  const nearest = nearestField(key, known);
  return nearest
    ? `${path}: did you mean ${nearest}? (no field "${key}" here)`
    : `${path}: unknown field (known here: ${known.join(', ')})`;
}

/** The known field a typo most likely meant: fewest edits (case ignored), within a third of its length. */
export function nearestField(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(Math.max(key.length, best.length) / 3))
    ? best
    : undefined;
}

function editDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Math.abs(a.length - b.length) + 64;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
