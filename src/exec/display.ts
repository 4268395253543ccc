// How a command bound to a node is shown to people, for each node driver: the exact form the
// articles use (`ip netns exec c1 …`, `docker exec c1 …`) with the lab's own node names.
import type { Command, DriverKind } from '../lab/types.ts';
import { shellQuote } from './quote.ts';

/** How a node is shown: its driver's form, or 'root' for the node that is the machine's own root
 * namespace (--root-namespace), whose commands are typed without a prefix. */
export type ShownKind = DriverKind | 'root';

export function displayCommand(kind: ShownKind, node: string, argv: string[], stdin = false): string {
  if (kind === 'root') return shellQuote(argv);
  return kind === 'docker'
    ? `docker exec ${stdin ? '-i ' : ''}${node} ${shellQuote(argv)}`
    : `ip netns exec ${node} ${shellQuote(argv)}`;
}

/** A lab command as a person types it, including its standard input or file write. */
export function commandDisplay(command: Command, kind: ShownKind): string {
  if (command.display) return displayCommand(kind, command.node, ['sh', '-c', command.display]);
  const shown = displayCommand(kind, command.node, command.argv, command.stdin !== undefined);
  return command.stdin !== undefined && command.argv[0] === 'iptables-restore'
    ? `${shown} <<'EOF'\n${command.stdin}EOF`
    : shown;
}
