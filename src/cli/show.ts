// `nflab show`: a lab as a person reads it, with the exact commands to type for the chosen driver.
import type { DriverKind, Lab } from '../lab/types.ts';
import { planTopology, describePlan } from '../topology/plan.ts';
import { commandDisplay, displayCommand, type ShownKind } from '../exec/display.ts';
import { describeCheck } from '../check/registry.ts';
import { stepTraffic } from '../check/step-needs.ts';
import { pingArgv, tcpArgv } from '../traffic/run.ts';
import { renderRulesAsSaved } from '../k8s/render-iptables.ts';


/** `rootNode`: shown as the machine's own root namespace (--root-namespace): its commands without a prefix. */
export function showLab(lab: Lab, driver: DriverKind, rootNode?: string): string {
  const kindOf = (node: string) => (lab.topology.nodes[node]!.role === 'container' ? lab.topology.nodes[node]!.driver ?? driver : 'netns');
  const shownKind = (node: string): ShownKind => (node === rootNode ? 'root' : kindOf(node));
  const display = (node: string, argv: string[]) => displayCommand(shownKind(node), node, argv);
  const lines: string[] = [`lab ${lab.id}: ${lab.title}`, '', lab.summary, '', `source: ${lab.source.title}${lab.source.url ? ` <${lab.source.url}>` : ''}`, '', '## Build the topology', ''];
  const plan = planTopology(lab.topology);
  lines.push(...describePlan(plan, kindOf, display, rootNode ? { node: rootNode, spec: lab.topology.nodes[rootNode] } : undefined).map((l) => `  ${l}`));
  for (const { node, port } of plan.listeners) lines.push(`  ${display(node, ['socat', `TCP-LISTEN:${port},fork,reuseaddr`, `SYSTEM:echo "${node} client=$SOCAT_PEERADDR:$SOCAT_PEERPORT"`])} &`);
  for (const c of plan.setup) lines.push(`  ${commandDisplay(c, shownKind(c.node))}`);
  if (lab.kubeProxy) {
    // What `iptables-save` prints once the setup loaded them: the form the articles show.
    const saved = renderRulesAsSaved(lab.kubeProxy.services, lab.kubeProxy.options);
    lines.push('', `## kube-proxy's rules on ${lab.kubeProxy.node}, as \`iptables-save\` prints them`, '');
    lines.push(...`${saved.nat}${saved.filter}`.trimEnd().split('\n').map((l) => `  ${l}`));
  }
  lab.steps.forEach((step, i) => {
    lines.push('', `## Step ${i + 1}: ${step.title}`);
    if (step.teaches) lines.push('', step.teaches);
    lines.push('');
    for (const c of step.run ?? []) lines.push(`  ${commandDisplay(c, shownKind(c.node))}`);
    for (const t of stepTraffic(step)) {
      const argv = t.kind === 'ping' ? pingArgv(t) : tcpArgv(t);
      const times = t.kind === 'tcp' && (t.connections ?? 1) > 1 ? `   # ${t.connections} times` : '';
      lines.push(`  ${display(t.from, argv)}${times}`);
    }
    if ((step.expect ?? []).length > 0) {
      lines.push('', '  expect:');
      for (const check of step.expect ?? []) lines.push(`    - ${check.description ?? describeCheck(check)}`);
    }
  });
  return lines.join('\n') + '\n';
}
