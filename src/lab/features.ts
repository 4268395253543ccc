// Kernel features a lab may require. A lab whose feature is missing is skipped with the reason,
// never failed and never faked.
import type { Executor } from '../exec/types.ts';

export const KNOWN_FEATURES = ['br_netfilter', 'xt_recent', 'ip_vs', 'dummy'];

/** How to tell, from inside a namespace of the run, whether the target's kernel has the feature. */
const PROBES: Record<string, { argv: string[]; missing: string }> = {
  br_netfilter: { argv: ['cat', '/proc/sys/net/bridge/bridge-nf-call-iptables'], missing: 'the kernel has no br_netfilter (net.bridge.* sysctls are absent): run `modprobe br_netfilter`' },
  xt_recent: { argv: ['iptables', '-t', 'filter', '-C', 'INPUT', '-m', 'recent', '--rcheck', '--name', 'nflab-probe'], missing: 'the kernel has no xt_recent match (CONFIG_NETFILTER_XT_MATCH_RECENT)' },
  ip_vs: { argv: ['cat', '/proc/net/ip_vs'], missing: 'the kernel has no IPVS (ip_vs): CONFIG_IP_VS is not set here; run this lab in a VM (scripts/vm) or on a kernel with ip_vs' },
  dummy: { argv: ['ip', 'link', 'add', 'nflprobe0', 'type', 'dummy'], missing: 'the kernel has no dummy interfaces (CONFIG_DUMMY)' },
};

/** Returns the reason the feature is missing, or undefined when it is there. `wrap` enters a namespace of the run. */
export async function missingFeature(exec: Executor, wrap: (argv: string[]) => string[], feature: string): Promise<string | undefined> {
  const probe = PROBES[feature];
  if (!probe) return `unknown feature ${feature}`;
  const result = await exec.run(wrap(probe.argv));
  if (feature === 'dummy' && result.code === 0) await exec.run(wrap(['ip', 'link', 'del', 'nflprobe0']));
  // `iptables -C` exits 1 when the rule is absent but the match exists, 2 when the match is unknown.
  const ok = feature === 'xt_recent' ? result.code === 1 : result.code === 0;
  return ok ? undefined : probe.missing;
}
