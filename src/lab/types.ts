// The lab model: plain data that the engine builds, runs, shows, exports and renders.
// Everything here is JSON-serialisable so a lab can be printed, diffed and validated.

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
  /** Set explicitly at build time (labs-spec G3: never rely on a namespace's defaults). */
  sysctls?: Record<string, string | number>;
  /** TCP responders started on this node: each answers "<node> client=<ip>:<port>" and closes. */
  listen?: number[];
  /** Realise this node with a specific driver regardless of the run's choice. */
  driver?: DriverKind;
}

export interface BridgeSpec {
  node: string;
  addresses?: string[];
}

export interface LinkEnd {
  node: string;
  /** Interface name inside the node (at most 15 characters). */
  name: string;
  addresses?: string[];
  /** Enslave this end to a bridge of the same node. */
  bridge?: string;
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

export type Traffic = PingTraffic | TcpTraffic;

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

export interface TupleMatch {
  src?: string;
  dst?: string;
  sport?: number | Range;
  dport?: number | Range;
}

export type Check =
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
      table: string;
      chain: string;
      /** Words of the rule as the lab wrote it; matched as an ordered subset of the saved rule. Absent: the chain policy. */
      rule?: string;
      packets?: CountExpectation;
      bytes?: CountExpectation;
    }
  | {
      kind: 'conntrack';
      description?: string;
      node: string;
      proto?: string;
      orig?: TupleMatch;
      reply?: TupleMatch;
      /** How many matching entries: 0 asserts absence. */
      count: CountExpectation;
    }
  | {
      kind: 'output';
      description?: string;
      command: Command;
      includes?: string[];
      excludes?: string[];
    };

export type CheckKind = Check['kind'];

export interface Step {
  title: string;
  /** What this step teaches, one or two sentences for the handout. */
  teaches?: string;
  run?: Command[];
  /** Traffic with no check of its own (reachability checks send their own traffic). */
  send?: Traffic[];
  expect?: Check[];
}

export interface LabSource {
  title: string;
  url?: string;
  /** The part of labs-spec.md this lab implements, e.g. 'L1'. */
  spec?: string;
}

export type DriverKind = 'netns' | 'docker';

export interface Lab {
  id: string;
  title: string;
  summary: string;
  source: LabSource;
  topology: Topology;
  steps: Step[];
  /** Kernel features the lab needs; missing ones make the lab a skip with the reason. */
  requires?: string[];
  /** Where the lab came from on disk (filled in by the loader). */
  file?: string;
}
