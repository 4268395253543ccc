// `nflab export`: the exported bash scripts of labs 01-03 run for real (as root) and must reach the
// same verdict per check as `nflab run --json`, then leave nothing behind: no namespace with the
// script's prefix, no process of the script's session.
import test from 'ava';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { nflab, REPO, jsonOf } from './helpers/system.ts';
import { quoteWord } from '../src/exec/quote.ts';
import type { RunReport } from '../src/report/types.ts';
import { loadAllLabs } from '../src/resolve/load.ts';
import { sameVerdicts, scriptVerdicts } from './helpers/export-verdicts.ts';

// Loaded before any test is declared (ava wants every declaration in one synchronous pass).
const NUMBERED = (await loadAllLabs()).filter((l) => /^\d\d$/.test(l.id));
const dir = mkdtempSync(join(tmpdir(), 'nflab-export-test-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

interface ScriptRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  sid: number;
}

/** Runs a script in its own session (setsid), so every process it started can be found afterwards. */
function runScript(file: string, prefix: string, onOutput?: (all: string, pid: number) => void): Promise<ScriptRun> {
  return new Promise((resolve) => {
    const child = spawn('bash', [file], {
      detached: true,
      env: { ...process.env, NFLAB_PREFIX: prefix },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const take = (b: Buffer) => {
      out += b;
      onOutput?.(out, child.pid!);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('close', (code, signal) => resolve({ code, signal, out, sid: child.pid! }));
  });
}

function namespacesWith(prefix: string): string[] {
  try {
    return readdirSync('/run/netns').filter((n) => n.startsWith(`${prefix}-`));
  } catch {
    return [];
  }
}

/** Processes whose session is `sid` (field 6 of /proc/<pid>/stat, after the command name). */
/** A killed process may still be exiting under load: wait (at most 5 s) for the session to empty,
 * and name what stays. */
async function lingeringInSession(sid: number): Promise<string[]> {
  const deadline = Date.now() + 5000;
  let pids = processesOfSession(sid);
  while (pids.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    pids = processesOfSession(sid);
  }
  return pids
    .map((pid) => {
      try {
        return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()}`;
      } catch {
        return `${pid} (gone)`;
      }
    })
    .filter((p) => !p.endsWith('(gone)'));
}

function processesOfSession(sid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[3]) === sid) pids.push(Number(entry));
    } catch {
      /* gone while we looked */
    }
  }
  return pids;
}

function prefix(): string {
  return `nfxt-${randomBytes(3).toString('hex')}`;
}

// Every numbered lab; path checks are the exception (the script cannot read packet traces: SKIP).
for (const { id } of NUMBERED) {
  test.serial(
    `lab ${id}: the exported script reports the same verdict per check as nflab run, and leaves nothing behind`,
    async (t) => {
      t.timeout(10 * 60_000);
      const run = await nflab(['run', id, '--json']);
      t.true(run.stdout.startsWith('{'), `nflab run ${id} printed no report (exit ${run.code}): ${run.stderr}`);
      const lab = (jsonOf(run) as RunReport).labs[0]!;

      const file = join(dir, `${id}.sh`);
      const exported = await nflab(['export', id, '--out', file]);
      t.is(exported.code, 0, exported.stderr);
      execFileSync('bash', ['-n', file]);

      const p = prefix();
      const script = await runScript(file, p);
      sameVerdicts(t, lab, script.out, script.code);
      t.deepEqual(namespacesWith(p), []);
      t.deepEqual(await lingeringInSession(script.sid), []);
    },
  );
}

/** Words bash would expand, split or glob if the exporter did not quote them. */
const WEIRD = 'it\'s $HOME; `id` "q" * $(true)';

test.serial(
  'a check the kernel does not meet is a FAIL in the script as in nflab run, and the script exits 1',
  async (t) => {
    // A lab whose second expectation is wrong on purpose: the ping succeeds.
    const labFile = join(dir, '91-wrong.ts');
    writeFileSync(
      labFile,
      `import { cmd, defineLab, ping, output, rule } from 'nflab';
export default defineLab({
  id: '91', title: 'wrong on purpose', summary: 'a container and its host on a veth pair', source: { title: 'test' },
  topology: {
    nodes: { host: { role: 'host' }, c1: { role: 'container' } },
    links: [{ a: { node: 'c1', name: 'eth0', addresses: ['10.91.0.2/24'] }, b: { node: 'host', name: 'veth0', addresses: ['10.91.0.1/24'] } }],
  },
  steps: [{
    title: 'ping',
    // A rule comment full of words bash would expand, split or glob: the script must pass it on as is.
    run: [cmd('host', ['iptables', '-A', 'INPUT', '-s', '10.91.0.2', '-m', 'comment', '--comment', ${JSON.stringify(WEIRD)}, '-j', 'ACCEPT'])],
    expect: [
      ping('c1', '10.91.0.1').succeeds(),
      ping('c1', '10.91.0.1').fails('it should fail'),
      output('host', 'iptables -S INPUT').includes(${JSON.stringify('$HOME; `id`')}),
      rule('host', 'filter INPUT', ${JSON.stringify(`-s 10.91.0.2 -m comment --comment ${quoteWord(WEIRD)} -j ACCEPT`)}).delta({ packets: 1, bytes: 84 }),
    ],
  }],
});
`,
    );
    const run = await nflab(['run', labFile, '--json']);
    t.is(run.code, 1);
    const report = jsonOf(run) as RunReport;
    const file = join(dir, '91.sh');
    t.is((await nflab(['export', labFile, '--out', file])).code, 0);
    const p = prefix();
    const script = await runScript(file, p);
    t.is(script.code, 1, script.out);
    t.deepEqual(
      scriptVerdicts(script.out).map((v) => v.verdict),
      report.labs[0]!.steps[0]!.checks.map((c) => (c.status === 'met' ? 'PASS' : 'FAIL')),
    );
    t.deepEqual(
      scriptVerdicts(script.out).map((v) => v.verdict),
      ['PASS', 'FAIL', 'PASS', 'PASS'],
    );
    t.deepEqual(namespacesWith(p), []);
    t.deepEqual(await lingeringInSession(script.sid), []);
  },
);

test.serial('the exported script tears down when it is stopped with SIGTERM in the middle of a step', async (t) => {
  const file = join(dir, '03-term.sh');
  t.is((await nflab(['export', '03', '--out', file])).code, 0);
  const p = prefix();
  let sent = false;
  let seenNamespaces: string[] = [];
  const script = await runScript(file, p, (all, pid) => {
    // Step 2 waits for a refused connection; stop while the responder of step 1 is running.
    if (!sent && all.includes('== Step 2')) {
      sent = true;
      seenNamespaces = namespacesWith(p);
      process.kill(pid, 'SIGTERM');
    }
  });
  t.true(sent, script.out);
  t.true(seenNamespaces.length >= 4, `the namespaces existed while it ran: ${seenNamespaces.join(' ')}`);
  t.is(script.code, 143, script.out);
  t.deepEqual(namespacesWith(p), []);
  t.deepEqual(await lingeringInSession(script.sid), []);
});

test('every lab exports to a script that bash parses, with teardown trapped', async (t) => {
  const labs = readdirSync(join(REPO, 'labs')).filter((f) => /^\d{2}-.*\.ts$/.test(f));
  t.true(labs.length >= 3);
  for (const f of labs) {
    const id = f.slice(0, 2);
    const r = await nflab(['export', id]);
    t.is(r.code, 0, `${id}: ${r.stderr}`);
    const file = join(dir, `syntax-${id}.sh`);
    writeFileSync(file, r.stdout);
    t.notThrows(() => execFileSync('bash', ['-n', file]), `lab ${id}`);
    t.true(r.stdout.startsWith('#!/usr/bin/env bash\n'));
    t.regex(r.stdout, /trap nflab_teardown EXIT/);
  }
});

test('export --help documents the command', async (t) => {
  const r = await nflab(['export', '--help']);
  t.is(r.code, 0);
  t.regex(r.stdout, /standalone bash script/);
  t.regex(r.stdout, /--nodes/);
  t.regex(r.stdout, /--out/);
});
