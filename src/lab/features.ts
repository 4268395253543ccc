// Kernel features a lab may require, and how each is probed from inside a namespace of the run.
// A lab whose feature is missing is skipped with the reason, never failed and never faked. The
// engine and exported scripts run the same probes (src/resolve/build-plan.ts, phase 2).

export interface FeatureProbe {
  argv: string[];
  /** The exit status that means the feature is there (`iptables -C` exits 1 when the rule is
   * absent but the match exists, 2 when the match is unknown). */
  okStatus: number;
  /** Undoes what a successful probe created. */
  cleanup?: string[];
  /** Why the lab is skipped when the probe fails. */
  missing: string;
}

export const FEATURE_PROBES: Record<string, FeatureProbe> = {
  br_netfilter: {
    argv: ['cat', '/proc/sys/net/bridge/bridge-nf-call-iptables'],
    okStatus: 0,
    missing: 'the kernel has no br_netfilter (net.bridge.* sysctls are absent): run `modprobe br_netfilter`',
  },
  xt_recent: {
    argv: ['iptables', '-t', 'filter', '-C', 'INPUT', '-m', 'recent', '--rcheck', '--name', 'nflab-probe'],
    okStatus: 1,
    missing: 'the kernel has no xt_recent match (CONFIG_NETFILTER_XT_MATCH_RECENT)',
  },
  ip_vs: {
    argv: ['cat', '/proc/net/ip_vs'],
    okStatus: 0,
    missing:
      'the kernel has no IPVS (ip_vs): CONFIG_IP_VS is not set here; run this lab in a VM (scripts/vm) or on a kernel with ip_vs',
  },
  dummy: {
    argv: ['ip', 'link', 'add', 'nflprobe0', 'type', 'dummy'],
    okStatus: 0,
    cleanup: ['ip', 'link', 'del', 'nflprobe0'],
    missing: 'the kernel has no dummy interfaces (CONFIG_DUMMY)',
  },
};

export const KNOWN_FEATURES = Object.keys(FEATURE_PROBES);
