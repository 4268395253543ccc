// A lab resolved once for a run: how each node is realised (a namespace, a Docker container, the
// machine's own root namespace), the build plan, each step's traffic and observation requests,
// and how every command is shown to a person. The engine, `nflab show`, handouts and exported
// scripts consume this and nothing else, so none of them re-derives a lab on its own.
import type { Command, DriverKind, Lab, Step, Traffic } from '../lab/types.ts';
import { LabError } from '../errors.ts';
import { commandDisplay, displayCommand } from '../exec/display.ts';
import type { ObservationRequest } from '../check/observations.ts';
import { stepRequests, stepTraffic } from '../check/step-needs.ts';
import { buildPlan, type BuildPlan, type Realisation } from './build-plan.ts';

export interface ResolveOptions {
  /** How container nodes are realised (a node's own `driver` wins). */
  driver: DriverKind;
  /** --root-namespace: the lab's one host node is the machine's own root namespace. */
  rootNamespace?: boolean;
}

export interface ResolvedStep {
  number: number;
  step: Step;
  /** What the step sends, in order: its `send` list, then its checks' traffic, each once. */
  traffic: Traffic[];
  /** What its checks need observed, besides the traffic. */
  requests: ObservationRequest[];
}

export interface ResolvedLab {
  lab: Lab;
  driver: DriverKind;
  /** The node that is the machine's root namespace, with --root-namespace. */
  rootNode?: string;
  realisationOf(node: string): Realisation;
  /** The driver that realises a node (the root node is reached like a namespace node). */
  driverOf(node: string): DriverKind;
  plan: BuildPlan;
  steps: ResolvedStep[];
  /** A command on a node as a person types it for this run. */
  show(node: string, argv: string[]): string;
  /** A lab command (with its standard input or file write) as a person types it. */
  display(command: Command): string;
}

export function resolveLab(lab: Lab, options: ResolveOptions): ResolvedLab {
  const rootNode = options.rootNamespace ? rootNodeOf(lab) : undefined;
  const driverOf = (node: string): DriverKind => {
    const spec = lab.topology.nodes[node]!;
    return spec.role === 'container' ? (spec.driver ?? options.driver) : 'netns';
  };
  const realisationOf = (node: string): Realisation => (node === rootNode ? 'root' : driverOf(node));
  return {
    lab,
    driver: options.driver,
    ...(rootNode ? { rootNode } : {}),
    realisationOf,
    driverOf,
    plan: buildPlan(lab, realisationOf),
    steps: lab.steps.map((step, i) => ({
      number: i + 1,
      step,
      traffic: stepTraffic(step),
      requests: stepRequests(step),
    })),
    show: (node, argv) => displayCommand(realisationOf(node), node, argv),
    display: (command) => commandDisplay(command, realisationOf(command.node)),
  };
}

/** The node a --root-namespace run puts in the machine's root namespace: the lab's one host node. */
export function rootNodeOf(lab: Lab): string {
  const hosts = Object.entries(lab.topology.nodes)
    .filter(([, spec]) => spec.role === 'host')
    .map(([name]) => name);
  if (hosts.length !== 1) {
    throw new LabError(
      `lab ${lab.id}: --root-namespace puts the lab's host node in the machine's root namespace, but the lab has ${hosts.length === 0 ? 'no host node' : `${hosts.length} host nodes (${hosts.join(', ')})`}`,
    );
  }
  const listen = lab.topology.nodes[hosts[0]!]!.listen ?? [];
  if (listen.length > 0) {
    throw new LabError(
      `lab ${lab.id}: node ${hosts[0]}: --root-namespace cannot start the TCP responder on port ${listen.join(', ')} in the machine's root namespace; run the lab in the sandbox`,
    );
  }
  return hosts[0]!;
}
