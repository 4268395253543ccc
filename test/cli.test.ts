// The command line as a person meets it: help on every command, list, show.
import test from 'ava';
import { nflab, jsonOf } from './helpers/system.ts';

test('every command has --help', async (t) => {
  for (const command of [
    'list',
    'run',
    'show',
    'up',
    'shell',
    'exec',
    'status',
    'check',
    'trace',
    'solve',
    'reset',
    'down',
    'clean',
    'export',
    'handout',
    'image',
    'verify-lab',
  ]) {
    const r = await nflab([command, '--help']);
    t.is(r.code, 0, command);
    t.regex(r.stdout, new RegExp(`nflab ${command}`), command);
    t.regex(r.stdout, /Examples:\n {2}nflab /, `${command} --help has examples`);
  }
});

test('list --json names every numbered lab with its title and source', async (t) => {
  const r = await nflab(['list', '--json']);
  t.is(r.code, 0);
  const { labs } = jsonOf(r) as { labs: { id: string; title: string; source: { title: string }; steps: number }[] };
  t.true(labs.length >= 3);
  t.deepEqual(
    labs.slice(0, 3).map((l) => l.id),
    ['01', '02', '03'],
  );
  for (const lab of labs) t.true(lab.title.length > 0 && lab.source.title.length > 0 && lab.steps > 0);
});

test('show prints the exact commands of a lab, in the namespace form of the articles', async (t) => {
  const r = await nflab(['show', '03']);
  t.is(r.code, 0);
  t.regex(r.stdout, /^ {2}ip netns add host$/m);
  // The first end under a temporary name (kernels before ~6.6 check it in the root namespace), renamed in its node.
  t.regex(r.stdout, /^ {2}ip link add nfltmp0 netns c1 type veth peer name veth0 netns host$/m);
  t.regex(r.stdout, /^ {2}ip netns exec c1 ip link set nfltmp0 name eth0$/m);
  t.regex(
    r.stdout,
    /^ {2}ip netns exec host iptables -t nat -A PREROUTING -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10\.55\.66\.2:8000$/m,
  );
  t.regex(r.stdout, /^ {2}ip netns exec client socat -T2 - TCP:172\.17\.9\.103:2345,connect-timeout=2$/m);
  t.regex(
    r.stdout,
    /- a TCP connection from client to 172\.17\.9\.103:2345 connects, answered by c1, which sees client 172\.17\.9\.1/,
  );
});

test('with --json an error is a JSON object on stdout too: a bad lab id (exit 2), an unreachable target (exit 3)', async (t) => {
  const usage = await nflab(['run', 'no-such-lab', '--json']);
  t.is(usage.code, 2);
  t.like(JSON.parse(usage.stdout), { error: { exitCode: 2, kind: 'usage' } });
  t.regex(JSON.parse(usage.stdout).error.message, /no lab "no-such-lab"/);
  t.regex(usage.stderr, /no lab "no-such-lab"/);
  // Port 1 on this machine's loopback: refused at once, no packet leaves the machine.
  const env = await nflab(['run', '01', '--json', '--target', 'ssh://root@127.0.0.1:1']);
  t.is(env.code, 3);
  const { error } = JSON.parse(env.stdout) as {
    error: { exitCode: number; kind: string; message: string; fix: string };
  };
  t.like(error, { exitCode: 3, kind: 'environment' });
  t.regex(error.message, /ssh:\/\/root@127\.0\.0\.1:1/);
  t.regex(error.fix, /sshd listens on port 1/);
});

test("show --root-namespace prints the host node's commands as typed on the machine itself, as the articles do", async (t) => {
  const r = await nflab(['show', '01', '--root-namespace']);
  t.is(r.code, 0, r.stderr);
  t.notRegex(r.stdout, /^ {2}ip netns add host$/m);
  t.regex(r.stdout, /^ {2}ip link add nfltmp0 netns c1 type veth peer name veth0$/m);
  t.regex(r.stdout, /^ {2}ip link add hwchiu0 type bridge$/m);
  t.regex(r.stdout, /^ {2}iptables -P FORWARD DROP$/m);
  t.regex(r.stdout, /^ {2}ip netns exec c1 ping -c 1 /m, 'containers stay namespaces');
  t.notRegex(
    r.stdout.split('## Step 1')[0]!,
    /^ {2}sysctl -w .*net\.ipv6\.conf\.all\.disable_ipv6/m,
    'the machine keeps its IPv6',
  );
});
