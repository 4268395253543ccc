// --target: where a lab's commands execute. This machine by default; a remote machine over SSH
// (`ssh://user@host[:port]`), or a Vagrant machine through `vagrant ssh-config`.
import type { Argv } from 'yargs';
import type { Executor } from '../exec/types.ts';
import { LocalExecutor } from '../exec/local.ts';
import { LabError } from '../errors.ts';

export interface TargetArgs { target?: string; identity?: string; knownHosts?: string; acceptNewHostKey?: boolean }

export function withTarget<T>(y: Argv<T>) {
  return y
    .option('target', { type: 'string', describe: 'where commands run: ssh://user@host[:port] or vagrant[:machine] (default: this machine)' })
    .option('identity', { type: 'string', describe: 'SSH private key for --target ssh://' })
    .option('known-hosts', { type: 'string', describe: 'known_hosts file to verify the host key against (default ~/.ssh/known_hosts)' })
    .option('accept-new-host-key', { type: 'boolean', default: false, describe: 'trust an unknown host key once and record it (a changed key is always refused)' });
}

export async function connectTarget(args: TargetArgs): Promise<Executor> {
  const target = args.target;
  if (target === undefined || target === 'local') return new LocalExecutor();
  const { SshExecutor } = await import('../exec/ssh.ts');
  if (target === 'vagrant' || target.startsWith('vagrant:')) {
    const { parseVagrantSpec, vagrantTarget } = await import('../exec/vagrant.ts');
    const spec = parseVagrantSpec(target);
    if (!spec) throw new LabError(`--target ${target}: expected vagrant or vagrant:<machine>`);
    return SshExecutor.connect(await vagrantTarget(spec.machine));
  }
  if (target.startsWith('ssh://')) {
    return SshExecutor.connect({ target, identity: args.identity, knownHosts: args.knownHosts, acceptNewHostKey: args.acceptNewHostKey });
  }
  throw new LabError(`--target ${target}: expected ssh://user@host[:port], vagrant[:machine] or local`);
}
