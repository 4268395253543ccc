// Builds nflab's lab image without a registry: busybox for the shell and small utilities, plus
// the host's own ip, bridge, ping, socat, tcpdump and sysctl with their shared libraries, so a
// Docker node prints exactly what a plain-namespace node prints. The rootfs is `docker import`ed.
import { createHash } from 'node:crypto';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as os from 'node:os';
import type Dockerode from 'dockerode';
import { EnvError } from '../errors.ts';

const execFileP = promisify(execFile);

export const LAB_IMAGE_REPO = 'nflab/lab';

/** Host packages the image is made from (Debian names). */
export const IMAGE_HOST_PACKAGES = [
  'busybox-static',
  'iproute2',
  'iputils-ping',
  'socat',
  'tcpdump',
  'procps',
  'iptables',
  'nftables',
  'conntrack',
];

/** Everything that decides the image's content; its hash (with the binaries') is the tag. */
const RECIPE = {
  revision: 3,
  busybox: '/bin/busybox',
  /** Real binaries, with the Debian package that ships each. */
  tools: {
    ip: 'iproute2',
    bridge: 'iproute2',
    ping: 'iputils-ping',
    socat: 'socat',
    tcpdump: 'tcpdump',
    sysctl: 'procps',
  } as Record<string, string>,
  /** The firewall tools a lab runs in a node, as in a namespace node: copied when the machine has
   * them (a lab that needs one the image lacks is refused with exit 3 naming it, see imageToolProblem). */
  firewall: { 'xtables-nft-multi': 'iptables', nft: 'nftables', conntrack: 'conntrack', ss: 'iproute2' } as Record<
    string,
    string
  >,
  /** Names the nf_tables iptables answers to (xtables-nft-multi dispatches on its name): the image's
   * iptables is the nft one whatever the machine's alternatives say, like the machine's own here. */
  iptablesNames: [
    'iptables',
    'iptables-save',
    'iptables-restore',
    'iptables-nft',
    'iptables-nft-save',
    'iptables-nft-restore',
    'ip6tables',
    'ip6tables-save',
    'ip6tables-restore',
  ],
  /** Copied when present: protocol/service names and iproute2's tables keep output identical to the host's. */
  etc: ['/etc/protocols', '/etc/services', '/etc/iproute2'],
  // tcpdump drops privileges to the user "tcpdump" after opening the capture: it must exist.
  passwd:
    'root:x:0:0:root:/root:/bin/sh\ntcpdump:x:104:105::/nonexistent:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  group: 'root:x:0:\ntcpdump:x:105:\nnogroup:x:65534:\n',
  nsswitch: 'passwd: files\ngroup: files\nhosts: files\nprotocols: files\nservices: files\n',
  changes: ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'CMD ["/bin/sleep","infinity"]'],
};

const TOOL_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'];

type Log = (line: string) => void;

function missingTool(what: string, pkg: string): EnvError {
  return new EnvError(
    `building the Docker lab image needs ${what} on this machine`,
    `apt-get install -y ${pkg}  (the image uses: ${IMAGE_HOST_PACKAGES.join(' ')})`,
  );
}

async function isExecutable(p: string): Promise<boolean> {
  try {
    await fs.access(p, fs.constants.X_OK);
    return (await fs.stat(p)).isFile();
  } catch {
    return false;
  }
}

async function findTool(tool: string): Promise<string | undefined> {
  for (const dir of TOOL_DIRS) if (await isExecutable(path.join(dir, tool))) return path.join(dir, tool);
  return undefined;
}

/** The host path of each tool (as found on PATH-like dirs) and of busybox; the firewall tools the machine has. */
async function locateSources(): Promise<{ busybox: string; tools: Map<string, string> }> {
  if (!(await isExecutable(RECIPE.busybox))) throw missingTool(RECIPE.busybox, 'busybox-static');
  const tools = new Map<string, string>();
  for (const [tool, pkg] of Object.entries(RECIPE.tools)) {
    const found = await findTool(tool);
    if (!found) throw missingTool(`\`${tool}\``, pkg);
    tools.set(tool, found);
  }
  for (const tool of Object.keys(RECIPE.firewall)) {
    const found = await findTool(tool);
    if (found) tools.set(tool, found);
  }
  return { busybox: RECIPE.busybox, tools };
}

/** Lab commands the image provides (busybox gives tee and cat). */
export async function imageLabTools(): Promise<Set<string>> {
  const { tools } = await locateSources();
  const names = new Set([...tools.keys(), 'tee', 'cat']);
  if (tools.has('xtables-nft-multi')) for (const n of RECIPE.iptablesNames) names.add(n);
  return names;
}

