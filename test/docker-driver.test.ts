// The Docker node driver against the real Docker engine and kernel: containers wired with veths
// from a namespace acting as the Docker host, traffic through `docker exec`, clean teardown.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import Dockerode from 'dockerode';
import { LocalExecutor } from '../src/exec/local.ts';
import {
  DockerDriver,
  connectDocker,
  containerName,
  removeOrphanContainers,
  LABEL_NFLAB,
  LABEL_RUN,
} from '../src/drivers/docker.ts';
import { ensureLabImage, labImageTag } from '../src/drivers/image.ts';
import { EnvError } from '../src/errors.ts';

const exec = new LocalExecutor();
const id = () => randomBytes(3).toString('hex');

// Skip only when no Docker engine answers, and never on CI, where a missing engine is a failure.
let docker: Dockerode | undefined;
let unreachable = '';
try {
  docker = await connectDocker();
} catch (err) {
  if (process.env.CI) throw err;
  unreachable = (err as Error).message;
  console.log(`docker-driver tests SKIPPED: no Docker engine is reachable:\n${unreachable}`);
}
const dockerTest = docker ? test : test.skip;
const engine = () => docker!;

async function run(argv: string[], stdin?: string) {
  const r = await exec.run(argv, { stdin, timeoutMs: 30_000 });
  return r;
}

