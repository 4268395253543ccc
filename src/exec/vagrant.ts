// `--target vagrant[:machine]`: asks Vagrant how it reaches the machine (`vagrant ssh-config`)
// and turns that into SshExecutor.connect options.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { EnvError, LabError } from '../errors.ts';

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

/** ssh_config syntax: `Keyword value` or `Keyword=value`, values optionally in double quotes. */
export function parseVagrantSshConfig(text: string): VagrantSshConfig[] {
  const blocks: VagrantSshConfig[] = [];
  let current: VagrantSshConfig | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    const value = m[2]!.trim().replace(/^"(.*)"$/, '$1');
    if (key === 'host') {
      current = { host: value, hostName: value, user: '', port: 22, identityFiles: [] };
      blocks.push(current);
      continue;
    }
    if (!current) continue;
    switch (key) {
      case 'hostname': current.hostName = value; break;
      case 'user': current.user = value; break;
      case 'port': current.port = Number(value); break;
      case 'identityfile': current.identityFiles.push(value); break;
      case 'stricthostkeychecking': current.strictHostKeyChecking = value.toLowerCase(); break;
      case 'userknownhostsfile': current.userKnownHostsFile = value; break;
      case 'proxycommand': current.proxyCommand = value; break;
    }
  }
  return blocks;
}

/**
 * Connect options for one machine. Vagrant's own default is not to check host keys
 * (StrictHostKeyChecking no, UserKnownHostsFile /dev/null: each `vagrant up` makes new ones);
 * that is kept as is: known_hosts /dev/null with accept-new. When the Vagrantfile asks for
 * verification (config.ssh.verify_host_key), those lines are absent and ~/.ssh/known_hosts is
 * checked strictly.
 */
export function vagrantTargetFrom(config: VagrantSshConfig, fileExists: (path: string) => boolean = existsSync): VagrantTarget {
  if (config.proxyCommand) {
    throw new EnvError(
      `Vagrant machine '${config.host}' is reached through a ProxyCommand (${config.proxyCommand}), which nflab does not run`,
      'use a provider that forwards SSH to a port (virtualbox, libvirt), or pass --target ssh://user@host:port',
    );
  }
  const host = config.hostName.includes(':') ? `[${config.hostName}]` : config.hostName;
  const identity = config.identityFiles.find((f) => fileExists(f)) ?? config.identityFiles[0];
  const unchecked = config.strictHostKeyChecking === 'no';
  return {
    machine: config.host,
    target: `ssh://${config.user || 'vagrant'}@${host}:${config.port}`,
    ...(identity ? { identity } : {}),
    ...(config.userKnownHostsFile ? { knownHosts: config.userKnownHostsFile } : {}),
    acceptNewHostKey: unchecked,
  };
}

/** Runs `vagrant ssh-config [machine]` in `cwd` (default: the current directory; Vagrant looks for the Vagrantfile upwards from there). */
export async function vagrantTarget(machine?: string, options: { cwd?: string } = {}): Promise<VagrantTarget> {
  const argv = ['ssh-config', ...(machine ? [machine] : [])];
  const text = await new Promise<string>((resolve, reject) => {
    execFile('vagrant', argv, { encoding: 'utf8', ...(options.cwd ? { cwd: options.cwd } : {}) }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new EnvError('vagrant is not installed on this machine', 'install Vagrant, or pass --target ssh://user@host:port'));
      }
      reject(new EnvError(
        `\`vagrant ${argv.join(' ')}\` failed: ${stderr.trim() || err.message}`,
        `start the machine with \`vagrant up${machine ? ` ${machine}` : ''}\` in the directory of its Vagrantfile`,
      ));
    });
  });
  const blocks = parseVagrantSshConfig(text);
  if (blocks.length === 0) throw new EnvError(`\`vagrant ${argv.join(' ')}\` printed no Host block`, 'check `vagrant status`');
  if (blocks.length > 1 && !machine) {
    throw new LabError(`this Vagrantfile defines several machines (${blocks.map((b) => b.host).join(', ')}): choose one with --target vagrant:NAME`);
  }
  const block = machine ? blocks.find((b) => b.host === machine) ?? blocks[0]! : blocks[0]!;
  return vagrantTargetFrom(block);
}