/** The Debian package that gives the image a lab command, for the fix of an exit 3. */
export function imageToolPackage(tool: string): string | undefined {
  if (RECIPE.iptablesNames.includes(tool)) return 'iptables';
  return RECIPE.firewall[tool] ?? RECIPE.tools[tool];
}

async function sha256File(p: string): Promise<string> {
  return createHash('sha256')
    .update(await fs.readFile(p))
    .digest('hex');
}

/** `nflab/lab:<hash>`: the recipe plus the host binaries' contents, so either changing rebuilds. */
export async function labImageTag(): Promise<string> {
  const { busybox, tools } = await locateSources();
  const h = createHash('sha256').update(JSON.stringify(RECIPE));
  h.update(await sha256File(busybox));
  for (const [tool, p] of tools) h.update(`${tool}=${await sha256File(await fs.realpath(p))}`);
  return `${LAB_IMAGE_REPO}:${h.digest('hex').slice(0, 12)}`;
}

/** Shared libraries and the dynamic loader a binary needs, as ldd names them. */
async function sharedLibraries(binary: string): Promise<string[]> {
  let stdout: string;
  try {
    ({ stdout } = await execFileP('ldd', [binary]));
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string };
    if (e.code === 'ENOENT') throw missingTool('`ldd`', 'libc-bin');
    // "not a dynamic executable" (a static build) exits 1: nothing to copy.
    if (/not a dynamic executable/.test(String(e.stdout ?? '') + String((e as { stderr?: string }).stderr ?? '')))
      return [];
    throw err;
  }
  const libs: string[] = [];
  for (const line of stdout.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]!);
    else if (/=> not found/.test(line))
      throw new EnvError(
        `${binary} needs a library that is missing: ${line.trim()}`,
        'apt-get install --reinstall the package that ships it',
      );
  }
  return libs;
}

/**
 * Copy `hostPath` to the same path inside `root`, recreating the symlinks on the way to the real
 * file (libbpf.so.1 -> libbpf.so.1.1.2): some tools print a library's version from its file name.
 */
async function copyInto(root: string, hostPath: string, mode?: number): Promise<void> {
  let p = hostPath;
  for (let hops = 0; (await fs.lstat(p)).isSymbolicLink(); hops++) {
    if (hops > 20) throw new Error(`too many symlinks at ${hostPath}`);
    const target = await fs.readlink(p);
    const link = path.join(root, p);
    await fs.mkdir(path.dirname(link), { recursive: true });
    if (!(await exists(link))) await fs.symlink(target, link);
    p = path.resolve(path.dirname(p), target);
  }
  const dest = path.join(root, p);
  if (await exists(dest)) return;
  await fs.mkdir(path.dirname(dest), { recursive: true });
  await fs.copyFile(p, dest);
  await fs.chmod(dest, mode ?? (await fs.stat(p)).mode & 0o7777);
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Lay out the root filesystem in `root`. */
async function writeRootfs(root: string, log: Log): Promise<void> {
  const { busybox, tools } = await locateSources();

  // Mirror the host's merged-/usr layout (bin -> usr/bin, lib64 -> usr/lib64, …) so that the
  // library paths ldd prints, including the loader's, resolve the same way inside the image.
  for (const top of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) {
    const host = `/${top}`;
    const st = await fs.lstat(host).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      const target = await fs.readlink(host);
      await fs.mkdir(path.join(root, path.resolve('/', target)), { recursive: true });
      await fs.symlink(target, path.join(root, top));
    } else if (st?.isDirectory()) {
      await fs.mkdir(path.join(root, top), { recursive: true });
    }
  }
  for (const dir of ['usr/bin', 'usr/sbin', 'etc', 'root', 'proc', 'sys', 'dev', 'run', 'var', 'tmp']) {
    await fs.mkdir(path.join(root, dir), { recursive: true });
  }
  await fs.chmod(path.join(root, 'tmp'), 0o1777);

  // The real tools win over busybox's applets of the same name (busybox has ip, ping, sysctl).
  const real = new Set<string>();
  const libs = new Set<string>();
  for (const [tool, hostPath] of tools) {
    const resolved = await fs.realpath(hostPath);
    await copyInto(root, hostPath);
    // A multi-call binary (real file named differently) still needs its tool name beside it.
    const byName = path.join(path.dirname(resolved), tool);
    if (!(await exists(path.join(root, byName)))) await fs.symlink(resolved, path.join(root, byName));
    real.add(tool);
    for (const lib of await sharedLibraries(resolved)) libs.add(lib);
  }
  // iptables-nft under every name it answers to, and its extensions (dlopen()ed: ldd does not see them).
  const xtables = tools.get('xtables-nft-multi');
  if (xtables) {
    const resolved = await fs.realpath(xtables);
    for (const name of RECIPE.iptablesNames) {
      const link = path.join(root, 'usr/sbin', name);
      if (!(await exists(link))) await fs.symlink(resolved, link);
      real.add(name);
    }
    const libxtables = [...libs].find((l) => /\/libxtables\.so/.test(l));
    const extensions = libxtables ? path.join(path.dirname(await fs.realpath(libxtables)), 'xtables') : undefined;
    if (extensions && (await exists(extensions))) {
      for (const file of await fs.readdir(extensions)) {
        const p = path.join(extensions, file);
        await copyInto(root, p);
        if (file.endsWith('.so')) for (const lib of await sharedLibraries(await fs.realpath(p))) libs.add(lib);
      }
    }
  }
  for (const lib of libs) await copyInto(root, lib);
  log(`image: ${tools.size} tools, ${libs.size} shared libraries`);

  await copyInto(root, busybox, 0o755);
  const { stdout } = await execFileP(busybox, ['--list-full']);
  let applets = 0;
  for (const rel of stdout
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (real.has(path.basename(rel))) continue;
    const dest = path.join(root, rel);
    if (await exists(dest)) continue;
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await fs.symlink(busybox, dest);
    applets++;
  }
  log(`image: busybox with ${applets} applets`);

  for (const p of RECIPE.etc) {
    if (await exists(p)) await fs.cp(p, path.join(root, p), { recursive: true, dereference: true });
  }
  await fs.writeFile(path.join(root, 'etc/passwd'), RECIPE.passwd);
  await fs.writeFile(path.join(root, 'etc/group'), RECIPE.group);
  await fs.writeFile(path.join(root, 'etc/nsswitch.conf'), RECIPE.nsswitch);
}

