// Two users with lab 02 up on one machine: each one's status, check, exec, shell, solve, reset
// and down touch only their own run. nflab runs as root (namespaces, iptables) and a run's owner
// is the user who typed sudo: SUDO_UID (and SUDO_USER), as sudo sets them. The two users here are
// two such uids with root's privileges, exactly what `sudo nflab …` typed by two students gives.
// Both share one journal directory of the test's own, so no other run on the machine is in play.
import test from 'ava';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, REPO, jsonOf, nflab, rootState, runNamespaces, type CliResult } from './helpers/system.ts';
import { privateJournal } from './helpers/private-journal.ts';

const journal = privateJournal('owners');
const users = {
  ana: { SUDO_UID: '4242101', SUDO_USER: 'nflab-test-ana' },
  ben: { SUDO_UID: '4242102', SUDO_USER: 'nflab-test-ben' },
};
type User = keyof typeof users;
const as = (user: User, args: string[]) => nflab(args, { env: { ...journal.env, ...users[user] } });

/** `nflab shell 02` with the lines on stdin (no terminal), as `user`. */
function shellAs(user: User, lines: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'shell', '02'], {
      cwd: REPO,
      env: { ...process.env, ...journal.env, ...users[user] },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => {
      stdout += b;
    });
    child.stderr.on('data', (b) => {
      stderr += b;
    });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.end(`${lines.join('\n')}\nexit\n`);
  });
}

