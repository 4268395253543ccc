// Docker nodes have the tools namespace nodes have (issue 17, item 6): a lab that runs iptables,
// nft, conntrack and ss inside a container gives the same verdict for every check with
// `--nodes docker` as with namespaces (it used to fail there: "the chain is empty"); a lab that
// needs a tool the image does not have is refused with exit 3 naming it, before anything exists.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containersOf, jsonOf, nflab, rootState, runNamespaces } from './helpers/system.ts';
import type { RunReport } from '../src/report/types.ts';

const LAB = `import { defineLab, cmd, conntrack, output, ping, rule, tcp } from 'nflab';
export default defineLab({
  id: 'dtools', title: 'firewall tools inside a container', summary: 'iptables, nft, conntrack and ss run in c1', source: { title: 'none' },
  topology: {
    nodes: { host: { role: 'host' }, c1: { role: 'container', listen: [8000] } },
    links: [{ a: { node: 'c1', name: 'eth0', addresses: ['10.77.0.2/24'] }, b: { node: 'host', name: 'veth0', addresses: ['10.77.0.1/24'] } }],
  },
  steps: [
    {
      title: 'c1 drops pings with its own iptables',
      run: [cmd('c1', 'iptables -A INPUT -p icmp -j DROP')],
      expect: [
        ping('host', '10.77.0.2').fails(),
        rule('c1', 'filter INPUT', '-p icmp -j DROP').delta({ packets: 1 }, 'the rule in c1 counted the echo request'),
        output('c1', 'nft list ruleset').includes('meta l4proto icmp', 'drop'),
      ],
    },
    {
      title: 'c1 tracks the connection and lists its listener',
      // A conntrack match makes the kernel track connections in c1's namespace.
      run: [cmd('c1', 'iptables -A INPUT -p tcp --dport 8000 -m conntrack --ctstate NEW -j ACCEPT')],
      expect: [
        tcp('host', '10.77.0.2', 8000).connects({ answeredBy: 'c1' }),
        conntrack('c1', { proto: 'tcp', orig: { dport: 8000 } }).present('c1 tracked the connection'),
        output('c1', 'ss -ltn').includes(':8000'),
        output('c1', 'iptables-save -t filter').includes('-A INPUT -p icmp -j DROP'),
      ],
    },
  ],
});
`;

const verdicts = (r: RunReport) =>
  r.labs.flatMap((l) => l.steps.flatMap((s, i) => s.checks.map((c) => `${i + 1}: ${c.description} => ${c.status}`)));

test('iptables, nft, conntrack and ss in a container: the same verdict for every check with namespaces and with Docker', async (t) => {
  t.timeout(10 * 60_000);
  const dir = mkdtempSync(join(tmpdir(), 'nflab-dtools-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'dtools.ts');
  writeFileSync(file, LAB);
  const before = rootState();
  const netns = await nflab(['run', file, '--json']);
  const docker = await nflab(['run', file, '--json', '--nodes', 'docker']);
  t.is(netns.code, 0, netns.stdout + netns.stderr);
  t.is(docker.code, 0, docker.stdout.slice(0, 3000) + docker.stderr);
  const a = jsonOf<RunReport>(netns);
  const b = jsonOf<RunReport>(docker);
  t.is(b.labs[0]!.driver, 'docker');
  t.deepEqual(verdicts(b), verdicts(a));
  t.is(verdicts(a).filter((v) => v.endsWith('=> met')).length, 7, 'all seven checks met in both modes');
  t.regex(b.labs[0]!.steps[0]!.commands[0]!.display, /^docker exec c1 iptables -A INPUT/);
  for (const r of [a, b]) {
    t.deepEqual(runNamespaces(r.labs[0]!.runId), []);
    t.deepEqual(containersOf(r.labs[0]!.runId), []);
  }
  t.deepEqual(rootState(), before);
});

test('a lab that needs a tool the Docker image lacks (ipvsadm) is exit 3 naming it, before anything is created', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-dtools-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'ipvs.ts');
  writeFileSync(
    file,
    LAB.replace("id: 'dtools'", "id: 'dipvs'").replace(
      "cmd('c1', 'iptables -A INPUT -p icmp -j DROP')",
      "cmd('c1', 'iptables -A INPUT -p icmp -j DROP'), cmd('c1', 'ipvsadm -Ln')",
    ),
  );
  const r = await nflab(['run', file, '--nodes', 'docker']);
  t.is(r.code, 3, r.stdout + r.stderr);
  t.regex(r.stderr, /lab dipvs: node c1 is a Docker container, and the lab image has no ipvsadm/);
  t.regex(r.stderr, /fix: .*--nodes netns/);
  t.notRegex(r.stdout, /\(run [a-z0-9]+\)/, 'no run was started');
});
