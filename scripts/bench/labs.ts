// The lab suite's speed: each lab run on its own (`nflab run <id>`), wall and CPU, `nflab run --all`
// whole and with --jobs, and the CLI's start-up (`nflab --version`), against a baseline checkout
// (--baseline DIR: another commit of nflab with its node_modules) measured in the same run, the two
// taking turns. CPU is every process nflab started, helpers and detached ones included: the cpuacct
// cgroup of the run where there is one (cgroup v1), else user + system from /usr/bin/time.
// Medians of --repeat runs. Prints a markdown section.
// Usage: node --import tsx scripts/bench/labs.ts [--repeat 3] [--jobs 2] [--baseline DIR] [--out FILE]
// (also called by scripts/bench/run.ts).
import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

export interface Timed {
  wall: number;
  cpu: number;
  code: number | null;
  stdout: string;
}

const CPUACCT = '/sys/fs/cgroup/cpuacct';

/** Runs argv in `cwd`: wall seconds, and CPU seconds of it and of every process it started. */
export async function timed(argv: string[], cwd = REPO): Promise<Timed> {
  if (!existsSync(`${CPUACCT}/cgroup.procs`)) return timedByTime(argv, cwd);
  const group = `${CPUACCT}/nflab-bench-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  mkdirSync(group);
  try {
    const started = performance.now();
    const r = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', group, ...argv], {
        cwd,
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      let stdout = '';
      child.stdout.on('data', (b) => {
        stdout += b;
      });
      child.on('close', (code) => resolve({ code, stdout }));
    });
    const wall = (performance.now() - started) / 1000;
    // Processes that outlive nflab by a moment (its command helper, a watchdog) count too.
    for (let i = 0; i < 100 && readFileSync(`${group}/cgroup.procs`, 'utf8').trim() !== ''; i++)
      await new Promise((res) => setTimeout(res, 50));
    const cpu = Number(readFileSync(`${group}/cpuacct.usage`, 'utf8')) / 1e9;
    return { wall, cpu, ...r };
  } finally {
    try {
      rmdirSync(group);
    } catch {
      /* a straggler still in it: the kernel removes it once empty only by rmdir; leave it */
    }
  }
}

function timedByTime(argv: string[], cwd: string): Promise<Timed> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nflab-bench-'));
  const file = path.join(dir, 'time');
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/time', ['-o', file, '-f', '%e %U %S', ...argv], {
      cwd,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let stdout = '';
    child.stdout.on('data', (b) => {
      stdout += b;
    });
    child.on('close', (code) => {
      const last = readFileSync(file, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
      rmSync(dir, { recursive: true, force: true });
      resolve({ wall: last[0]!, cpu: last[1]! + last[2]!, code, stdout });
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '–');

/** Lab ids as `nflab list` knows them (labs/NN-*.ts). */
function labIds(): string[] {
  return readdirSync(path.join(REPO, 'labs')).flatMap((f) =>
    /^(\d\d)-.*\.ts$/.exec(f) ? [/^(\d\d)/.exec(f)![1]!] : [],
  );
}

async function jobsSupported(cwd: string): Promise<boolean> {
  const r = await timed([process.execPath, 'bin/nflab.mjs', 'run', '--help'], cwd);
  return r.stdout.includes('--jobs');
}

function commitOf(cwd: string): string {
  try {
    return execFileSync('git', ['-C', cwd, 'log', '-1', '--format=%h %s'], { encoding: 'utf8' }).trim().slice(0, 90);
  } catch {
    return '?';
  }
}

export async function labsSection(opts: {
  repeat: number;
  jobs: number[];
  baseline?: string;
  calm?: () => Promise<unknown>;
}): Promise<string> {
  const lines: string[] = [];
  const nflab = (...args: string[]) => [process.execPath, 'bin/nflab.mjs', ...args];
  const calm = opts.calm ?? (async () => undefined);
  const statusOf = (r: Timed) => {
    try {
      return (JSON.parse(r.stdout) as { labs: { status: string }[] }).labs.map((l) => l.status);
    } catch {
      return [`exit ${r.code}`];
    }
  };
  const impls = [
    ...(opts.baseline ? [{ name: 'before', cwd: path.resolve(opts.baseline) }] : []),
    { name: 'after', cwd: REPO },
  ];
  const results = new Map<string, Timed[]>();
  const add = (key: string, t: Timed) => {
    results.set(key, [...(results.get(key) ?? []), t]);
    // Progress on stderr, one line per measurement (a run cut short still leaves its figures).
    console.error(`${key}: wall ${t.wall.toFixed(2)} s, CPU ${t.cpu.toFixed(2)} s, ${statusOf(t).join(' ')}`);
  };
  const jobsOf = new Map<string, boolean>();
  for (const impl of impls) jobsOf.set(impl.name, await jobsSupported(impl.cwd));

  for (let r = 0; r < Math.max(5, Math.min(9, opts.repeat * 3)); r++) {
    for (const impl of impls) add(`${impl.name} start`, await timed(nflab('--version'), impl.cwd));
    add('node start', await timed([process.execPath, '-e', '0']));
  }
  for (let r = 0; r < opts.repeat; r++) {
    // The whole suite first (the headline figures), then each lab on its own.
    for (const impl of r % 2 ? [...impls].reverse() : impls) {
      const variants = jobsOf.get(impl.name) ? [['--jobs', '1'], ...opts.jobs.map((j) => ['--jobs', String(j)])] : [[]];
      for (const v of variants) {
        await calm();
        add(`${impl.name} all ${v.join(' ')}`, await timed(nflab('run', '--all', ...v, '--json'), impl.cwd));
      }
    }
    for (const id of labIds()) {
      // The implementations take turns, starting with a different one each round.
      for (const impl of r % 2 ? [...impls].reverse() : impls) {
        await calm();
        add(`${impl.name} ${id}`, await timed(nflab('run', id, '--json'), impl.cwd));
      }
    }
  }
  const med = (key: string, f: (t: Timed) => number) => median((results.get(key) ?? []).map(f));
  const wall = (key: string) => med(key, (t) => t.wall);
  const cpu = (key: string) => med(key, (t) => t.cpu);
  const statuses = (key: string) => [...new Set((results.get(key) ?? []).map((t) => statusOf(t).join(' ')))];

  lines.push('## The lab suite: wall and CPU per lab, before and after');
  lines.push('');
  lines.push(
    `Seconds, median of ${opts.repeat}; the implementations take turns. Each lab runs on its own (\`nflab run <id> --json\`, start-up and preflight included). CPU = every process nflab started (${existsSync(`${CPUACCT}/cgroup.procs`) ? 'the cpuacct cgroup of the run' : '/usr/bin/time user + system'}). ${impls.map((i) => `**${i.name}**: ${commitOf(i.cwd)}`).join('; ')}. Load average at the end: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')}.`,
  );
  lines.push('');
  const header = impls.flatMap((i) => [`${i.name} wall`, `${i.name} CPU`]);
  const ratio = impls.length > 1;
  lines.push(`| lab | ${header.join(' | ')}${ratio ? ' | wall after/before | CPU after/before' : ''} | statuses |`);
  lines.push(`|---|${header.map(() => '---').join('|')}${ratio ? '|---|---' : ''}|---|`);
  const row = (label: string, keys: string[]) => {
    const cells = keys.flatMap((k) => [fmt(wall(k)), fmt(cpu(k))]);
    const ratios = ratio ? [fmt(wall(keys[1]!) / wall(keys[0]!)), fmt(cpu(keys[1]!) / cpu(keys[0]!))] : [];
    const st = [...new Set(keys.flatMap(statuses))];
    lines.push(
      `| ${label} | ${[...cells, ...ratios].join(' | ')} | ${st.length === 1 ? st[0] : `DIFFER: ${st.join(' / ')}`} |`,
    );
  };
  for (const id of labIds())
    row(
      id,
      impls.map((i) => `${i.name} ${id}`),
    );
  lines.push('');
  lines.push('| command | wall (s) | CPU (s) | statuses (every run) |');
  lines.push('|---|---|---|---|');
  for (const key of [...results.keys()].filter((k) => / all /.test(k))) {
    const [impl, , ...v] = key.split(' ');
    lines.push(
      `| ${impl}: \`nflab run --all ${v.join(' ')} --json\` | ${fmt(wall(key))} | ${fmt(cpu(key))} | ${statuses(key).join(' / ')} |`,
    );
  }
  for (const impl of impls)
    lines.push(
      `| ${impl.name}: \`nflab --version\` (start-up, median of ${results.get(`${impl.name} start`)!.length}) | ${fmt(wall(`${impl.name} start`), 3)} | ${fmt(cpu(`${impl.name} start`), 3)} | |`,
    );
  lines.push(
    `| \`node -e 0\` (node's own start on this machine now) | ${fmt(wall('node start'), 3)} | ${fmt(cpu('node start'), 3)} | |`,
  );
  lines.push('');
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const arg = (name: string, fallback: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
  };
  const baseline = arg('baseline', '');
  const text = await labsSection({
    repeat: Number(arg('repeat', '3')),
    jobs: arg('jobs', '2').split(',').filter(Boolean).map(Number),
    ...(baseline ? { baseline } : {}),
  });
  console.log(text);
  const out = arg('out', '');
  if (out) writeFileSync(out, text + '\n');
}
