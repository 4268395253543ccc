// Where a sysctl lives under /proc/sys: the engine writes sysctls as files (one process fewer per node).

/** `net.ipv4.ip_forward=1` → ['/proc/sys/net/ipv4/ip_forward', '1'] (sysctl's rule: '.' and '/' swap,
 * so `net.ipv4.conf.eth0/100.forwarding` names the interface eth0.100). */
export function sysctlFile(assignment: string): [string, string] {
  const eq = assignment.indexOf('=');
  const key = assignment.slice(0, eq).trim();
  return [`/proc/sys/${key.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'))}`, assignment.slice(eq + 1).trim()];
}
