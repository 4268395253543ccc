// `--target vagrant[:machine]`: asks Vagrant how it reaches the machine (`vagrant ssh-config`)
// and turns that into SshExecutor.connect options.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { EnvError, LabError } from '../errors.ts';
import { connectOptionsFor, resolveSshHost, sshConfigHosts, type SshHostConfig } from './ssh-config.ts';

/** One `Host` block of `vagrant ssh-config` output. */
export interface VagrantSshConfig {
  /** The machine name (`Host default`). */
  host: string;
  hostName: string;
  user: string;
  port: number;
  /** In order; Vagrant lists several when a box's insecure key may have been replaced. */
  identityFiles: string[];
  /** 'no' when Vagrant does not verify host keys (its default, with UserKnownHostsFile /dev/null). */
  strictHostKeyChecking?: string;
  userKnownHostsFile?: string;
  proxyCommand?: string;
}

/** Options for SshExecutor.connect. */
export interface VagrantTarget {
  machine: string;
  target: string;
  identity?: string;
  knownHosts?: string;
  acceptNewHostKey: boolean;
}

/** 'vagrant' -> {}, 'vagrant:web' -> { machine: 'web' }, anything else -> undefined. */
export function parseVagrantSpec(spec: string): { machine?: string } | undefined {
  if (spec === 'vagrant') return {};
  const m = /^vagrant:([A-Za-z0-9_.-]+)$/.exec(spec);
  return m ? { machine: m[1]! } : undefined;
}

/** The Host blocks of `vagrant ssh-config` output, read by the same ssh_config parser as --target <alias>. */
export function parseVagrantSshConfig(text: string): VagrantSshConfig[] {
  return sshConfigHosts(text).map((host) => {
    const c = resolveSshHost(text, host, '`vagrant ssh-config`');
    return {
      host,
      hostName: c.hostName,
      user: c.user,
      port: c.port,
      identityFiles: c.identityFiles,
      ...(c.strictHostKeyChecking !== undefined ? { strictHostKeyChecking: c.strictHostKeyChecking } : {}),
      ...(c.userKnownHostsFile !== undefined ? { userKnownHostsFile: c.userKnownHostsFile } : {}),
      ...(c.proxyCommand !== undefined ? { proxyCommand: c.proxyCommand } : {}),
    };
  });
}

/**
 * Connect options for one machine. Vagrant's own default is not to check host keys
 * (StrictHostKeyChecking no, UserKnownHostsFile /dev/null: each `vagrant up` makes new ones);
 * that is kept as is: known_hosts /dev/null with accept-new. When the Vagrantfile asks for
 * verification (config.ssh.verify_host_key), those lines are absent and ~/.ssh/known_hosts is
 * checked strictly.
 */
export function vagrantTargetFrom(
  config: VagrantSshConfig,
  fileExists: (path: string) => boolean = existsSync,
): VagrantTarget {
  const host: SshHostConfig = { ...config, alias: config.host, user: config.user || 'vagrant', proxyJump: [] };
  const options = connectOptionsFor(host, `Vagrant machine '${config.host}'`, {}, fileExists);
  return { machine: config.host, ...options, acceptNewHostKey: options.acceptNewHostKey ?? false };
}

/** Runs `vagrant ssh-config [machine]` in `cwd` (default: the current directory; Vagrant looks for the Vagrantfile upwards from there). */
export async function vagrantTarget(machine?: string, options: { cwd?: string } = {}): Promise<VagrantTarget> {
  const argv = ['ssh-config', ...(machine ? [machine] : [])];
  const text = await new Promise<string>((resolve, reject) => {
    execFile(
      'vagrant',
      argv,
      { encoding: 'utf8', ...(options.cwd ? { cwd: options.cwd } : {}) },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          return reject(
            new EnvError(
              'vagrant is not installed on this machine',
              'install Vagrant, or pass --target ssh://user@host:port',
            ),
          );
        }
        reject(
          new EnvError(
            `\`vagrant ${argv.join(' ')}\` failed: ${stderr.trim() || err.message}`,
            `start the machine with \`vagrant up${machine ? ` ${machine}` : ''}\` in the directory of its Vagrantfile`,
          ),
        );
      },
    );
  });
  const blocks = parseVagrantSshConfig(text);
  if (blocks.length === 0)
    throw new EnvError(`\`vagrant ${argv.join(' ')}\` printed no Host block`, 'check `vagrant status`');
  if (blocks.length > 1 && !machine) {
    throw new LabError(
      `this Vagrantfile defines several machines (${blocks.map((b) => b.host).join(', ')}): choose one with --target vagrant:NAME`,
    );
  }
  const block = machine ? (blocks.find((b) => b.host === machine) ?? blocks[0]!) : blocks[0]!;
  return vagrantTargetFrom(block);
}
