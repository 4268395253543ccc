// Run ownership and selection, on journal records made here (no kernel): which run a command
// picks, what it refuses and what the refusal lists; and the docker wrapper of nflab shell, run
// in real bash with a stand-in for the docker binary that prints the argv it was given.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabError } from '../../src/errors.ts';
import type { RunRecord } from '../../src/engine/journal.ts';
import { callerOwner } from '../../src/engine/owner.ts';
import { assertNode, assertStep, selectRun } from '../../src/engine/select-run.ts';
import { dockerWrapper, labShellArgv } from '../../src/engine/lab-shell.ts';
import { labRef, resolveLabs } from '../../src/resolve/load.ts';

const alice = { uid: 4242001, user: 'alice' };
const bob = { uid: 4242002 };
function rec(runId: string, labId: string, owner: RunRecord['owner'], extra: Partial<RunRecord> = {}): RunRecord {
  return {
    runId,
    pid: 999_999_999,
    labId,
    driver: 'netns',
    kept: true,
    building: false,
    netns: [`nfl-${runId}-c1`],
    containers: false,
    createdAt: new Date(Date.now() - 120_000).toISOString(),
    step: 3,
    ...(owner ? { owner } : {}),
    ...extra,
  };
}
const records = [
  rec('aaa111', '02', alice),
  rec('bbb222', '02', bob),
  rec('ccc333', '01', alice),
  rec('ddd444', '01', alice),
];

test('the owner is the user who typed sudo (SUDO_UID, SUDO_USER), else the process uid', (t) => {
  t.deepEqual(callerOwner({ SUDO_UID: '4242001', SUDO_USER: 'alice' }), alice);
  t.is(callerOwner({}).uid, process.getuid!());
  t.is(callerOwner({ SUDO_UID: 'x1' }).uid, process.getuid!(), 'a SUDO_UID that is not a number is ignored');
});