const inode = (runId: string, node: string) => `net:[${statSync(`/run/netns/nfl-${runId}-${node}`).ino}]`;
const runOf = (r: CliResult) => /lab 02 is up \(run ([a-z0-9]+)/.exec(r.stdout)?.[1];

function mountsUnder(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/mountinfo`, 'utf8').includes(dir)) found.push(pid);
    } catch {
      /* ended */
    }
  }
  return found;
}

const started: string[] = [];
test.after.always(async () => {
  // Only this test's runs, by run id, in its own journal.
  for (const [i, runId] of started.entries())
    if (runNamespaces(runId).length > 0) await as(i === 0 ? 'ana' : 'ben', ['down', '02', '--run', runId]);
  journal.remove();
});

test('two users, the same lab up: status, check, exec, shell, solve, reset and down each touch only their own run', async (t) => {
  // Two builds, a solve and a rebuild: about 1.5 min on an idle machine, nearly 4 at load 20 on 2 cores.
  t.timeout(12 * 60_000);
  const before = rootState();
  const [upA, upB] = await Promise.all([as('ana', ['up', '02', '--step', '3']), as('ben', ['up', '2', '--step', '3'])]);
  t.is(upA.code, 0, upA.stderr);
  t.is(upB.code, 0, upB.stderr);
  const a = runOf(upA)!;
  const b = runOf(upB)!;
  started.push(a, b);
  t.truthy(a && b && a !== b);
  t.is(journal.record(a)?.owner?.uid, 4242101, "the owner is recorded in the run's journal");
  t.is(journal.record(b)?.owner?.user, 'nflab-test-ben');

  // up again: refused, naming the run; nothing new is built.
  const again = await as('ana', ['up', '02', '--step', '3']);
  t.is(again.code, 2);
  t.regex(again.stderr, new RegExp(`already have lab 02 up: ${a} \\(lab 02, steps 1\\.\\.3 applied`));
  t.regex(again.stderr, /--again/);
  t.is(journal.files().length, 2);

  // status: each sees their own; --all both, with owners.
  const [sA, sB] = await Promise.all([as('ana', ['status', '--json']), as('ben', ['status', '--json'])]);
  const own = (r: CliResult) =>
    JSON.parse(r.stdout) as {
      runs: {
        runId: string;
        lab: string;
        stepsApplied: number;
        nodes: string[];
        nodeMode: string;
        owner: { uid: number };
        ageSeconds: number;
      }[];
      otherUsersRuns: number;
    };
  t.deepEqual(
    own(sA).runs.map((r) => r.runId),
    [a],
  );
  t.deepEqual(
    own(sB).runs.map((r) => r.runId),
    [b],
  );
  t.is(own(sA).otherUsersRuns, 1);
  t.like(own(sA).runs[0], {
    lab: '02',
    stepsApplied: 3,
    nodes: ['host', 'c1', 'ext'],
    nodeMode: 'netns',
    owner: { uid: 4242101 },
  });
  const all = await as('ana', ['status', '--all']);
  t.regex(all.stdout, /^LAB +RUN +STEPS +NODES +MODE +OWNER +AGE +STATE$/m);
  t.regex(
    all.stdout,
    new RegExp(`^02 +${b} +1\\.\\.3 +host,c1,ext +netns +nflab-test-ben \\(uid 4242102\\) +\\d+ s +up$`, 'm'),
  );

  // check: each judges their own run; naming the other's run is refused.
  const [cA, cB] = await Promise.all([
    as('ana', ['check', '02', '--step', '3', '--json']),
    as('ben', ['check', '02', '--step', '3', '--json']),
  ]);
  t.is(jsonOf(cA).runId, a);
  t.is(jsonOf(cB).runId, b);
  const theirs = await as('ana', ['check', '02', '--step', '3', '--run', b]);
  t.is(theirs.code, 2);
  t.regex(theirs.stderr, new RegExp(`run ${b} \\(lab 02\\) belongs to nflab-test-ben \\(uid 4242102\\), not to you`));

  // exec and shell: `c1` is the caller's own c1, and the other run's namespaces are not visible.
  const [eA, eB] = await Promise.all([
    as('ana', ['exec', '02', 'host', '--', 'sh', '-c', 'ip netns list; ip netns exec c1 readlink /proc/self/ns/net']),
    as('ben', ['exec', '02', 'c1', '--', 'readlink', '/proc/self/ns/net']),
  ]);
  t.is(eA.code, 0, eA.stderr);
  t.deepEqual(
    eA.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ')[0])
      .sort(),
    ['c1', 'ext', 'host', inode(a, 'c1')].sort(),
  );
  t.is(eB.stdout.trim(), inode(b, 'c1'));
  const exit7 = await as('ben', ['exec', '02', 'c1', '--', 'sh', '-c', 'exit 7']);
  t.is(exit7.code, 7, "exec passes the command's exit status through");
  const [shA, shB] = await Promise.all([
    shellAs('ana', ['ip netns exec c1 readlink /proc/self/ns/net']),
    shellAs('ben', ['ip netns exec c1 readlink /proc/self/ns/net', 'ip netns list | wc -l']),
  ]);
  t.is(shA.code, 0, shA.stderr);
  t.is(shA.stdout.trim(), inode(a, 'c1'));
  t.deepEqual(shB.stdout.trim().split('\n'), [inode(b, 'c1'), '3']);

  // solve: ana's run gets step 4's rule; ben's does not.
  const solved = await as('ana', ['solve', '02', '--step', '4']);
  t.is(solved.code, 0, solved.stdout + solved.stderr);
  t.regex(
    solved.stdout,
    /^step 4: Fix: MASQUERADE in nat POSTROUTING\n {2}\$ ip netns exec host iptables -t nat -I POSTROUTING -s 10\.55\.66\.2\/32 -o eth0 -j MASQUERADE$/m,
  );
  t.regex(
    solved.stdout,
    /steps 1\.\.4 applied; next: step 5: Break: FORWARD policy back to DROP \(nflab check 02 --step 5\)/,
  );
  t.is(journal.record(a)?.step, 4);
  t.is(journal.record(b)?.step, 3);
  const natOf = async (user: User) =>
    (await as(user, ['exec', '02', 'host', '--', 'iptables-save', '-t', 'nat'])).stdout;
  t.regex(await natOf('ana'), /-A POSTROUTING -s 10\.55\.66\.2\/32 -o eth0 -j MASQUERADE/);
  t.notRegex(await natOf('ben'), /MASQUERADE/);

  // reset: ana's run is built again under the same run id, the rule gone; ben's namespaces untouched.
  const benC1 = inode(b, 'c1');
  const reset = await as('ana', ['reset', '02']);
  t.is(reset.code, 0, reset.stdout + reset.stderr);
  t.regex(reset.stdout, new RegExp(`lab 02 \\(run ${a}\\) is back to the built topology, no step applied`));
  t.is(journal.record(a)?.step, 0);
  t.notRegex(await natOf('ana'), /MASQUERADE/);
  t.is(inode(b, 'c1'), benC1);

  // Bad input: exit 2 naming it and listing what exists; nothing changed.
  const bad = await Promise.all([
    as('ana', ['check', '2', '--step', '9']),
    as('ana', ['shell', '02', 'c9']),
    as('ana', ['down', '02', '--run', 'nosuch']),
    as('ana', ['solve', '99', '--step', '1']),
  ]);
  t.deepEqual(
    bad.map((r) => r.code),
    [2, 2, 2, 2],
  );
  t.regex(bad[0]!.stderr, /lab 02 has no step 9: --step must be 1\.\.8 \(steps: 1 No route/);
  t.regex(bad[1]!.stderr, /lab 02 has no node "c9" \(its nodes: host, c1, ext\)/);
  t.regex(bad[2]!.stderr, new RegExp(`no run "nosuch" is up on this machine; your runs: ${a} `));
  t.regex(bad[3]!.stderr, /no lab "99".*known labs: 01-bridge-forward-drop/);
  t.is(inode(b, 'c1'), benC1);

  // down: ana's run goes, ben's stays; clean names ben's as still up and how to take it down.
  const down = await as('ana', ['down', '02']);
  t.is(down.code, 0, down.stderr);
  t.deepEqual(runNamespaces(a), []);
  t.is(runNamespaces(b).length, 3);
  const downAgain = await as('ana', ['down', '02']);
  t.is(downAgain.code, 2);
  t.regex(
    downAgain.stderr,
    /no lab "02" is up for you \(nflab-test-ana \(uid 4242101\)\) \(a run of lab 02 by other users: not yours to touch\)/,
  );
  t.is(runNamespaces(b).length, 3);
  const clean = await as('ana', ['clean']);
  t.is(clean.code, 0, clean.stderr);
  t.regex(
    clean.stdout,
    new RegExp(
      `still up \\(left up by nflab up; clean leaves them\\):\\n {2}${b} \\(lab 02, steps 1\\.\\.3 applied, .*owner nflab-test-ben \\(uid 4242102\\)\\): its owner's to take down`,
    ),
  );
  t.is(runNamespaces(b).length, 3);
  const benDown = await as('ben', ['down', '02']);
  t.is(benDown.code, 0, benDown.stderr);
  t.deepEqual(runNamespaces(b), []);

  t.deepEqual(journal.files(), [], 'no journal record left');
  t.deepEqual(mountsUnder(join(journal.dir, 'shell')), [], 'no shell mount namespace left');
  t.deepEqual(rootState(), before, 'the root namespace is unchanged');
});

test('clean as a user who is not root says so and cleans nothing (exit 3)', async (t) => {
  const r = await new Promise<CliResult>((resolve) => {
    const child = spawn(
      'setpriv',
      ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, CLI, 'clean'],
      { cwd: REPO, env: { ...process.env, ...journal.env } },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => {
      stdout += b;
    });
    child.stderr.on('data', (b) => {
      stderr += b;
    });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  t.is(r.code, 3, r.stderr);
  t.regex(
    r.stderr,
    /nflab clean removes namespaces, containers and processes, which needs root, and you are uid 65534: nothing was cleaned\n {2}fix: run it as root: sudo nflab clean/,
  );
});