async function runOk(argv: string[], stdin?: string): Promise<string> {
  const r = await run(argv, stdin);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

async function vethNames(netns?: string): Promise<string[]> {
  const out = await runOk([...(netns ? ['ip', '-n', netns] : ['ip']), '-o', 'link', 'show', 'type', 'veth']);
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(': ')[1]!.split('@')[0]!);
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test.serial('connectDocker: an engine socket that does not exist is an EnvError with the fix', async (t) => {
  const saved = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = `unix:///tmp/nflab-no-engine-${id()}.sock`;
  // The client reads DOCKER_HOST synchronously when connectDocker() is called.
  const attempt = connectDocker({ timeoutMs: 2000 });
  if (saved === undefined) delete process.env.DOCKER_HOST;
  else process.env.DOCKER_HOST = saved;
  const err = await t.throwsAsync(attempt, { instanceOf: EnvError });
  t.regex(err!.message, /no socket at \/tmp\/nflab-no-engine-/);
  t.regex(err!.fix, /dockerd --iptables=false|apt-get install -y docker\.io/);
});

dockerTest('lab image: every tool runs inside a container and prints what the host prints', async (t) => {
  const tag = await ensureLabImage(engine());
  t.regex(tag, /^nflab\/lab:[0-9a-f]{12}$/);
  t.is(await labImageTag(), tag);
  const created = (await engine().getImage(tag).inspect()).Created;
  t.is(await ensureLabImage(engine()), tag, 'a second call reuses the image');
  t.is((await engine().getImage(tag).inspect()).Created, created, 'and does not rebuild it');

  const name = `hd5-img-${id()}`;
  await runOk(['docker', 'run', '-d', '--name', name, '--network', 'none', '--label', 'hd5=1', tag]);
  t.teardown(() => run(['docker', 'rm', '-f', name]));
  const versions: string[][] = [
    ['ip', '-V'],
    ['bridge', '-V'],
    ['ping', '-V'],
    ['socat', '-V'],
    ['tcpdump', '--version'],
    ['sysctl', '--version'],
  ];
  for (const argv of versions) {
    const inside = await run(['docker', 'exec', name, ...argv]);
    const host = await run(argv);
    t.is(inside.code, 0, `${argv.join(' ')} in the container: ${inside.stderr}`);
    // socat's third line names the running kernel build; the first two lines identify the binary.
    const head = (s: string) => s.split('\n').slice(0, 2).join('\n');
    t.is(head(inside.stdout + inside.stderr), head(host.stdout + host.stderr), argv.join(' '));
  }
  t.is(
    await runOk(['docker', 'exec', name, 'sh', '-c', 'echo hi | tee /tmp/x && cat /tmp/x && sleep 0.1']),
    'hi\nhi\n',
  );
});

dockerTest(
  'docker driver: three containers wired from a host namespace talk through docker exec, and destroy leaves nothing',
  async (t) => {
    const runId = `hd5${id()}`;
    const hostNs = `hd5-host-${id()}`;
    const driver = new DockerDriver({ runId, exec, docker: engine() });
    const rootVethsBefore = await vethNames();
    t.teardown(async () => {
      await driver.destroy();
      await run(['ip', 'netns', 'del', hostNs]);
    });

    const started = Date.now();
    await driver.create(['c1', 'c2', 'c3']);
    t.log(`3 containers created and started in ${Date.now() - started} ms`);

    // netnsRef is the container's PID, so `ip link add … netns <pid>` lands inside it.
    for (const node of ['c1', 'c2', 'c3']) {
      const info = await engine().getContainer(containerName(runId, node)).inspect();
      t.is(driver.netnsRef(node), String(info.State.Pid));
      t.is(info.Config.Hostname, node);
      t.is(info.Config.Labels[LABEL_RUN], runId);
      t.is(info.HostConfig.NetworkMode, 'none');
      t.false(info.HostConfig.Privileged);
    }
    t.deepEqual(driver.wrap('c1', ['ping', '-c1', '10.0.0.1']), [
      'docker',
      'exec',
      `nfl-${runId}-c1`,
      'ping',
      '-c1',
      '10.0.0.1',
    ]);
    t.deepEqual(driver.wrap('c1', ['ip', '-batch', '-'], { stdin: true }), [
      'docker',
      'exec',
      '-i',
      `nfl-${runId}-c1`,
      'ip',
      '-batch',
      '-',
    ]);
    t.is(
      driver.display('c1', ['sysctl', '-w', 'net.ipv4.ping_group_range=0 0']),
      `docker exec c1 sysctl -w 'net.ipv4.ping_group_range=0 0'`,
    );
    t.is(driver.enterHint('c2'), `docker exec -it nfl-${runId}-c2 sh`);

    // The host namespace with a bridge; veth ends created directly in their namespaces.
    await runOk(['ip', 'netns', 'add', hostNs]);
    await runOk(
      ['ip', '-batch', '-'],
      [
        `link add eth0 netns ${driver.netnsRef('c1')} type veth peer name hd5v1 netns ${hostNs}`,
        `link add eth0 netns ${driver.netnsRef('c2')} type veth peer name hd5v2 netns ${hostNs}`,
      ].join('\n') + '\n',
    );
    await runOk(
      ['ip', '-n', hostNs, '-batch', '-'],
      'link add br0 type bridge\nlink set br0 up\nlink set hd5v1 master br0 up\nlink set hd5v2 master br0 up\n',
    );
    for (const [node, ip] of [
      ['c1', '10.55.66.2/24'],
      ['c2', '10.55.66.3/24'],
    ] as const) {
      await runOk(
        driver.wrap(node, ['ip', '-batch', '-'], { stdin: true }),
        `addr add ${ip} dev eth0\nlink set eth0 up\n`,
      );
    }
    t.deepEqual(await vethNames(), rootVethsBefore, 'no veth end appeared in the root namespace');
    t.deepEqual(
      (await runOk(driver.wrap('c3', ['ip', '-o', 'link', 'show'])))
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(': ')[1]),
      ['lo'],
      'c3 has no link',
    );

    // net.* sysctls are writable inside the container, the host-wide rest of /proc/sys is not.
    await runOk(driver.wrap('c1', ['sysctl', '-w', 'net.ipv4.conf.all.log_martians=1']));
    t.is((await runOk(driver.wrap('c1', ['sysctl', '-n', 'net.ipv4.conf.all.log_martians']))).trim(), '1');
    t.is(
      (await runOk(driver.wrap('c2', ['sysctl', '-n', 'net.ipv4.conf.all.log_martians']))).trim(),
      '0',
      'per container',
    );
    t.is(
      (await runOk(driver.wrap('c1', ['sysctl', '-n', 'net.ipv6.conf.all.disable_ipv6']))).trim(),
      '0',
      'IPv6 on, as in a fresh namespace',
    );
    const swappiness = (await runOk(['sysctl', '-n', 'vm.swappiness'])).trim();
    const hostWide = await run(driver.wrap('c1', ['sysctl', '-w', `vm.swappiness=${swappiness}`]));
    t.not(hostWide.code, 0, 'vm.* stays read-only');

    // tcpdump in c2 sees c1's ping arrive.
    const capture = exec.spawn(driver.wrap('c2', ['tcpdump', '-l', '-n', '-c', '1', '-i', 'eth0', 'icmp']));
    const captured: string[] = [];
    const captureErr: string[] = [];
    capture.onStdoutLine((l) => captured.push(l));
    capture.onStderrLine((l) => captureErr.push(l));
    await waitFor('tcpdump to listen', async () => captureErr.some((l) => l.startsWith('listening on eth0')));

    const ping = await run(driver.wrap('c1', ['ping', '-c1', '-W2', '10.55.66.3']));
    t.is(ping.code, 0, ping.stdout + ping.stderr);
    t.regex(ping.stdout, /1 packets transmitted, 1 received/);
    const done = await capture.exited;
    t.is(done.code, 0);
    t.regex(captured.join('\n'), /IP 10\.55\.66\.2 > 10\.55\.66\.3: ICMP echo request/);

    // TCP: the responder in c1 names the client it saw.
    const responder = exec.spawn(
      driver.wrap('c1', [
        'socat',
        'TCP-LISTEN:8000,fork,reuseaddr',
        'SYSTEM:echo "c1 client=$SOCAT_PEERADDR:$SOCAT_PEERPORT"',
      ]),
    );
    t.teardown(() => responder.kill('SIGKILL'));
    await waitFor('the responder to listen', async () =>
      (await run(driver.wrap('c1', ['cat', '/proc/net/tcp']))).stdout
        .split('\n')
        .some((l) => l.includes(':1F40 ') && / 0A /.test(l)),
    );
    const client = await run(driver.wrap('c2', ['socat', '-T2', '-', 'TCP:10.55.66.2:8000,connect-timeout=2']));
    t.is(client.code, 0, client.stderr);
    t.regex(client.stdout, /^c1 client=10\.55\.66\.3:\d+\n$/);
    const refused = await run(driver.wrap('c3', ['socat', '-T2', '-', 'TCP:10.55.66.2:8000,connect-timeout=1']));
    t.not(refused.code, 0, 'c3 has no link, so it cannot connect');

    await driver.destroy();
    const left = await engine().listContainers({ all: true, filters: { label: [`${LABEL_RUN}=${runId}`] } });
    t.deepEqual(left, [], 'no container of the run remains');
    // The container namespaces are gone, and with them both ends of each veth.
    await waitFor('the host-side veth ends to disappear', async () => (await vethNames(hostNs)).length === 0);
    t.deepEqual(await vethNames(), rootVethsBefore, 'no veth leaked into the root namespace');
    await t.notThrowsAsync(driver.destroy(), 'destroy is idempotent');
    t.throws(() => driver.netnsRef('c1'));
  },
);