/** Read a Docker progress stream to its end; reject on an error message in it. */
function followProgress(docker: Dockerode, stream: NodeJS.ReadableStream): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, output: unknown[]) => {
      if (err) return reject(err);
      const failed = output.find((o) => (o as { error?: string }).error);
      if (failed) return reject(new Error(`docker import: ${(failed as { error: string }).error}`));
      resolve(output);
    });
  });
}

/** Build the image from scratch and tag it; returns the tag. */
export async function buildLabImage(docker: Dockerode, log: Log = () => {}): Promise<string> {
  const tag = await labImageTag();
  const started = Date.now();
  const before = await imageId(docker, tag);
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'nflab-image-'));
  try {
    await writeRootfs(root, log);
    const tar = spawn('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', '-', '.'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tarErr = '';
    tar.stderr.on('data', (b: Buffer) => {
      tarErr += b.toString();
    });
    const tarDone = new Promise<void>((resolve, reject) => {
      tar.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? missingTool('`tar`', 'tar') : e));
      tar.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar exited ${code}: ${tarErr.trim()}`))));
    });
    const [repo, version] = tag.split(':') as [string, string];
    const stream = await docker.importImage(tar.stdout, { repo, tag: version, changes: RECIPE.changes });
    await Promise.all([followProgress(docker, stream), tarDone]);
    // `nflab/lab` alone (what the printed `docker run` commands use) names the newest build.
    await docker.getImage(tag).tag({ repo: LAB_IMAGE_REPO, tag: 'latest' });
    // Another nflab process may have imported the same tag meanwhile: drop its now untagged copy.
    const now = await imageId(docker, tag);
    if (before && before !== now)
      await docker
        .getImage(before)
        .remove()
        .catch(() => {});
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
  log(`image: built ${tag} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return tag;
}

/** Builds in flight in this process, by tag: concurrent callers share one build. */
const building = new Map<string, Promise<string>>();

/** The lab image's tag, building it first if this Docker engine does not have it yet. */
export async function ensureLabImage(docker: Dockerode, log: Log = () => {}): Promise<string> {
  const tag = await labImageTag();
  if (await imageId(docker, tag)) return tag;
  let pending = building.get(tag);
  if (!pending) {
    log(`image: ${tag} not present, building it`);
    pending = buildLabImage(docker, log).finally(() => building.delete(tag));
    building.set(tag, pending);
  }
  return pending;
}

async function imageId(docker: Dockerode, tag: string): Promise<string | undefined> {
  try {
    return (await docker.getImage(tag).inspect()).Id;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
}
