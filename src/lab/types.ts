// The lab model: plain data that the engine builds, runs, shows, exports and renders.
// Everything here is JSON-serialisable so a lab can be printed, diffed and validated.
import type { ProxyOptions, Service } from '../k8s/service.ts';

/** A command is an argv array bound to a node, never a shell string. */
export interface Command {
  node: string;
  argv: string[];
  /** Fed to the command's standard input (iptables-restore, tee). */
  stdin?: string;
  /** How the command is shown to people when argv alone would mislead (e.g. `echo / > file`). */
  display?: string;
  /** A failing exit status is part of the story (e.g. a rule iptables refuses). */
  expectFailure?: boolean;
}

export type NodeRole = 'host' | 'container' | 'outside';

export interface RouteSpec {
  /** `default` or a CIDR. */
  to: string;
  via?: string;
  dev?: string;
  /** Extra words for `ip route add`, e.g. ['table', 'local']. */
  extra?: string[];
}

export interface NodeSpec {
  /** host = the Docker host / Kubernetes node; container = a container or pod; outside = the simulated world. */
  role: NodeRole;
  /** Addresses on interfaces this node owns that are not link ends, e.g. { lo: ['198.51.100.8/32'] }. */
  addresses?: Record<string, string[]>;
  routes?: RouteSpec[];
  /** Set explicitly at build time (docs/kernel-facts.md#g3: never rely on a namespace's defaults). */
  sysctls?: Record<string, string | number>;
  /** TCP responders started on this node: each answers "<node> client=<ip>:<port>" and closes. */
  listen?: number[];
  /** Realise this node with a specific driver regardless of the run's choice. */
  driver?: DriverKind;
  /** Permanent neighbour (ARP) entries, added after the links are up. The kernel's ARP table is
   * shared by all namespaces and holds 1024 learned entries (gc_thresh3); permanent entries do not
   * count, so large generated topologies pin them instead of learning them. */
  neighbors?: NeighborSpec[];
}

export interface NeighborSpec {
  address: string;
  /** Link-layer address, e.g. 02:00:00:00:00:01. */
  mac: string;
  dev: string;
}

export interface BridgeSpec {
  node: string;
  addresses?: string[];
  /** A fixed MAC (otherwise the bridge takes the lowest MAC of its ports, which changes as ports join). */
  mac?: string;
}

export interface LinkEnd {
  node: string;
  /** Interface name inside the node (at most 15 characters). */
  name: string;
  addresses?: string[];
  /** Enslave this end to a bridge of the same node. */
  bridge?: string;
  /** A fixed MAC address for this end (set before it goes up). */
  mac?: string;
}

export interface LinkSpec {
  a: LinkEnd;
  b: LinkEnd;
}

export interface Topology {
  nodes: Record<string, NodeSpec>;
  bridges?: Record<string, BridgeSpec>;
  links: LinkSpec[];
  /** Commands that complete the starting state (rules a Docker host already has, and so on). */
  setup?: Command[];
}

// ---- traffic ---------------------------------------------------------------------------------

export interface PingTraffic {
  kind: 'ping';
  from: string;
  to: string;
  count?: number;
  /** Seconds to wait for each reply (ping -W). */
  wait?: number;
}

export interface TcpTraffic {
  kind: 'tcp';
  from: string;
  to: string;
  port: number;
  /** How many new connections to open, one after another. */
  connections?: number;
  sourcePort?: number;
  /** Seconds before a connection attempt counts as timed out. */
  timeout?: number;
}

/** Datagrams sent with socat (no answer expected): NAT and conntrack of UDP flows. */
export interface UdpTraffic {
  kind: 'udp';
  from: string;
  to: string;
  port: number;
  sourcePort?: number;
  /** How many datagrams, one socat run each (default 1). */
  count?: number;
}

export type Traffic = PingTraffic | TcpTraffic | UdpTraffic;

// ---- checks ----------------------------------------------------------------------------------

export interface PacketMatch {
  proto?: 'icmp' | 'icmp6' | 'tcp' | 'udp' | 'arp';
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  icmp?: 'echo-request' | 'echo-reply';
  /** TCP flags as tcpdump prints them: 'S', 'S.', '.', 'P.', 'F.', 'R' ... */
  flags?: string;
}

