// The student's loop in a real terminal (tmux, a server of the test's own): `nflab up 02 --step 3`,
// `nflab shell 02`, type step 4's commands copied from `nflab show 02` as it printed them in that
// terminal (capture-pane, take the lines, send-keys them), `nflab check 02 --step 4` met, `check`
// again met, `nflab down 02`, exit; in both node modes. Then nothing of the run is left: no
// namespace, container, journal record, nor the shell's mount namespace and its bind mounts.
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, containersOf, rootState, runNamespaces } from './helpers/system.ts';
import { privateJournal } from './helpers/private-journal.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A tmux server of this test's own (-L socket), never the user's. */
function tmux(socket: string, ...args: string[]): string {
  const r = spawnSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The whole pane, scroll-back included, as the student sees it. */
const screen = (socket: string) => tmux(socket, 'capture-pane', '-p', '-J', '-S', '-', '-E', '-', '-t', 'loop');

/** Types a line and waits until the terminal shows its marker line (`@@<exit status>@@`), which
 * the test types after it; returns the exit status and what the pane shows since. */
async function type(
  socket: string,
  line: string,
  n: number,
  limitMs = 180_000,
): Promise<{ status: number; shown: string }> {
  const before = screen(socket).length;
  tmux(socket, 'send-keys', '-t', 'loop', '-l', line);
  tmux(socket, 'send-keys', '-t', 'loop', 'Enter');
  tmux(socket, 'send-keys', '-t', 'loop', '-l', `echo @@"$?"@${n}@`);
  tmux(socket, 'send-keys', '-t', 'loop', 'Enter');
  const marker = new RegExp(`^@@(\\d+)@${n}@$`, 'm');
  for (const started = Date.now(); Date.now() - started < limitMs; await sleep(300)) {
    const all = screen(socket);
    const m = marker.exec(all);
    if (m) return { status: Number(m[1]), shown: all.slice(Math.max(0, before - 200)) };
  }
  throw new Error(`no prompt after: ${line}\n${screen(socket).slice(-3000)}`);
}

/** Step N's command lines as `nflab show` printed them on the screen: the indented lines of its
 * section, before its "expect:". */
function stepLines(shown: string, n: number): string[] {
  const section = shown.slice(shown.lastIndexOf(`## Step ${n}:`));
  const body = section.slice(0, section.indexOf('  expect:'));
  return body
    .split('\n')
    .filter((l) => /^ {2}(ip netns exec|docker exec) /.test(l))
    .map((l) => l.slice(2));
}

/** Mount points under a directory in any process's mount namespace (the shell's tmpfs and binds). */
function mountsUnder(dir: string): string[] {
  const found = new Set<string>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      for (const line of readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n'))
        if (line.includes(dir)) found.add(`${pid}: ${line}`);
    } catch {
      /* ended meanwhile */
    }
  }
  return [...found];
}

