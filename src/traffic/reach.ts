// Reachability at scale: many one-packet pings (all pairs of a set of nodes, or every node to one
// address), one process per source node that sends all of that node's pings at once (fping where
// the target has it, else a shell with one ping per target), and at most `parallel` sources at a time.
import type { Check } from '../lab/types.ts';
import type { Executor } from '../exec/types.ts';
import { defaultParallelism, mapLimit } from '../exec/pool.ts';

export type ReachCheck = Extract<Check, { kind: 'all-pairs' | 'all-reach' }>;

export interface ReachOutcome {
  from: string;
  to: string;
  /** ping's exit status: 0 a reply came, 1 no reply, 2 an error (e.g. no route). */
  code: number;
}

export interface ReachResult {
  outcomes: ReachOutcome[];
  parallel: number;
  ms: number;
  /** One of the pings as a person types it. */
  display: string;
}

/** Identifies a reachability check's traffic within its step. */
export function reachKey(c: ReachCheck): string {
  return c.kind === 'all-pairs'
    ? JSON.stringify(['all-pairs', c.nodes, c.wait ?? 1])
    : JSON.stringify(['all-reach', c.from, c.to, c.wait ?? 1]);
}

/** The targets of each source node. */
export function reachTargets(c: ReachCheck): Map<string, string[]> {
  if (c.kind === 'all-reach') return new Map(c.from.map((node) => [node, [c.to]]));
  const all = Object.entries(c.nodes);
  return new Map(
    all.map(([node, own]) => [
      node,
      all
        .filter(([other]) => other !== node)
        .map(([, address]) => address)
        .filter((a) => a !== own),
    ]),
  );
}

// Each target gets its own ping in the background, so a node's unanswered pings cost one wait,
// not one per target. The wait and the targets are positional parameters, never pasted in.
const SCRIPT = 'w=$1; shift; for a; do (ping -c 1 -W "$w" -q "$a" >/dev/null 2>&1; echo "$a $?") & done; wait';

/** fping pings many targets from one process: one echo request each, no retry, 0.1 ms apart. */
function fpingArgv(waitSeconds: string, targets: string[]): string[] {
  return ['fping', '-a', '-r', '0', '-i', '0.1', '-t', String(Math.round(Number(waitSeconds) * 1000)), ...targets];
}

/** Whether the target machine has fping (a process per source node instead of one per pair). */
const fpingOn = new WeakMap<Executor, Promise<boolean>>();
function hasFping(exec: Executor): Promise<boolean> {
  let known = fpingOn.get(exec);
  if (!known) {
    known = exec.run(['sh', '-c', 'command -v fping']).then((r) => r.code === 0);
    fpingOn.set(exec, known);
  }
  return known;
}

/** fping -a prints the targets that answered; one that could not even be sent to (no route) is
 * named on stderr with the error: ping's exit status 2, as for a single ping. */
function fpingCodes(tos: string[], stdout: string, stderr: string): Map<string, number> {
  const alive = new Set(
    stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean),
  );
  const failed = new Set(
    stderr.split('\n').flatMap((l) => (/error while sending ping/i.test(l) ? [l.split(':')[0]!.trim()] : [])),
  );
  return new Map(tos.map((to) => [to, alive.has(to) ? 0 : failed.has(to) ? 2 : 1]));
}

export async function runReach(
  exec: Executor,
  wrap: (node: string, argv: string[]) => string[],
  display: (node: string, argv: string[]) => string,
  c: ReachCheck,
): Promise<ReachResult> {
  const started = Date.now();
  const wait = String(c.wait ?? 1);
  const parallel = c.parallel ?? defaultParallelism();
  const targets = [...reachTargets(c)];
  const fping = await hasFping(exec);
  const perSource = await mapLimit(targets, parallel, async ([from, tos]) => {
    if (fping && tos.length > 1) {
      const r = await exec.run(wrap(from, fpingArgv(wait, tos)));
      const codes = fpingCodes(tos, r.stdout, r.stderr);
      return tos.map((to) => ({ from, to, code: codes.get(to)! }));
    }
    if (tos.length === 1) {
      // One target: ping itself, without a shell around it.
      const r = await exec.run(wrap(from, ['ping', '-c', '1', '-W', wait, '-q', tos[0]!]));
      return [{ from, to: tos[0]!, code: r.code ?? 2 }];
    }
    const r = await exec.run(wrap(from, ['sh', '-c', SCRIPT, 'sh', wait, ...tos]));
    const codes = new Map(
      r.stdout.split('\n').flatMap((line) => {
        const m = /^(\S+) (\d+)$/.exec(line.trim());
        return m ? [[m[1]!, Number(m[2])] as const] : [];
      }),
    );
    // A target with no line: the shell could not run its ping (reported as an error, 2).
    return tos.map((to) => ({ from, to, code: codes.get(to) ?? 2 }));
  });
  const [firstFrom, firstTos] = targets[0] ?? ['?', ['?']];
  return {
    outcomes: perSource.flat(),
    parallel,
    ms: Date.now() - started,
    display:
      fping && firstTos.length > 1
        ? display(firstFrom, fpingArgv(wait, firstTos))
        : display(firstFrom, ['ping', '-c', '1', '-W', wait, firstTos[0] ?? '?']),
  };
}
