// --target: where a lab's commands execute. This machine by default; a remote machine over SSH
// (`ssh://user@host[:port]`), a Host of ~/.ssh/config (or --ssh-config FILE), or a Vagrant machine
// through `vagrant ssh-config`. Only `nflab run` takes several (src/cli/targets.ts).
import type { Argv } from 'yargs';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Executor } from '../exec/types.ts';
import { LocalExecutor } from '../exec/local.ts';
import { LabError } from '../errors.ts';

export interface TargetArgs {
  target?: string | string[];
  identity?: string;
  knownHosts?: string;
  acceptNewHostKey?: boolean;
  sshConfig?: string;
}

export function withTarget<T>(y: Argv<T>) {
  return y
    .option('target', {
      type: 'string',
      describe:
        'where commands run: ssh://user@host[:port], a Host of ~/.ssh/config, vagrant[:machine] (default: this machine)',
    })
    .option('ssh-config', { type: 'string', describe: 'ssh_config file for --target <host> (default ~/.ssh/config)' })
    .option('identity', {
      type: 'string',
      describe: "SSH private key for --target (instead of the config's IdentityFile)",
    })
    .option('known-hosts', {
      type: 'string',
      describe:
        "known_hosts file to verify the host key against (default: the config's UserKnownHostsFile, else ~/.ssh/known_hosts)",
    })
    .option('accept-new-host-key', {
      type: 'boolean',
      default: false,
      describe: 'trust an unknown host key once and record it (a changed key is always refused)',
    });
}

/** The one target of a command that takes one. */
export function singleTarget(args: TargetArgs): string | undefined {
  if (!Array.isArray(args.target)) return args.target;
  if (args.target.length > 1)
    throw new LabError(`--target is given ${args.target.length} times: only nflab run takes several targets`);
  return args.target[0];
}

export async function connectTarget(args: TargetArgs): Promise<Executor> {
  const target = singleTarget(args);
  if (target === undefined || target === 'local') return new LocalExecutor();
  const { SshExecutor } = await import('../exec/ssh.ts');
  if (target === 'vagrant' || target.startsWith('vagrant:')) {
    const { parseVagrantSpec, vagrantTarget } = await import('../exec/vagrant.ts');
    const spec = parseVagrantSpec(target);
    if (!spec) throw new LabError(`--target ${target}: expected vagrant or vagrant:<machine>`);
    return SshExecutor.connect(await vagrantTarget(spec.machine));
  }
  if (target.startsWith('ssh://')) {
    return SshExecutor.connect({
      target,
      identity: args.identity,
      knownHosts: args.knownHosts,
      acceptNewHostKey: args.acceptNewHostKey,
    });
  }
  return SshExecutor.connect(await sshConfigTarget(target, args));
}

/** `--target myvm`: the Host block of the ssh_config, as connect options (ProxyJump hops included). */
async function sshConfigTarget(alias: string, args: TargetArgs) {
  const { connectOptionsFor, namesHost, readSshConfigText, resolveSshHost, sshConfigHosts } =
    await import('../exec/ssh-config.ts');
  const file = sshConfigFile(args);
  if (!existsSync(file))
    throw new LabError(
      `--target ${alias}: expected ssh://user@host[:port], vagrant[:machine], local, or a Host of ${file} (which does not exist)`,
    );
  const text = readSshConfigText(file);
  if (!namesHost(text, alias)) {
    const hosts = sshConfigHosts(text);
    throw new LabError(
      `--target ${alias}: ${file} has no Host ${alias}${hosts.length ? ` (its hosts: ${hosts.join(', ')})` : ''}; or give ssh://user@host[:port]`,
    );
  }
  return connectOptionsFor(resolveSshHost(text, alias, file), file, {
    ...(args.identity ? { identity: args.identity } : {}),
    ...(args.knownHosts ? { knownHosts: args.knownHosts } : {}),
    acceptNewHostKey: args.acceptNewHostKey ?? false,
  });
}

export function sshConfigFile(args: TargetArgs): string {
  return args.sshConfig ?? join(homedir(), '.ssh', 'config');
}