export interface Range {
  min?: number;
  max?: number;
}
export type CountExpectation = number | Range;

/** Packets a path check traces: everything given must match. */
export interface PathFilter {
  proto?: 'icmp' | 'tcp' | 'udp';
  /** IPv4 address or CIDR. */
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
}

export interface TupleMatch {
  src?: string;
  dst?: string;
  sport?: number | Range;
  dport?: number | Range;
}

/** Fields every check may carry. */
export interface CheckCommon {
  /** Why this check holds only when every node is a namespace of the run: with --root-namespace the
   * machine's own traffic (the SSH session nflab runs over, say) passes the same chains. Such a check
   * is skipped with this reason there. Set it with sandboxOnly(). */
  sandboxOnly?: string;
  /** What the check is about, overriding its kind's default (src/check/kinds/*.ts): `behaviour`
   * (reachability, what is seen where, translation, path, a conntrack tuple) or `reference` (the
   * reference answer's own rule or text). `nflab check` calls a step whose behaviour checks are met
   * and whose reference checks are not "met, differs from the reference". */
  about?: 'behaviour' | 'reference';
  /** The lab's own hint, shown after the evidence when the check is not met. */
  hint?: string;
}

export type Check = CheckCommon &
  (
    | {
        kind: 'ping';
        description?: string;
        traffic: PingTraffic;
        expect: 'succeeds' | 'fails';
        /** A substring of ping's error text, e.g. 'Network is unreachable'. */
        error?: string;
      }
    | {
        kind: 'tcp';
        description?: string;
        traffic: TcpTraffic;
        expect: 'connects' | 'refused' | 'timeout' | 'unreachable';
        /** The responder that must answer (its node name). */
        answeredBy?: string;
        /** The client address the responder must have seen. */
        clientSeen?: string;
      }
    | {
        kind: 'packets';
        description?: string;
        node: string;
        iface: string;
        match: PacketMatch;
        count: CountExpectation;
      }
    | {
        kind: 'counter';
        description?: string;
        node: string;
        /** 'bridge': an ebtables rule or chain (ebtables-save -c); else iptables (iptables-save -c). */
        family?: 'bridge';
        table: string;
        chain: string;
        /** Words of the rule as the lab wrote it; matched as an ordered subset of the saved rule. Absent: the chain policy. */
        rule?: string;
        /** Several rules (each written as for `rule`, each matching one rule): their deltas are summed. */
        rules?: string[];
        packets?: CountExpectation;
        bytes?: CountExpectation;
        /** The packet delta equals the number of connections of `traffic` (sent in the same step) that `answeredBy` answered. */
        answersOf?: { traffic: TcpTraffic; answeredBy: string };
      }
    | {
        /** How new connections spread over backends (kube-proxy's `statistic --mode random`). */
        kind: 'distribution';
        description?: string;
        traffic: TcpTraffic;
        /** Expected share per backend node (summing to 1); every connection must be answered by one of them. */
        shares: Record<string, number>;
        /** Each count must lie within N·p ± sigmas·sqrt(N·p(1−p)); default 4. */
        sigmas?: number;
      }
    | {
        /** Every connection of the traffic answered by one and the same backend (which one is random). */
        kind: 'sticky';
        description?: string;
        traffic: TcpTraffic;
        /** The backend must be one of these nodes. */
        among?: string[];
      }
    | {
        /** Entries of xt_recent lists (/proc/net/xt_recent/<list>) of a node, read after the traffic. */
        kind: 'recent';
        description?: string;
        node: string;
        /** One list by name, or one list per backend node (node → list), e.g. kube-proxy's KUBE-SEP-* lists. */
        lists: string | Record<string, string>;
        /** 'has': the list (with `chosenBy`: only the chosen backend's list) holds `address`; 'lacks': no list does; 'empty': no entries at all. */
        expect: 'has' | 'lacks' | 'empty';
        address?: string;
        /** With per-backend lists: the traffic (same step) whose single answering backend names the list that must hold `address`. */
        chosenBy?: TcpTraffic;
      }
    | {
        /** Every node pings every other node's address (node → address), one ping each, at most
         * `parallel` source nodes at a time (each sends its pings concurrently). */
        kind: 'all-pairs';
        description?: string;
        nodes: Record<string, string>;
        /** 'succeeds': every pair gets a reply; 'fails': no pair does. */
        expect: 'succeeds' | 'fails';
        /** Source nodes pinging at once (default 2 × CPUs of the target). */
        parallel?: number;
        /** Seconds to wait for each reply (ping -W, default 1). */
        wait?: number;
      }
    | {
        /** Each node of `from` pings `to` once (e.g. every container its gateway), at most `parallel` at a time. */
        kind: 'all-reach';
        description?: string;
        from: string[];
        to: string;
        expect: 'succeeds' | 'fails';
        parallel?: number;
        wait?: number;
      }
    | {
        kind: 'conntrack';
        description?: string;
        node: string;
        proto?: string;
        orig?: TupleMatch;
        reply?: TupleMatch;
        /** The entry's conntrack mark (CONNMARK), compared as a number: 16384 and 0x4000 are the same. */
        mark?: number;
        /** How many matching entries: 0 asserts absence. */
        count: CountExpectation;
      }
    | {
        /** The tables, chains and rules packets went through in one node, traced while the step's traffic ran. */
        kind: 'path';
        description?: string;
        node: string;
        /** Which packets to trace (as they enter the node, before any NAT there). */
        filter: PathFilter;
        /** Hops the packet goes through, in this order: `nat PREROUTING: DNAT`, `filter FORWARD: policy DROP`,
         * `bridge filter FORWARD: ACCEPT`; `<table> <CHAIN>` alone is any hop of that chain. */
        through?: string[];
        /** The packet's hops are exactly `through`, nothing else. */
        exact?: boolean;
        /** Hops the packet must not go through (same forms as `through`). */
        notThrough?: string[];
        /** Which traced packets are judged: the first (default), each one, or the n-th (1-based). */
        packet?: 'first' | 'each' | number;
        /** Words of a rule (ordered subset, as counter checks match) that one hop of the packet matched. */
        rule?: string;
      }
    | {
        kind: 'output';
        description?: string;
        command: Command;
        includes?: string[];
        excludes?: string[];
      }
  );

