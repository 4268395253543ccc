// Docker containers as lab nodes: the same labs, the same verdict for every check, and nothing
// left behind (no container, namespace or link), with the root namespace's rules unchanged.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containersOf, nflab, REPO, rootState, runNamespaces, jsonOf } from './helpers/system.ts';
import type { RunReport } from '../src/report/types.ts';

const verdicts = (report: RunReport) =>
  report.labs.map((lab) => ({
    lab: lab.id,
    status: lab.status,
    checks: lab.steps.flatMap((s, i) => s.checks.map((c) => `${i + 1}: ${c.description} => ${c.status}`)),
  }));

test('labs 01-03 give the same verdict for every check with namespaces and with Docker containers', async (t) => {
  const before = rootState();
  const [netns, docker] = await Promise.all([
    nflab(['run', '01', '02', '03', '--json']),
    nflab(['run', '01', '02', '03', '--json', '--nodes', 'docker']),
  ]);
  t.is(netns.code, 0, netns.stderr);
  t.is(docker.code, 0, docker.stderr);
  const a = jsonOf(netns) as RunReport;
  const b = jsonOf(docker) as RunReport;
  t.true(b.labs.every((l) => l.driver === 'docker'));
  t.deepEqual(verdicts(b), verdicts(a));
  t.true(verdicts(a).flatMap((l) => l.checks).length >= 50, 'every check of every lab is compared');
  // Commands are shown as a person types them for each driver.
  const ping = (r: RunReport) => r.labs[0]!.steps[0]!.commands.find((c) => c.node === 'c1')!.display;
  t.is(ping(a), 'ip netns exec c1 ping -c 1 -i 0.2 -W 1 10.55.66.3');
  t.is(ping(b), 'docker exec c1 ping -c 1 -i 0.2 -W 1 10.55.66.3');
  for (const lab of b.labs) {
    t.deepEqual(containersOf(lab.runId), [], `no container of run ${lab.runId} remains`);
    t.deepEqual(runNamespaces(lab.runId), []);
  }
  t.deepEqual(rootState(), before);
});

test('docker mode: a failing run and a run interrupted by SIGINT leave no container', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-docker-fail-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'reversed.ts');
  writeFileSync(
    file,
    readFileSync(join(REPO, 'labs/01-bridge-forward-drop.ts'), 'utf8').replace(
      '      c1PingsC2.fails(),\n',
      '      c1PingsC2.succeeds(),\n',
    ),
  );
  const before = rootState();
  const failing = await nflab(['run', file, '--json', '--nodes', 'docker']);
  t.is(failing.code, 1);
  const failedRun = (jsonOf(failing) as RunReport).labs[0]!.runId;
  t.deepEqual(containersOf(failedRun), []);

  let runId = '';
  let sawContainers = 0;
  const interrupted = await nflab(['run', '03', '--nodes', 'docker'], {
    onStdout: (all, child) => {
      runId ||= /\(run ([a-z0-9]+)\)/.exec(all)?.[1] ?? '';
      if (!sawContainers && /step 2: /.test(all)) {
        sawContainers = containersOf(runId).length;
        child.kill('SIGINT');
      }
    },
  });
  t.is(interrupted.code, 130, interrupted.stdout + interrupted.stderr);
  t.is(sawContainers, 1, 'c1 ran as a container while the step ran');
  t.deepEqual(containersOf(runId), []);
  t.deepEqual(runNamespaces(runId), []);
  t.deepEqual(rootState(), before);
});

test('docker mode with no Docker engine exits 3 with the fix, and never falls back to namespaces', async (t) => {
  const r = await nflab(['run', '01', '--nodes', 'docker'], {
    env: { DOCKER_HOST: 'unix:///run/nflab-no-such-docker.sock' },
  });
  t.is(r.code, 3, r.stdout + r.stderr);
  t.regex(r.stderr, /fix: /);
  t.regex(r.stderr, /docker/i);
  t.notRegex(r.stdout, /step 1/);
});

test('nflab show prints docker exec commands in Docker mode', async (t) => {
  const r = await nflab(['show', '01', '--nodes', 'docker']);
  t.is(r.code, 0);
  t.regex(r.stdout, /^ {2}docker exec c1 ping -c 1 -i 0\.2 -W 1 10\.55\.66\.3$/m);
  t.regex(r.stdout, /docker run -d --network none --cap-add NET_ADMIN --cap-add NET_RAW --name c1/);
});
