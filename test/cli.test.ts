// The command line as a person meets it: help on every command, list, show.
import test from 'ava';
import { nflab } from './helpers/system.ts';

test('every command has --help', async (t) => {
  for (const command of ['list', 'run', 'show', 'up', 'down', 'clean', 'image']) {
    const r = await nflab([command, '--help']);
    t.is(r.code, 0, command);
    t.regex(r.stdout, new RegExp(`nflab ${command}`), command);
  }
});

test('list --json names every numbered lab with its title and source', async (t) => {
  const r = await nflab(['list', '--json']);
  t.is(r.code, 0);
  const { labs } = JSON.parse(r.stdout) as { labs: { id: string; title: string; source: { title: string }; steps: number }[] };
  t.true(labs.length >= 3);
  t.deepEqual(labs.slice(0, 3).map((l) => l.id), ['01', '02', '03']);
  for (const lab of labs) t.true(lab.title.length > 0 && lab.source.title.length > 0 && lab.steps > 0);
});

test('show prints the exact commands of a lab, in the namespace form of the articles', async (t) => {
  const r = await nflab(['show', '03']);
  t.is(r.code, 0);
  t.regex(r.stdout, /^ {2}ip netns add host$/m);
  t.regex(r.stdout, /^ {2}ip link add veth0 netns host type veth peer name eth0 netns c1$|^ {2}ip link add eth0 netns c1 type veth peer name veth0 netns host$/m);
  t.regex(r.stdout, /^ {2}ip netns exec host iptables -t nat -A PREROUTING -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10\.55\.66\.2:8000$/m);
  t.regex(r.stdout, /^ {2}ip netns exec client socat -T2 - TCP:172\.17\.9\.103:2345,connect-timeout=2$/m);
  t.regex(r.stdout, /- a TCP connection from client to 172\.17\.9\.103:2345 connects, answered by c1, which sees client 172\.17\.9\.1/);
});
