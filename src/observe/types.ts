// Records that observations are parsed into. Checks compare these, never raw text.

/** One packet line of `tcpdump -nn -l` (optionally with -e for link-level headers). */
export interface PacketRecord {
  proto: 'icmp' | 'icmp6' | 'tcp' | 'udp' | 'arp' | 'other';
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  /** 'echo-request' | 'echo-reply' | other ICMP type words as tcpdump prints them. */
  icmp?: string;
  /** TCP flags as tcpdump prints them inside [..]: 'S', 'S.', '.', 'P.', 'F.', 'R', 'R.'. */
  flags?: string;
  /** The line as tcpdump printed it, kept as evidence. */
  line: string;
}

/** One rule of `iptables-save -c`, with its counters. */
export interface SavedRule {
  table: string;
  chain: string;
  /** 1-based position in its chain. */
  index: number;
  /** The rule as saved, without `-A CHAIN` and without the counters, e.g. `-i hwchiu0 -o hwchiu0 -j ACCEPT`. */
  spec: string;
  packets: number;
  bytes: number;
}

export interface SavedChain {
  table: string;
  chain: string;
  /** ACCEPT/DROP for built-in chains, '-' for user chains. */
  policy: string;
  packets: number;
  bytes: number;
}

export interface SavedRuleset {
  chains: SavedChain[];
  rules: SavedRule[];
}

export interface ConntrackTuple {
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  /** ICMP type/code/id where the protocol is ICMP. */
  type?: number;
  code?: number;
  id?: number;
}

/** One line of `conntrack -L`. */
export interface ConntrackEntry {
  proto: string;
  protonum: number;
  timeout: number;
  /** TCP state (ESTABLISHED, TIME_WAIT, SYN_SENT...). */
  state?: string;
  orig: ConntrackTuple;
  reply: ConntrackTuple;
  /** UNREPLIED, ASSURED... */
  flags: string[];
  mark: number;
  /** The entry's own id (`conntrack -L -o id`): which entries are new since a baseline. */
  entryId?: number;
  line: string;
}

export interface PingOutcome {
  transmitted: number;
  received: number;
  /** Packet loss in percent. */
  loss: number;
  /** Error text such as `ping: connect: Network is unreachable`. */
  error?: string;
  exitCode: number;
  output: string;
}

export type TcpResult = 'connects' | 'refused' | 'timeout' | 'unreachable' | 'error';

export interface TcpOutcome {
  result: TcpResult;
  /** The responder's answer: its node name and the client address it saw. */
  answeredBy?: string;
  clientSeen?: string;
  clientPort?: number;
  error?: string;
  output: string;
}
