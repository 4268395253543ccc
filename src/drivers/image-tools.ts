// Docker nodes have the tools namespace nodes have, or the lab is refused before anything is
// created (exit 3, naming the tool and the fix), never run to a misleading "the chain is empty".
import type { DriverKind, Lab } from '../lab/types.ts';
import { EnvError } from '../errors.ts';

/** The programs a lab runs inside each of its Docker nodes: its commands there, and what its checks
 * read there (iptables-save for counters, conntrack -L). */
export function toolsInDockerNodes(lab: Lab, runDriver: DriverKind): Map<string, Set<string>> {
  const docker = new Set(
    Object.entries(lab.topology.nodes)
      .filter(([, n]) => n.role === 'container' && (n.driver ?? runDriver) === 'docker')
      .map(([name]) => name),
  );
  const byNode = new Map<string, Set<string>>();
  const need = (node: string, tool: string | undefined) => {
    if (!tool || !docker.has(node)) return;
    if (!byNode.has(node)) byNode.set(node, new Set());
    byNode.get(node)!.add(tool);
  };
  for (const c of lab.topology.setup ?? []) need(c.node, c.argv[0]);
  for (const step of lab.steps) {
    for (const c of step.run ?? []) need(c.node, c.argv[0]);
    for (const check of step.expect ?? []) {
      if (check.kind === 'counter') need(check.node, check.family === 'bridge' ? 'ebtables-save' : 'iptables-save');
      if (check.kind === 'conntrack') need(check.node, 'conntrack');
      if (check.kind === 'output') need(check.command.node, check.command.argv[0]);
    }
  }
  return byNode;
}

/** Exit 3 when a lab needs a tool in a Docker node that the lab image does not have. */
export function assertImageHasTools(
  lab: Lab,
  runDriver: DriverKind,
  has: Set<string>,
  packageOf: (tool: string) => string | undefined,
): void {
  for (const [node, tools] of toolsInDockerNodes(lab, runDriver)) {
    const missing = [...tools].filter((t) => !has.has(t)).sort();
    if (missing.length === 0) continue;
    const packages = [...new Set(missing.map(packageOf).filter((p): p is string => p !== undefined))];
    throw new EnvError(
      `lab ${lab.id}: node ${node} is a Docker container, and the lab image has no ${missing.join(', ')} (the lab runs ${missing.length === 1 ? 'it' : 'them'} there)`,
      packages.length > 0
        ? `apt-get install -y ${packages.join(' ')} on this machine, then nflab image build (the image copies the machine's tools); or run with --nodes netns`
        : `run with --nodes netns (the lab image has no ${missing.join(', ')})`,
    );
  }
}