dockerTest('removeOrphanContainers removes only labelled containers of dead runs', async (t) => {
  const tag = await ensureLabImage(engine());
  const dead = `hd5dead${id()}`;
  const alive = `hd5alive${id()}`;
  const make = (name: string, labels: Record<string, string>) =>
    runOk([
      'docker',
      'create',
      '--name',
      name,
      '--network',
      'none',
      ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
      tag,
    ]);
  const names = {
    dead: `hd5-orphan-${id()}`,
    alive: `hd5-alive-${id()}`,
    // Carries a dead run id but not the nflab label: not nflab's, so never removed.
    foreign: `hd5-foreign-${id()}`,
    noRun: `hd5-norun-${id()}`,
  };
  t.teardown(() => run(['docker', 'rm', '-f', ...Object.values(names)]));
  await make(names.dead, { [LABEL_NFLAB]: '1', [LABEL_RUN]: dead });
  await make(names.alive, { [LABEL_NFLAB]: '1', [LABEL_RUN]: alive });
  await make(names.foreign, { [LABEL_RUN]: dead });
  await make(names.noRun, { [LABEL_NFLAB]: '1' });

  const asked: string[] = [];
  // Only `dead` is dead: containers of other runs (another test, the lead's labs) stay alive.
  const removed = await removeOrphanContainers(engine(), (runId) => {
    asked.push(runId);
    return runId !== dead;
  });
  t.deepEqual(removed, [names.dead]);
  t.true(asked.includes(dead) && asked.includes(alive));
  const exists = async (name: string) => (await run(['docker', 'inspect', name])).code === 0;
  t.false(await exists(names.dead));
  t.true(await exists(names.alive));
  t.true(await exists(names.foreign));
  t.true(await exists(names.noRun));
});
