// The packet traces a step's path checks need, started after the step's commands (so they see the
// rules the step sets) and stopped after its traffic. Each tracer removes its nftables table when
// stopped: tracing is on only while the traffic runs.
//
// One tracer per node, whatever the number of path checks there: every monitor in a namespace
// receives the trace events of every traced packet, and xtables-monitor asks the kernel for each
// rule it prints, so a second monitor doubles the work and a burst of events can overflow its
// socket (it then exits with "No buffer space available"). The tracer marks what any check of the
// node wants; each check then gets the packets whose header, as they entered the node (the
// tracer's own first hop), matches its filter.
import type { PathFilter } from '../lab/types.ts';
import type { Sandbox } from './sandbox.ts';
import { hopsByPacket, startTrace, type TraceHop, type TraceSession } from '../observe/trace.ts';
import { TRACER_TABLE_PREFIX } from '../observe/parse-trace.ts';
import { traceKey, type TraceObservation } from '../check/observations.ts';
import { parseCidr, sameSubnet } from '../net/cidr.ts';
import { EnvError } from '../errors.ts';

export interface PathTraces {
  /** Stops every tracer and returns what each target saw, by traceKey(node, filter). */
  stop(): Promise<Map<string, TraceObservation>>;
}

type Target = { node: string; filter: PathFilter };

const FIELDS = ['proto', 'src', 'dst', 'sport', 'dport'] as const;

/** What every filter asks for: the packets the node's one tracer must mark. */
export function commonFilter(filters: PathFilter[]): PathFilter {
  const common: Record<string, unknown> = {};
  for (const field of FIELDS) {
    const values = new Set(filters.map((f) => f[field]));
    const [only] = values;
    if (values.size === 1 && only !== undefined) common[field] = only;
  }
  // Ports alone would make the tracer mark TCP and UDP; a port without a protocol is fine for nft.
  return common as PathFilter;
}

function addressMatches(address: string | undefined, wanted: string | undefined): boolean {
  if (wanted === undefined) return true;
  if (address === undefined) return false;
  const cidr = parseCidr(wanted);
  if (!cidr) return address === wanted;
  return sameSubnet(address, cidr.address, cidr.prefix);
}

/** Whether a packet, by the header it entered the node with, is one a filter asks for. */
export function packetMatches(
  entered: Pick<TraceHop, 'proto' | 'src' | 'dst' | 'sport' | 'dport'>,
  f: PathFilter,
): boolean {
  return (
    (f.proto === undefined || entered.proto === f.proto) &&
    addressMatches(entered.src, f.src) &&
    addressMatches(entered.dst, f.dst) &&
    (f.sport === undefined || entered.sport === f.sport) &&
    (f.dport === undefined || entered.dport === f.dport)
  );
}

/** The hops of the packets a filter asks for, judged by each packet's first tracer hop (the IPv4 one
 * when there is one: the bridge-family hop carries no ports); the tracer's own hops left out. */
export function hopsFor(hops: TraceHop[], filter: PathFilter, keepTracer = false): TraceHop[] {
  return hopsByPacket(hops).flatMap((packet) => {
    const entered = packet.find((h) => isTracerHop(h) && h.family === 'ip') ?? packet.find(isTracerHop) ?? packet[0];
    return entered && packetMatches(entered, filter) ? packet.filter((h) => keepTracer || !isTracerHop(h)) : [];
  });
}

export const isTracerHop = (h: TraceHop): boolean => h.table.startsWith(TRACER_TABLE_PREFIX);

/** Starts one tracer per node. A missing tool is an environment error (exit 3): every tracer
 * already started is stopped first. Any other failure is kept as the observation of its checks. */
/** `rootOnly`: the node run as the machine's root namespace and the lab's networks, which alone its tracer marks. */
/** `keepTracer`: the tracer's own hops stay in (they say how each packet entered the node: nflab trace). */
export async function startPathTraces(
  sandbox: Pick<Sandbox, 'exec' | 'node'>,
  targets: Target[],
  rootOnly?: { node: string; networks: string[] },
  keepTracer = false,
): Promise<PathTraces> {
  const byNode = new Map<string, Target[]>();
  for (const t of targets) byNode.set(t.node, [...(byNode.get(t.node) ?? []), t]);
  const nodes = [...byNode.keys()];
  const results = await Promise.allSettled(
    nodes.map((node) =>
      startTrace(
        sandbox.exec,
        (argv) => sandbox.node(node).observerArgv(argv),
        commonFilter(byNode.get(node)!.map((t) => t.filter)),
        node === rootOnly?.node ? { within: rootOnly.networks } : {},
      ),
    ),
  );
  const sessions: { node: string; session: TraceSession }[] = [];
  const failed = new Map<string, TraceObservation>();
  results.forEach((r, i) => {
    const node = nodes[i]!;
    if (r.status === 'fulfilled') sessions.push({ node, session: r.value });
    else
      for (const t of byNode.get(node)!)
        failed.set(traceKey(node, t.filter), {
          error: `tracing on ${node} did not start: ${(r.reason as Error).message}`,
        });
  });
  const envError = results.find(
    (r): r is PromiseRejectedResult => r.status === 'rejected' && r.reason instanceof EnvError,
  );
  if (envError) {
    await Promise.all(sessions.map((s) => s.session.stop()));
    throw envError.reason;
  }
  return {
    async stop() {
      const observed = new Map(failed);
      await Promise.all(
        sessions.map(async ({ node, session }) => {
          const hops = await session.stop({ includeTracer: true });
          for (const t of byNode.get(node)!)
            observed.set(traceKey(node, t.filter), {
              hops: hopsFor(hops, t.filter, keepTracer),
              problems: [...session.problems],
            });
        }),
      );
      return observed;
    },
  };
}
