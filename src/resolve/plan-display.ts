// The build plan as a person reads and types it, item by item. The engine logs each item with
// these functions as it executes it; show, handouts and exported scripts print all of them in
// plan order. One rendering, so what is shown is what runs.
import type { Command } from '../lab/types.ts';
import { shellQuote } from '../exec/quote.ts';
import type { ResolvedLab } from './resolve-lab.ts';
import { renameLines, shownTempName, type BuildPlan, type NodeConfig, type PlannedVeth } from './build-plan.ts';
import type { FeatureProbe } from '../lab/features.ts';

export type Phase =
  'create nodes' | 'probe features' | 'create veths' | 'configure nodes' | 'wait for links' | 'setup' | 'responders';

export interface PlanLine {
  phase: Phase;
  /** The command (or, for the wait, a comment) as a person types it. */
  text: string;
}

/** How a person creates a node and names its network namespace, for each realisation. */
const CREATE_DISPLAY = {
  netns: (node: string) => `ip netns add ${node}`,
  docker: (node: string) =>
    `docker run -d --network none --cap-add NET_ADMIN --cap-add NET_RAW --name ${node} --hostname ${node} nflab/lab`,
};

export function createLine(r: ResolvedLab, node: string): string {
  return CREATE_DISPLAY[r.realisationOf(node) === 'docker' ? 'docker' : 'netns'](node);
}

export function probeLine(r: ResolvedLab, p: { feature: string; node: string; probe: FeatureProbe }): string {
  return `${r.show(p.node, p.probe.argv)}   # the kernel must have ${p.feature}${p.probe.cleanup ? ` (then: ${shellQuote(p.probe.cleanup)})` : ''}`;
}

/** `netns c1` / `netns $(docker inspect …)` / nothing for the root node. */
function into(r: ResolvedLab, node: string): string {
  const real = r.realisationOf(node);
  if (real === 'root') return '';
  return ` netns ${real === 'docker' ? `$(docker inspect -f '{{.State.Pid}}' ${node})` : node}`;
}

export function vethLine(r: ResolvedLab, v: PlannedVeth, index: number): string {
  return `ip link add ${shownTempName(index)}${into(r, v.a.node)} type veth peer name ${v.b.name}${into(r, v.b.node)}`;
}

/** A node's configuration: its sysctls, then its `ip -batch` (temporary names renamed first). */
export function configureLines(r: ResolvedLab, c: NodeConfig): string[] {
  return [
    ...(c.sysctls.length > 0 ? [r.show(c.node, ['sysctl', '-w', ...c.sysctls])] : []),
    ...[...renameLines(c, shownTempName), ...c.ip].map((argv) => r.show(c.node, ['ip', ...argv])),
  ];
}

export const WAIT_LINE = '# (nflab waits until every veth is UP and every bridge port forwards)';

export function setupLine(r: ResolvedLab, c: Command): string {
  return r.display(c);
}

export function responderLine(r: ResolvedLab, x: BuildPlan['responders'][number]): string {
  return `${r.show(x.node, x.argv)} &`;
}

/** Every item of the plan, in the order the engine executes them. */
export function planLines(r: ResolvedLab): PlanLine[] {
  const p = r.plan;
  return [
    ...p.create.map(({ node }) => ({ phase: 'create nodes' as const, text: createLine(r, node) })),
    ...p.probes.map((x) => ({ phase: 'probe features' as const, text: probeLine(r, x) })),
    ...p.veths.map((v, i) => ({ phase: 'create veths' as const, text: vethLine(r, v, i) })),
    ...p.configure.flatMap((c) => configureLines(r, c).map((text) => ({ phase: 'configure nodes' as const, text }))),
    ...(p.waitLinks.length > 0 ? [{ phase: 'wait for links' as const, text: WAIT_LINE }] : []),
    ...p.setup.map((c) => ({ phase: 'setup' as const, text: setupLine(r, c) })),
    ...p.responders.map((x) => ({ phase: 'responders' as const, text: responderLine(r, x) })),
  ];
}