export type CheckKind = Check['kind'];

/** Time limits (seconds), for the lab or one step; defaults in src/resolve/bounds.ts. */
export interface LimitsSpec {
  /** One command of the lab (default 60). */
  commandSeconds?: number;
  /** One step: commands, traffic, observations, checks (default 1800). */
  stepSeconds?: number;
}

export interface Step {
  title: string;
  limits?: LimitsSpec;
  /** What this step teaches, one or two sentences for the handout. */
  teaches?: string;
  /** Predict, then observe: questions the student edition asks before the step; their answers are
   * printed only in the teacher edition. */
  questions?: Question[];
  run?: Command[];
  /** Traffic with no check of its own (reachability checks send their own traffic). */
  send?: Traffic[];
  expect?: Check[];
}

/** A question whose answer is something the step observes ("which source address will the capture
 * on eth0 show?"). */
export interface Question {
  ask: string;
  /** The answer, as the teacher edition prints it. */
  answer: string;
  /** Index in the step's `expect` of the check whose observation is the answer: the teacher edition
   * prints what a run observed there. */
  observedIn?: number;
}

export interface LabSource {
  title: string;
  url?: string;
  /** The note of docs/labs.md this lab implements, e.g. 'L1' (docs/labs.md#l1). */
  spec?: string;
}

export type DriverKind = 'netns' | 'docker';

/** The Services of a kube-proxy lab, the node whose iptables hold their rules, and the rendering options. */
export interface KubeProxySpec {
  node: string;
  services: Service[];
  options: ProxyOptions;
}

export interface Lab {
  id: string;
  title: string;
  summary: string;
  source: LabSource;
  topology: Topology;
  steps: Step[];
  /** Kernel features the lab needs; missing ones make the lab a skip with the reason. */
  requires?: string[];
  /** Time limits for every step of the lab (a step's own limits override them). */
  limits?: LimitsSpec;
  /** Kubernetes Services whose kube-proxy rules the lab loads (with kubeProxyRules() in its setup);
   * `nflab show` prints those rules as iptables-save does. */
  kubeProxy?: KubeProxySpec;
  /** Where the lab came from on disk (filled in by the loader). */
  file?: string;
}
