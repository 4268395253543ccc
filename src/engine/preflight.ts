// Before a run: what would make results wrong or impossible, with the fix (exit 3).
import { EnvError } from '../errors.ts';
import type { Executor } from '../exec/types.ts';

const TOOLS: Record<string, string> = {
  ip: 'iproute2', bridge: 'iproute2', iptables: 'iptables', 'iptables-save': 'iptables', tcpdump: 'tcpdump',
  conntrack: 'conntrack', ping: 'iputils-ping', socat: 'socat', sysctl: 'procps', nsenter: 'util-linux',
};

export async function preflight(exec: Executor): Promise<void> {
  const who = await exec.run(['id', '-u']);
  if (who.stdout.trim() !== '0') {
    throw new EnvError(`nflab must run as root on ${exec.name}: it creates namespaces, links and iptables rules`, 'run it with sudo (sudo nflab ...)');
  }
  const missing: string[] = [];
  await Promise.all(Object.keys(TOOLS).map(async (tool) => {
    const r = await exec.run(['sh', '-c', 'command -v "$1"', 'sh', tool]);
    if (r.code !== 0) missing.push(tool);
  }));
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((t) => TOOLS[t]!))].sort();
    throw new EnvError(`missing tools on ${exec.name}: ${missing.sort().join(', ')}`, `apt-get install -y ${packages.join(' ')}`);
  }
  const version = await exec.run(['iptables', '--version']);
  if (!version.stdout.includes('nf_tables')) {
    throw new EnvError(`iptables on ${exec.name} is not the nf_tables backend (${version.stdout.trim()}): counters and traces would come from a different ruleset than the one the labs expect`,
      'update-alternatives --set iptables /usr/sbin/iptables-nft');
  }
}
