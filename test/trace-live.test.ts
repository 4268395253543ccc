// `nflab trace` on a live lab, as a student uses it: a ping from the container traced on the host
// shows MASQUERADE's rewrite and where it was seen; tracing what is sent from another shell; the
// output of a step with 1,000+ packets stays bounded; --pcap keeps captures as files tcpdump reads.
// Every run here is this test's own (by run id), and nothing of the tracer remains afterwards.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, REPO, jsonOf, nflab, rootState, runNamespaces } from './helpers/system.ts';
import { DEFAULT_TRACE_LIMITS, maxLinesPerNode, type TracedPath } from '../src/report/trace-view.ts';
import { loadAllLabs } from '../src/resolve/load.ts';
import { stepTraffic } from '../src/check/step-needs.ts';

type LiveJson = {
  runId: string;
  traces: { node: string; packets: number; paths: TracedPath[] }[];
  command?: { exitCode: number; output: string[] };
};

function nftRuleset(ns: string): string {
  return execFileSync(
    'ip',
    ['netns', 'exec', ns, 'env', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'nft', 'list', 'ruleset'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
}

function assertNoTracer(t: ExecutionContext, runId: string) {
  const namespaces = runNamespaces(runId);
  t.true(namespaces.length >= 3, namespaces.join(', '));
  for (const ns of namespaces) t.notRegex(nftRuleset(ns), /nflab_trace|nftrace/, `no tracer left in ${ns}`);
}

async function up(t: ExecutionContext, lab: string, step: number): Promise<string> {
  const r = await nflab(['up', lab, '--step', String(step), '--json', '--again']);
  t.is(r.code, 0, r.stderr);
  const runId = (jsonOf(r) as { runId: string }).runId;
  t.teardown(async () => {
    await nflab(['down', runId]);
  });
  return runId;
}

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-trace-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const tcpdumpRead = (file: string) =>
  execFileSync('tcpdump', ['-nn', '-r', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const count = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).length;

test.serial(
  "lab 02 at step 4: `trace -- c1 ping` shows MASQUERADE rewriting the source to 10.0.2.15 at nat POSTROUTING, seen in conntrack's reply tuple",
  async (t) => {
    const before = rootState();
    const runId = await up(t, '02', 4);
    const argv = [
      'trace',
      runId,
      '--node',
      'host',
      '--filter',
      'icmp and host 10.55.66.2',
      '--',
      'c1',
      'ping',
      '-c',
      '2',
      '198.51.100.8',
    ];
    const text = await nflab(argv);
    t.is(text.code, 0, text.stderr);
    t.log(`$ nflab ${argv.join(' ')}\n${text.stdout}`);
    t.regex(text.stdout, /\$ ip netns exec c1 ping -c 2 198\.51\.100\.8\n/);
    t.regex(text.stdout, /2 packets transmitted, 2 received/);
    t.regex(text.stdout, /^host: 2 packets, 2 paths$/m);
    // The hop the rewrite came from, its rule, and where the new address was seen.
    t.regex(
      text.stdout,
      /POSTROUTING +nat +MASQUERADE \(ACCEPT\)[^\n]*\n +rule 1: -A POSTROUTING -s 10\.55\.66\.2\/32 -o eth0 -j MASQUERADE\n +⇒ src 10\.55\.66\.2 → 10\.0\.2\.15 by MASQUERADE {2}\(seen in the reply tuple of conntrack -L on host\)/,
    );
    t.regex(text.stdout, /ct NEW: it met the nat chains/);
    // The second request meets no nat chain: conntrack maps it as it mapped the first.
    t.regex(
      text.stdout,
      /path 2 {2}icmp 10\.55\.66\.2 → 198\.51\.100\.8 {2}ct ESTABLISHED[^\n]*\n {4}FORWARD\n[^\n]*\n {4}⇒ src 10\.55\.66\.2 → 10\.0\.2\.15 by conntrack/,
    );

    const json = await nflab([...argv.slice(0, 2), '--json', ...argv.slice(2)]);
    t.is(json.code, 0, json.stderr);
    const out = jsonOf(json) as LiveJson;
    t.is(out.runId, runId);
    t.is(out.command?.exitCode, 0);
    const host = out.traces.find((x) => x.node === 'host')!;
    const first = host.paths.find((p) => p.rewrites.some((r) => r.by === 'MASQUERADE'));
    t.truthy(first, JSON.stringify(host.paths.map((p) => p.path)));
    const masq = first!.rewrites.find((r) => r.by === 'MASQUERADE')!;
    t.like(masq, { field: 'src', from: '10.55.66.2', to: '10.0.2.15' });
    t.like(first!.hops[masq.hop], {
      table: 'nat',
      chain: 'POSTROUTING',
      rule: '-A POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE',
    });
    t.is(first!.ctState, 'NEW');
    t.deepEqual(first!.path, ['filter FORWARD: policy ACCEPT', 'nat POSTROUTING: MASQUERADE']);

    // Traced on every host and outside node, the translated request is seen entering ext.
    const both = await nflab([
      'trace',
      runId,
      '--filter',
      'icmp and host 198.51.100.8',
      '--',
      'c1',
      'ping',
      '-c',
      '1',
      '198.51.100.8',
    ]);
    t.is(both.code, 0, both.stderr);
    t.regex(
      both.stdout,
      /⇒ src 10\.55\.66\.2 → 10\.0\.2\.15 by MASQUERADE {2}\(seen in the header as it entered ext\)/,
    );
    t.regex(both.stdout, /^ext: 2 packets, 2 paths\n {2}path 1 {2}icmp 10\.0\.2\.15 → 198\.51\.100\.8/m);

    // Bad input changes nothing: exit 2 naming what is wrong.
    const badWord = await nflab(['trace', runId, '--filter', 'icmp or host 10.55.66.2']);
    t.is(badWord.code, 2);
    t.regex(badWord.stderr, /"or" is not supported/);
    const badNode = await nflab(['trace', runId, '--node', 'nope']);
    t.is(badNode.code, 2);
    t.regex(badNode.stderr, /lab 02 has no node "nope" \(--node\); its nodes: host, c1, ext/);
    const mixed = await nflab(['trace', runId, '--step', '4', '--filter', 'icmp']);
    t.is(mixed.code, 2);
    assertNoTracer(t, runId);
    t.deepEqual(rootState(), before, 'the root namespace was never touched');
  },
);

test.serial(
  "from another shell: `trace --count 4 --pcap DIR` traces the student's ping (request and reply), and the pcap holds the packets",
  async (t) => {
    const runId = await up(t, '02', 4);
    const dir = tempDir(t);
    const child = spawn(
      process.execPath,
      [CLI, 'trace', runId, '--node', 'host', '--filter', 'icmp', '--count', '4', '--seconds', '90', '--pcap', dir],
      { cwd: REPO, env: { ...process.env, NO_COLOR: '1' } },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => {
      stdout += b;
    });
    const ready = new Promise<void>((resolve) =>
      child.stderr.on('data', (b) => {
        stderr += b;
        if (stderr.includes('send your packets now')) resolve();
      }),
    );
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    await Promise.race([ready, closed]);
    t.regex(stderr, /tracing icmp packets on host .* send your packets now/);
    // The student, in another shell.
    execFileSync('ip', ['netns', 'exec', `nfl-${runId}-c1`, 'ping', '-c', '2', '-W', '2', '198.51.100.8'], {
      stdio: 'ignore',
    });
    t.is(await closed, 0, stderr);
    t.log(stdout);
    t.regex(stdout, /^host: 4 packets, [23] paths$/m);
    t.regex(stdout, /⇒ src 10\.55\.66\.2 → 10\.0\.2\.15 by MASQUERADE/);
    // The replies enter with the translated address; conntrack undoes it before they are forwarded.
    t.regex(
      stdout,
      /path \d ×2 {2}icmp 198\.51\.100\.8 → 10\.0\.2\.15 {2}ct ESTABLISHED \(reply\)[\s\S]*?⇒ dst 10\.0\.2\.15 → 10\.55\.66\.2 by conntrack/,
    );

    const file = join(dir, '02-trace-host-any.pcap');
    t.regex(stdout, new RegExp(`pcap: ${file.replace(/[.]/g, '\\.')}`));
    t.deepEqual(readdirSync(dir), ['02-trace-host-any.pcap'], 'only the file asked for');
    const packets = tcpdumpRead(file);
    t.true(count(packets, /IP 10\.0\.2\.15 > 198\.51\.100\.8: ICMP echo request/) >= 2, packets);
    t.true(count(packets, /IP 10\.55\.66\.2 > 198\.51\.100\.8: ICMP echo request/) >= 2, packets);
    t.true(count(packets, /IP 198\.51\.100\.8 > 10\.55\.66\.2: ICMP echo reply/) >= 2, packets);
    assertNoTracer(t, runId);
  },
);

test.serial(
  '`trace 04 --step 2` (150 connections, 1,000+ packets) prints a bounded report: identical paths as ×N, capped paths and line width',
  async (t) => {
    const runId = await up(t, '04', 1);
    const r = await nflab(['trace', runId, '--step', '2']);
    t.is(r.code, 0, r.stderr);
    const lines = r.stdout.replace(/\n$/, '').split('\n');
    const longest = Math.max(...lines.map((l) => l.length));
    const lab = (await loadAllLabs()).find((l) => l.id === '04')!;
    const traffic = stepTraffic(lab.steps[1]!).length;
    const nodes = Object.values(lab.topology.nodes).filter((n) => n.role !== 'container').length;
    const checks = 2 + 2 * (lab.steps[1]!.expect ?? []).length;
    const bound = 2 + 2 * traffic + nodes * maxLinesPerNode(DEFAULT_TRACE_LIMITS) + checks;
    t.log(
      `nflab trace 04 --step 2: ${lines.length} lines (bound ${bound}), longest ${longest} characters (cap ${DEFAULT_TRACE_LIMITS.width}); before this change: 10,622 lines, longest 6,606`,
    );
    t.true(lines.length <= bound, `${lines.length} lines`);
    t.true(longest <= DEFAULT_TRACE_LIMITS.width, `longest line ${longest}`);
    const total = Number(/^node: (\d+) packets, \d+ paths/m.exec(r.stdout)?.[1]);
    t.true(total >= 150 * 5, `node: ${total} packets traced`);
    t.regex(r.stdout, /path 1 ×\d{2,} {2}tcp 10\.244\.0\.10:\* → 10\.98\.51\.150:80 {2}\[SYN\] {2}ct NEW/);
    t.regex(
      r.stdout,
      /⇒ dst 10\.98\.51\.150:80 → 10\.244\.0\.\d:80 by DNAT {2}\(seen in the header at filter FORWARD\)/,
    );
    t.regex(r.stdout, /→ 150 connections: /);
    t.regex(r.stdout, /… \d+ more paths \(\d+ packets\): --json lists every path/);
    assertNoTracer(t, runId);
  },
);

test.serial(
  '--pcap on run and check: each capture is also a pcap file named by lab, step (or check), node and interface, with the packets the checks counted',
  async (t) => {
    const dir = tempDir(t);
    const run = await nflab(['run', '02', '--pcap', dir]);
    t.is(run.code, 0, run.stdout + run.stderr);
    const files = readdirSync(dir);
    t.true(
      files.every((f) => /^02-step\d-(host)-(eth0|hwchiu0)\.pcap$/.test(f)),
      files.join(' '),
    );
    t.true(files.includes('02-step4-host-eth0.pcap') && files.includes('02-step4-host-hwchiu0.pcap'), files.join(' '));
    // Step 4 expects exactly 2 translated requests and 2 replies on eth0, the container's own address on hwchiu0.
    const eth0 = tcpdumpRead(join(dir, '02-step4-host-eth0.pcap'));
    t.is(count(eth0, /IP 10\.0\.2\.15 > 198\.51\.100\.8: ICMP echo request/), 2, eth0);
    t.is(count(eth0, /IP 198\.51\.100\.8 > 10\.0\.2\.15: ICMP echo reply/), 2, eth0);
    const bridge = tcpdumpRead(join(dir, '02-step4-host-hwchiu0.pcap'));
    t.is(count(bridge, /IP 10\.55\.66\.2 > 198\.51\.100\.8: ICMP echo request/), 2, bridge);
    t.is(count(bridge, /10\.0\.2\.15/), 0, bridge);

    // check at step 3 (up to step 3: its checks hold without the step's commands typed again).
    const runId = await up(t, '02', 3);
    const checkDir = tempDir(t);
    const check = await nflab(['check', runId, '--step', '3', '--pcap', checkDir]);
    t.is(check.code, 0, check.stdout + check.stderr);
    t.deepEqual(readdirSync(checkDir).sort(), ['02-check-step3-host-eth0.pcap']);
    // Without SNAT the requests leave with the container's address, and no reply comes back.
    const leaving = tcpdumpRead(join(checkDir, '02-check-step3-host-eth0.pcap'));
    t.is(count(leaving, /IP 10\.55\.66\.2 > 198\.51\.100\.8: ICMP echo request/), 2, leaving);
    t.is(count(leaving, /echo reply/), 0, leaving);
  },
);
