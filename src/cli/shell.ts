// `nflab shell <lab> [node]` and `nflab exec <lab> <node> -- <argv…>`: the names nflab show prints
// (c1, host; docker exec c1) work inside, for this caller's run only (src/engine/lab-shell.ts).
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { EnvError } from '../errors.ts';
import { labOf } from '../engine/attach.ts';
import { processStartTime, type RunRecord } from '../engine/journal.ts';
import { labShellArgv, OUTER_ENV, SHELL_STAGE_DIR, type ShellNode } from '../engine/lab-shell.ts';
import { assertNode, selectRun } from '../engine/select-run.ts';
import { resolveLab } from '../resolve/resolve-lab.ts';
import { containerName } from '../drivers/docker.ts';
import { netnsName } from '../drivers/netns.ts';
import { LocalExecutor } from '../exec/local.ts';
import type { Lab } from '../lab/types.ts';

export interface ShellArgs {
  lab: string;
  node?: string;
  run?: string;
  argv?: string[];
}

/** The run's nodes with their real names, checked to exist (a node gone is exit 3, with the fix). */
async function shellNodes(record: RunRecord, lab: Lab): Promise<ShellNode[]> {
  const resolved = resolveLab(lab, {
    driver: record.driver === 'docker' ? 'docker' : 'netns',
    rootNamespace: record.root !== undefined,
  });
  const nodes = Object.keys(lab.topology.nodes).map((name): ShellNode => {
    const realisation = resolved.realisationOf(name);
    return {
      name,
      realisation,
      real:
        realisation === 'docker'
          ? containerName(record.runId, name)
          : realisation === 'netns'
            ? netnsName(record.runId, name)
            : '',
    };
  });
  // The same check as check and trace do: the run's nodes must all be there.
  const { attach } = await import('../engine/attach.ts');
  await attach(record, new LocalExecutor(), lab);
  return nodes;
}

export async function shellCommand(a: ShellArgs): Promise<number> {
  const record = await selectRun({ lab: a.lab, run: a.run });
  const lab = await labOf(record);
  if (a.node !== undefined) assertNode(lab, a.node);
  const nodes = await shellNodes(record, lab);
  if (process.getuid?.() !== 0)
    throw new EnvError('nflab shell makes a mount namespace: it needs root', 'run it as root (sudo nflab shell …)');
  mkdirSync(SHELL_STAGE_DIR, { recursive: true, mode: 0o755 });
  const argv = labShellArgv({
    labId: lab.id,
    runId: record.runId,
    nodes,
    node: a.node,
    argv: a.argv,
    tty: process.stdin.isTTY === true,
  });
  const env = { ...process.env, [OUTER_ENV]: `${process.pid}:${processStartTime(process.pid) ?? ''}` };
  // The shell owns the terminal while it runs: Ctrl-C is for the commands typed in it, not for us.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  process.on('SIGQUIT', ignore);
  try {
    return await new Promise<number>((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', env });
      child.on('error', (err) =>
        reject(new EnvError(`cannot start the lab's shell: ${err.message}`, 'apt-get install util-linux bash')),
      );
      child.on('exit', (code, signal) =>
        resolve(
          code ??
            (signal ? 128 + (({ SIGKILL: 9, SIGTERM: 15, SIGINT: 2 } as Record<string, number>)[signal] ?? 1) : 1),
        ),
      );
    });
  } finally {
    process.off('SIGINT', ignore);
    process.off('SIGQUIT', ignore);
  }
}

export async function execCommand(a: ShellArgs & { node: string; argv: string[] }): Promise<number> {
  return shellCommand(a);
}
