// Negative outcomes decided from the kernel's evidence instead of a timeout. A ping or a TCP
// connection that every check expects to fail may stop as soon as the kernel has said why no
// answer can come:
//   - iptables counted the packet in a silent drop (a DROP policy, a -j DROP rule): a dropped
//     request is never answered, and its retransmissions meet the same rules;
//   - a namespace's own statistics (/proc/net/snmp, what nstat reads) counted a discard: no route
//     out (Ip OutNoRoutes) or in (Ip InNoRoutes), or a packet for no local address while not
//     forwarding (Ip InAddrErrors) — the request or its answer went nowhere;
//   - for TCP, the client itself reset the reply it got (Tcp OutRsts): a SYN-ACK from an address
//     it did not connect to (an un-NATed reply) can never complete its handshake.
// The timeout stays the upper bound: without evidence the traffic waits as before. The verdict
// stays what waiting gives (transmitted N, received 0; a connection that timed out), and the
// check's `reason` names the evidence.
import type { Check, PingTraffic, TcpTraffic, Traffic } from '../lab/types.ts';
import { checkTraffic, moduleOf } from '../check/registry.ts';
import type { Sandbox } from './sandbox.ts';
import { parseIptablesSave } from '../observe/parse-iptables-save.ts';
import { dropCounters, dropsBetween } from '../observe/drop-counters.ts';
import { DISCARD_COUNTERS, RESET_COUNTER, grownCounters, parseSnmp } from '../observe/snmp-counters.ts';
import { trafficKey, type StopEarly } from '../traffic/run.ts';

/** Beyond this many nodes, polling every node's counters costs more than the wait it saves. */
const MAX_NODES = 8;

interface Snapshot {
  drops: Map<string, Map<string, number>>;
  snmp: Map<string, Map<string, number>>;
}

/** Reads the evidence of one run of the traffic: drop counters of the host nodes and the step's
 * counter nodes, and the SNMP counters of every namespace node (not the target's root namespace,
 * whose counters other traffic moves too). */
function evidenceReader(sandbox: Sandbox, dropNodes: string[]) {
  const snmpNodes = Object.keys(sandbox.lab.topology.nodes).filter((n) => sandbox.node(n).realisation === 'netns');
  const run = async (node: string, argv: string[]) => (await sandbox.exec.run(sandbox.node(node).enter(argv))).stdout;
  return {
    usable: dropNodes.length + snmpNodes.length > 0 && Math.max(dropNodes.length, snmpNodes.length) <= MAX_NODES,
    async read(): Promise<Snapshot> {
      const [drops, snmp] = await Promise.all([
        Promise.all(
          dropNodes.map(
            async (n) => [n, dropCounters(parseIptablesSave(await run(n, ['iptables-save', '-c'])))] as const,
          ),
        ),
        Promise.all(snmpNodes.map(async (n) => [n, parseSnmp(await run(n, ['cat', '/proc/net/snmp']))] as const)),
      ]);
      return { drops: new Map(drops), snmp: new Map(snmp) };
    },
  };
}

/** What grew between two snapshots: one line per counter, and how many packets they account for. */
function explain(
  before: Snapshot,
  after: Snapshot,
  client: string,
  withResets: boolean,
): { packets: number; lines: string[] } {
  const lines: string[] = [];
  let packets = 0;
  for (const [node, now] of after.drops) {
    for (const d of dropsBetween(before.drops.get(node)!, now)) {
      packets += d.packets;
      lines.push(`${d.what} on ${node} counted ${d.packets} dropped packet${d.packets === 1 ? '' : 's'}`);
    }
  }
  for (const [node, now] of after.snmp) {
    const names = [...Object.keys(DISCARD_COUNTERS), ...(withResets && node === client ? [RESET_COUNTER] : [])];
    for (const g of grownCounters(before.snmp.get(node)!, now, names)) {
      packets += g.by;
      const meaning = DISCARD_COUNTERS[g.counter] ?? 'reset a reply that belongs to no connection of its own';
      lines.push(`${node}'s kernel ${meaning} (${g.counter} +${g.by})`);
    }
  }
  return { packets, lines };
}

/** Whether every check about this traffic keeps its verdict once the kernel shows no answer will
 * come (its kind's acceptsNoReplyEvidence: a ping that must fail, a connection that must time out). */
function onlyFailures(checks: Check[], t: Traffic): boolean {
  const key = trafficKey(t);
  const mine = checks.filter((c) => checkTraffic(c).some((x) => trafficKey(x) === key));
  return mine.length > 0 && mine.every((c) => moduleOf(c).acceptsNoReplyEvidence?.(c as never) === true);
}

function dropNodesOf(sandbox: Sandbox, counterNodes: string[]): string[] {
  return [
    ...new Set([
      ...Object.entries(sandbox.lab.topology.nodes)
        .filter(([, spec]) => spec.role === 'host')
        .map(([node]) => node),
      ...counterNodes,
    ]),
  ];
}

/**
 * A ping whose every check expects it to fail (with no particular error text) stops once the
 * evidence accounts for as many packets as it sent requests. Only from a namespace node (ip netns
 * exec hands SIGINT to ping; a docker exec client does not).
 */
export async function pingEvidence(
  sandbox: Sandbox,
  checks: Check[],
  counterNodes: string[],
  t: PingTraffic,
): Promise<StopEarly | undefined> {
  if (t.kind !== 'ping' || !onlyFailures(checks, t)) return undefined;
  if (sandbox.node(t.from).realisation === 'docker') return undefined;
  const reader = evidenceReader(sandbox, dropNodesOf(sandbox, counterNodes));
  if (!reader.usable) return undefined;
  const before = await reader.read();
  const sent = t.count ?? 1;
  return {
    everyMs: 20,
    async decide() {
      const { packets, lines } = explain(before, await reader.read(), t.from, false);
      if (packets < sent) return undefined;
      return `${lines.join(', ')}, as many as the ${sent} echo request${sent === 1 ? '' : 's'} sent`;
    },
  };
}

/**
 * A TCP connection whose every check expects a timeout stops (as a timeout) once the evidence
 * accounts for a packet of it: its SYN or SYN-ACK was dropped, could not be routed, or was reset
 * by the client. Each connection is judged on its own (the snapshot is taken before each one).
 */
export async function tcpEvidence(
  sandbox: Sandbox,
  checks: Check[],
  counterNodes: string[],
  t: TcpTraffic,
): Promise<StopEarly | undefined> {
  if (t.kind !== 'tcp' || !onlyFailures(checks, t)) return undefined;
  if (sandbox.node(t.from).realisation === 'docker') return undefined;
  const reader = evidenceReader(sandbox, dropNodesOf(sandbox, counterNodes));
  if (!reader.usable) return undefined;
  let before: Snapshot | undefined;
  return {
    everyMs: 50,
    async begin() {
      before = await reader.read();
    },
    async decide() {
      const { packets, lines } = explain(before!, await reader.read(), t.from, true);
      if (packets < 1) return undefined;
      return `${lines.join(', ')}: the handshake cannot complete, and its retransmissions meet the same rules and routes`;
    },
  };
}
