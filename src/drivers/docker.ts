// Container nodes as Docker containers: no Docker network (--network none), the lab wires its own
// veths into each container's namespace by PID, and commands run through `docker exec`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Dockerode from 'dockerode';
import type { NodeDriver } from './types.ts';
import type { Executor } from '../exec/types.ts';
import { shellQuote } from '../exec/quote.ts';
import { EnvError } from '../errors.ts';
import { ensureLabImage } from './image.ts';

export const CONTAINER_PREFIX = 'nfl-';

/** Labels on every container nflab creates; `nflab clean` only ever touches containers with LABEL_NFLAB. */
export const LABEL_NFLAB = 'nflab';
export const LABEL_RUN = 'nflab.run';
export const LABEL_NODE = 'nflab.node';

/**
 * Docker changes these in a container's fresh network namespace (IPv6 off, unprivileged ping and
 * low ports allowed). Setting them back to the kernel's defaults makes a container node behave
 * like an `ip netns add` node, so both modes print the same output.
 */
export const NETNS_DEFAULT_SYSCTLS: Record<string, string> = {
  'net.ipv6.conf.all.disable_ipv6': '0',
  'net.ipv6.conf.default.disable_ipv6': '0',
  'net.ipv6.conf.lo.disable_ipv6': '0',
  'net.ipv4.ping_group_range': '1 0',
  'net.ipv4.ip_unprivileged_port_start': '1024',
};

/** The defaults above that this kernel has (a kernel booted with ipv6.disable=1 has no net.ipv6). */
function defaultSysctls(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(NETNS_DEFAULT_SYSCTLS).filter(([key]) => fs.existsSync(`/proc/sys/${key.replace(/\./g, '/')}`)),
  );
}

export function containerName(runId: string, node: string): string {
  return `${CONTAINER_PREFIX}${runId}-${node}`;
}

export interface DockerDriverOptions {
  runId: string;
  exec: Executor;
  /** Image for the containers; default: nflab's lab image, built locally on first use. */
  image?: string;
  docker?: Dockerode;
  log?: (line: string) => void;
}

type Log = (line: string) => void;

// ---- reaching the engine -----------------------------------------------------------------------

const START_DOCKERD =
  'dockerd --iptables=false --ip6tables=false --ip-forward=false --bridge=none > /var/log/dockerd.log 2>&1 &  (or: systemctl start docker)';