async function loop(t: ExecutionContext, mode: 'netns' | 'docker') {
  // A loaded machine: each typed nflab command starts a node process.
  t.timeout(10 * 60_000);
  const journal = privateJournal(`loop-${mode}`);
  // The server's socket in the test's own directory (removed with it): tmux leaves it behind.
  const socket = join(journal.dir, 'tmux.sock');
  // `nflab` on the shell's PATH, as after `npm i -g`: the student types nflab, not node bin/….
  const bin = join(journal.dir, 'bin');
  spawnSync('mkdir', ['-p', bin]);
  writeFileSync(join(bin, 'nflab'), `#!/bin/sh\nexec ${process.execPath} ${CLI} "$@"\n`);
  chmodSync(join(bin, 'nflab'), 0o755);
  let runId: string | undefined;
  t.teardown(async () => {
    try {
      tmux(socket, 'kill-server');
    } catch {
      /* already gone */
    }
    if (runId && runNamespaces(runId).length > 0) await journal.nflab(['down', '02', '--run', runId]);
    journal.remove();
  });
  const before = rootState();
  const up = await journal.nflab(['up', '02', '--step', '3', '--nodes', mode]);
  t.is(up.code, 0, up.stderr);
  runId = /lab 02 is up \(run ([a-z0-9]+), steps 1\.\.3 applied\)/.exec(up.stdout)?.[1];
  t.truthy(runId, up.stdout);
  // up says how to get the shell and what comes next.
  t.regex(up.stdout, /^ {2}nflab shell 02$/m);
  t.regex(
    up.stdout,
    /^Next: step 4: Fix: MASQUERADE in nat POSTROUTING\n {2}type its commands \(nflab show 02\), then: nflab check 02 --step 4$/m,
  );

  const env = `NFLAB_RUNTIME_DIR=${journal.dir} PATH=${bin}:${process.env.PATH} NO_COLOR=1`;
  tmux(
    socket,
    'new-session',
    '-d',
    '-s',
    'loop',
    '-x',
    '200',
    '-y',
    '50',
    `env ${env} nflab shell 02; echo "shell ended: $?"; sleep 3600`,
  );
  tmux(socket, 'set-option', '-t', 'loop', 'history-limit', '20000');
  const prompt = await type(socket, 'true', 1);
  t.regex(prompt.shown, /^\(nflab 02\) \S+@\S+:.*# true$/m, 'the prompt names the lab');

  const show = await type(socket, `nflab show 02${mode === 'docker' ? ' --nodes docker' : ''}`, 2);
  t.is(show.status, 0);
  const lines = stepLines(show.shown, 4);
  t.deepEqual(lines, [
    'ip netns exec host iptables -t nat -I POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE',
    `${mode === 'docker' ? 'docker exec c1' : 'ip netns exec c1'} ping -c 2 -i 0.2 -W 1 198.51.100.8`,
  ]);
  let n = 3;
  const typed: { line: string; status: number; shown: string }[] = [];
  for (const line of lines) typed.push({ line, ...(await type(socket, line, n++)) });
  for (const x of typed) t.is(x.status, 0, `${x.line}\n${x.shown}`);
  t.regex(
    typed[1]!.shown,
    /2 packets transmitted, 2 received/,
    'the typed ping from c1 gets its replies through MASQUERADE',
  );

  // "What did my packet just do?": a ping typed here, traced hop by hop, shows MASQUERADE's rewrite.
  const traced = await type(socket, 'nflab trace 02 --node host -- c1 ping -c 2 -i 0.2 -W 1 198.51.100.8', n++);
  t.is(traced.status, 0, traced.shown.slice(-3000));
  t.regex(traced.shown, /POSTROUTING +nat +MASQUERADE/, traced.shown.slice(-3000));
  t.regex(traced.shown, /⇒ src 10\.55\.66\.2 → 10\.0\.2\.15 by MASQUERADE/, traced.shown.slice(-3000));

  for (const round of ['first', 'again']) {
    const check = await type(socket, 'nflab check 02 --step 4', n++);
    t.is(check.status, 0, `check ${round}:\n${check.shown.slice(-3000)}`);
    t.regex(check.shown, new RegExp(`lab 02 \\(run ${runId}, steps 1\\.\\.3 applied by nflab\\) against step 4`));
    t.regex(check.shown, /step 4: 11 of 11 checks met — met/);
  }

  const down = await type(socket, 'nflab down 02', n++);
  t.is(down.status, 0, down.shown);
  t.regex(down.shown, new RegExp(`lab 02 \\(run ${runId}\\) is down`));
  tmux(socket, 'send-keys', '-t', 'loop', '-l', 'exit');
  tmux(socket, 'send-keys', '-t', 'loop', 'Enter');
  for (let i = 0; i < 100 && !/shell ended: 0/.test(screen(socket)); i++) await sleep(200);
  const transcript = screen(socket);
  t.regex(transcript, /shell ended: 0/);
  t.log(
    `terminal (${mode} mode), the typed lines:\n${transcript
      .split('\n')
      .filter((l) => !/^@@/.test(l) && !/echo @@/.test(l))
      .filter((l) => /^\(nflab 02\)|packets transmitted|checks met|is down|shell ended/.test(l))
      .join('\n')}`,
  );

  t.deepEqual(runNamespaces(runId!), [], 'no namespace of the run');
  if (mode === 'docker') t.deepEqual(containersOf(runId!), [], 'no container of the run');
  t.false(journal.hasRecord(runId!), 'no journal record');
  t.deepEqual(
    mountsUnder(join(journal.dir, 'shell')),
    [],
    'no mount namespace of the shell and none of its bind mounts',
  );
  t.deepEqual(rootState(), before, 'the root namespace is unchanged');
}

test('netns mode: up, shell, step 4 typed as show printed it, check met twice, down, nothing left', (t) =>
  loop(t, 'netns'));
test('docker mode: the same loop with docker exec c1 typed as printed', (t) => loop(t, 'docker'));