test("each user picks their own run of a lab; another user's run is refused even when named", async (t) => {
  t.is((await selectRun({ lab: '02', owner: alice, records })).runId, 'aaa111');
  t.is((await selectRun({ lab: '2', owner: bob, records })).runId, 'bbb222', '"2" means lab 02');
  t.is((await selectRun({ lab: 'aaa111', owner: alice, records })).runId, 'aaa111', 'a run id in place of the lab');
  const theirs = await t.throwsAsync(selectRun({ lab: '02', run: 'bbb222', owner: alice, records }), {
    instanceOf: LabError,
  });
  t.regex(theirs!.message, /run bbb222 \(lab 02\) belongs to uid 4242002, not to you \(alice \(uid 4242001\)\)/);
  t.regex(theirs!.message, /your runs: aaa111 \(lab 02, steps 1\.\.3 applied, up 2 min/);
  const none = await t.throwsAsync(selectRun({ lab: '01', owner: bob, records }), { instanceOf: LabError });
  t.regex(
    none!.message,
    /no lab "01" is up for you \(uid 4242002\) \(2 runs of lab 01 by other users: not yours to touch\)/,
  );
});

test('two runs of one lab: ambiguous, exit 2 listing both, until --run names one', async (t) => {
  const e = await t.throwsAsync(selectRun({ lab: '01', owner: alice, records }), { instanceOf: LabError });
  t.is((e as LabError).exitCode, 2);
  t.regex(e!.message, /you have 2 runs of lab 01 up: name one with --run ID:\n {2}ccc333 .*\n {2}ddd444 /);
  t.is((await selectRun({ lab: '01', run: 'ddd444', owner: alice, records })).runId, 'ddd444');
  const wrongLab = await t.throwsAsync(selectRun({ lab: '02', run: 'ddd444', owner: alice, records }));
  t.regex(wrongLab!.message, /run ddd444 is a run of lab 01, not of lab "02"/);
  const unknown = await t.throwsAsync(selectRun({ lab: '01', run: 'zzz999', owner: alice, records }));
  t.regex(unknown!.message, /no run "zzz999" is up on this machine; your runs: aaa111 .*ccc333 .*ddd444/);
});

test('bad input names what was typed and lists what exists: lab, step, node', async (t) => {
  t.is(labRef('2'), '02');
  t.is(labRef('12'), '12');
  const lab = await t.throwsAsync(resolveLabs(['77']), { instanceOf: LabError });
  t.regex(lab!.message, /no lab "77".*known labs: 01-bridge-forward-drop, 02-masquerade-outside/);
  const [l02] = await resolveLabs(['2']);
  t.is(l02!.id, '02');
  t.regex(
    t.throws(() => assertStep(l02!, 9))!.message,
    /lab 02 has no step 9: --step must be 1\.\.8 \(steps: 1 No route: the kernel refuses to send; 2 /,
  );
  t.is(assertStep(l02!, 0, 0), 0);
  t.regex(t.throws(() => assertNode(l02!, 'c9'))!.message, /lab 02 has no node "c9" \(its nodes: host, c1, ext\)/);
});

test("docker wrapper: a node name where docker takes a container becomes the run's container, nothing else changes", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nflab-wrapper-'));
  try {
    const real = join(dir, 'real-docker');
    writeFileSync(real, '#!/bin/sh\nprintf "%s|" "$@"\n', { mode: 0o755 });
    const wrapper = join(dir, 'docker');
    const spec = {
      labId: '02',
      runId: 'abc123',
      tty: false,
      nodes: [
        { name: 'c1', realisation: 'docker' as const, real: 'nfl-abc123-c1' },
        { name: 'host', realisation: 'netns' as const, real: 'nfl-abc123-host' },
      ],
    };
    writeFileSync(wrapper, `#!/bin/bash\nreal=${real}\n${dockerWrapper(spec)}`, { mode: 0o755 });
    const run = (...argv: string[]) => spawnSync(wrapper, argv, { encoding: 'utf8' }).stdout;
    t.is(
      run('exec', 'c1', 'ping', '-c', '1', 'c1'),
      'exec|nfl-abc123-c1|ping|-c|1|c1|',
      "only the container argument, not the command's words",
    );
    t.is(run('exec', '-it', '-e', 'A=c1', '-u', 'root', 'c1', 'sh'), 'exec|-it|-e|A=c1|-u|root|nfl-abc123-c1|sh|');
    t.is(
      run('--host', 'unix:///run/docker.sock', 'container', 'exec', 'c1', 'true'),
      '--host|unix:///run/docker.sock|container|exec|nfl-abc123-c1|true|',
    );
    t.is(run('inspect', '-f', '{{.State.Pid}}', 'c1', 'other'), 'inspect|-f|{{.State.Pid}}|nfl-abc123-c1|other|');
    t.is(run('cp', 'c1:/etc/hosts', '/tmp/x'), 'cp|nfl-abc123-c1:/etc/hosts|/tmp/x|');
    t.is(run('ps', '--filter', 'name=c1'), 'ps|--filter|name=c1|', 'other commands pass through');
    t.is(run('exec', 'host', 'true'), 'exec|host|true|', 'a namespace node is no container');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the shell's set-up script is valid bash and binds only this run's namespaces", (t) => {
  const argv = labShellArgv({
    labId: '02',
    runId: 'abc123',
    tty: true,
    nodes: [
      { name: 'c1', realisation: 'netns', real: 'nfl-abc123-c1' },
      { name: 'host', realisation: 'netns', real: 'nfl-abc123-host' },
    ],
    node: 'c1',
  });
  t.deepEqual(argv.slice(0, 5), ['unshare', '--mount', '--propagation', 'slave', '--']);
  const script = argv[argv.indexOf('-c') + 1]!;
  t.is(spawnSync('bash', ['-n', '-c', script]).status, 0);
  t.deepEqual(script.match(/mount --bind \S+/g), [
    'mount --bind /run/netns/nfl-abc123-c1',
    'mount --bind /run/netns/nfl-abc123-host',
  ]);
  t.regex(script, /exec ip netns exec c1 bash --rcfile \S+\/rc -i$/);
});