function onPath(name: string): boolean {
  const dirs = new Set([
    ...(process.env.PATH ?? '').split(':'),
    '/usr/local/sbin',
    '/usr/local/bin',
    '/usr/sbin',
    '/usr/bin',
    '/sbin',
    '/bin',
  ]);
  for (const dir of dirs) {
    if (!dir) continue;
    try {
      fs.accessSync(path.join(dir, name), fs.constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

function noEngine(detail: string): EnvError {
  if (!onPath('dockerd')) {
    return new EnvError(
      `Docker nodes need a Docker engine, and none is installed here (${detail})`,
      'apt-get install -y docker.io',
    );
  }
  return new EnvError(`the Docker engine is not running (${detail})`, START_DOCKERD);
}

/** Turn a failure to talk to the daemon into an EnvError that says what to do. */
export function dockerEnvError(err: unknown): EnvError {
  if (err instanceof EnvError) return err;
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  const where = e.address
    ? e.port
      ? `${e.address}:${e.port}`
      : e.address
    : (process.env.DOCKER_HOST ?? '/var/run/docker.sock');
  switch (e.code) {
    case 'ENOENT':
      return noEngine(`no socket at ${where}`);
    case 'ECONNREFUSED':
      return noEngine(`nothing listens on ${where}`);
    case 'EACCES':
    case 'EPERM':
      return new EnvError(`permission denied on the Docker socket ${where}`, 'run nflab as root (sudo nflab ...)');
    case 'ABORT_ERR':
      return new EnvError(
        `the Docker engine at ${where} did not answer in time`,
        `check the daemon (docker info); restart it: ${START_DOCKERD}`,
      );
    default:
      return new EnvError(
        `cannot use the Docker engine at ${where}: ${e.message ?? String(err)}`,
        `check the daemon (docker info); start it: ${START_DOCKERD}`,
      );
  }
}

/** A Dockerode client for the local engine, after a ping that answers within `timeoutMs`. */
export async function connectDocker(options: { timeoutMs?: number } = {}): Promise<Dockerode> {
  let docker: Dockerode;
  try {
    docker = new Dockerode();
  } catch (err) {
    throw new EnvError(
      `cannot use DOCKER_HOST=${process.env.DOCKER_HOST}: ${(err as Error).message}`,
      'unset DOCKER_HOST or set it to unix:///var/run/docker.sock',
    );
  }
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), options.timeoutMs ?? 3000);
  try {
    // dockerode accepts an abort signal here; its type declarations do not list the argument.
    const ping = docker.ping.bind(docker) as unknown as (opts: { abortSignal: AbortSignal }) => Promise<unknown>;
    await ping({ abortSignal: abort.signal });
  } catch (err) {
    throw dockerEnvError(abort.signal.aborted ? Object.assign(new Error('timeout'), { code: 'ABORT_ERR' }) : err);
  } finally {
    clearTimeout(timer);
  }
  return docker;
}

/** The docker CLI runs every `docker exec`, on the executor's machine. */
async function checkDockerCli(exec: Executor): Promise<void> {
  const r = await exec.run(['docker', 'version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 });
  if (r.code === 127) {
    throw new EnvError(
      `Docker nodes run commands with \`docker exec\`, and the docker command is missing on ${exec.name}`,
      'apt-get install -y docker.io',
    );
  }
  if (r.code !== 0) {
    const msg = r.stderr.trim();
    if (/permission denied/i.test(msg))
      throw new EnvError(
        `the docker command on ${exec.name} cannot reach the engine: ${msg}`,
        'run nflab as root (sudo nflab ...)',
      );
    throw new EnvError(`the docker command on ${exec.name} cannot reach the engine: ${msg}`, START_DOCKERD);
  }
}

function isGone(err: unknown): boolean {
  const status = (err as { statusCode?: number }).statusCode;
  // 404: already removed; 409: a removal is already in progress.
  return status === 404 || (status === 409 && /already in progress/i.test(String((err as Error).message)));
}

async function forceRemove(docker: Dockerode, id: string): Promise<void> {
  try {
    await docker.getContainer(id).remove({ force: true });
  } catch (err) {
    if (!isGone(err)) throw err;
  }
}

// ---- the driver --------------------------------------------------------------------------------

export class DockerDriver implements NodeDriver {
  readonly kind = 'docker' as const;
  private readonly pids = new Map<string, string>();
  private docker?: Dockerode;
  private connectFailed = false;
  /** The docker CLI is checked once per driver, not once per create(). */
  private cliChecked?: Promise<void>;
  private image?: Promise<string>;
  private readonly log: Log;

  constructor(private readonly options: DockerDriverOptions) {
    this.docker = options.docker;
    this.log = options.log ?? (() => {});
  }

  private async engine(): Promise<Dockerode> {
    if (!this.docker) {
      try {
        this.docker = await connectDocker();
      } catch (err) {
        this.connectFailed = true;
        throw err;
      }
    }
    return this.docker;
  }

  private name(node: string): string {
    return containerName(this.options.runId, node);
  }

  async create(nodes: string[]): Promise<void> {
    const docker = await this.engine();
    const [image] = await Promise.all([
      (this.image ??=
        this.options.image !== undefined ? Promise.resolve(this.options.image) : ensureLabImage(docker, this.log)),
      (this.cliChecked ??= checkDockerCli(this.options.exec)),
    ]);
    const results = await Promise.allSettled(nodes.map((node) => this.createOne(docker, image, node)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    // Containers that did start carry the run label: destroy() removes them.
    if (failed) throw failed.reason;
  }

  private async createOne(docker: Dockerode, image: string, node: string): Promise<void> {
    const name = this.name(node);
    let container: Dockerode.Container;
    try {
      container = await docker.createContainer({
        name,
        Image: image,
        Hostname: node,
        Labels: { [LABEL_NFLAB]: '1', [LABEL_RUN]: this.options.runId, [LABEL_NODE]: node },
        HostConfig: {
          NetworkMode: 'none',
          CapAdd: ['NET_ADMIN', 'NET_RAW'],
          Sysctls: defaultSysctls(),
          LogConfig: { Type: 'none', Config: {} },
        },
      });
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404)
        throw new EnvError(
          `Docker image ${image} is not present`,
          `build or pull it, or leave out --image to use nflab's own image`,
        );
      if (status === 409)
        throw new Error(`a container named ${name} already exists (run id reused?): docker rm -f ${name}`);
      if (status === undefined) throw dockerEnvError(err);
      throw err;
    }
    await container.start();
    const info = await container.inspect();
    const pid = info.State.Pid;
    if (!info.State.Running || !pid)
      throw new Error(`container ${name} for node ${node} did not stay running (${info.State.Status})`);
    this.pids.set(node, String(pid));
    await this.makeNetSysctlsWritable(node, String(pid));
  }

  /**
   * Docker mounts /proc/sys read-only, so `sysctl -w net....` inside a container fails. Labs set
   * per-namespace net.* sysctls (ip_forward, rp_filter, log_martians) as a plain namespace can:
   * re-mount only /proc/sys/net read-write in the container's mount namespace. Everything else in
   * /proc/sys (kernel.*, vm.*: host-wide) stays read-only.
   */
  private async makeNetSysctlsWritable(node: string, pid: string): Promise<void> {
    // -p as well: busybox mount needs the container's /proc/self/mounts to remount.
    const inContainer = ['nsenter', '-t', pid, '-m', '-p', '--'];
    for (const argv of [
      ['mount', '-o', 'bind', '/proc/sys/net', '/proc/sys/net'],
      ['mount', '-o', 'remount,bind,rw', '/proc/sys/net'],
    ]) {
      const r = await this.options.exec.run([...inContainer, ...argv]);
      if (r.code === 0) continue;
      const problem = `container ${this.name(node)}: could not make /proc/sys/net writable (${argv.join(' ')}): ${r.stderr.trim()}`;
      // The image's own `mount` runs here; an image of the user's choice may lack one. Labs that
      // set no sysctl inside containers still work, so only nflab's own image makes this fatal.
      if (this.options.image === undefined) throw new Error(problem);
      this.log(`warning: ${problem}; sysctl -w net.* inside ${node} will fail`);
      return;
    }
  }

  async attach(nodes: string[]): Promise<void> {
    const docker = await this.engine();
    await Promise.all(
      nodes.map(async (node) => {
        let pid = 0;
        try {
          const info = await docker.getContainer(this.name(node)).inspect();
          pid = info.State.Running ? info.State.Pid : 0;
        } catch (err) {
          if ((err as { statusCode?: number }).statusCode === undefined) throw dockerEnvError(err);
        }
        if (!pid)
          throw new EnvError(
            `container ${this.name(node)} of run ${this.options.runId} is not running`,
            `nflab down ${this.options.runId}, then bring the lab up again`,
          );
        this.pids.set(node, String(pid));
      }),
    );
  }

  netnsPath(node: string): string {
    return `/proc/${this.netnsRef(node)}/ns/net`;
  }

  observerWrap(node: string, argv: string[]): string[] {
    return ['nsenter', '-t', this.netnsRef(node), '-n', ...argv];
  }

  enter(node: string, argv: string[]): string[] {
    return ['nsenter', `--net=${this.netnsPath(node)}`, ...argv];
  }

  netnsRef(node: string): string {
    const pid = this.pids.get(node);
    if (pid === undefined) throw new Error(`node ${node} has no running container in run ${this.options.runId}`);
    return pid;
  }

  wrap(node: string, argv: string[], opts: { stdin?: boolean } = {}): string[] {
    return ['docker', 'exec', ...(opts.stdin ? ['-i'] : []), this.name(node), ...argv];
  }

  display(node: string, argv: string[]): string {
    return `docker exec ${node} ${shellQuote(argv)}`;
  }

  enterHint(node: string): string {
    return `docker exec -it ${this.name(node)} sh`;
  }

  async destroy(): Promise<void> {
    // Nothing can exist if this process never reached the engine.
    if (this.connectFailed && !this.docker) return;
    const docker = await this.engine();
    const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL_RUN}=${this.options.runId}`] } });
    await Promise.all(list.map((c) => forceRemove(docker, c.Id)));
    this.pids.clear();
  }
}

// ---- nflab clean -------------------------------------------------------------------------------

/**
 * Removes containers labelled nflab=1 whose run is no longer alive; returns their names.
 * A container without the nflab label, or without a run id, is never touched.
 */
export async function removeOrphanContainers(
  docker: Dockerode,
  isRunAlive: (runId: string) => boolean,
): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL_NFLAB}=1`] } });
  const orphans = list.filter((c) => {
    const labels = c.Labels ?? {};
    const runId = labels[LABEL_RUN];
    // The engine already filtered by label; check again so a filter mistake can never widen this.
    return labels[LABEL_NFLAB] === '1' && runId !== undefined && runId !== '' && !isRunAlive(runId);
  });
  await Promise.all(orphans.map((c) => forceRemove(docker, c.Id)));
  return orphans.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, ''));
}
