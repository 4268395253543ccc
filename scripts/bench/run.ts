// The scale benchmark (scripts/bench.sh): nflab against two bash baselines and Mininet on the same
// work, the lab suite per lab in both node modes, nflab's peak memory at the largest size, and Docker
// mode at scale. Prints markdown tables and writes them to --out.
// Run as root: scripts/bench.sh [--sizes 2,10,50,200,1000] [--repeat 3] [--mininet 2,10,50]
//   [--pairs-max 50] [--docker 50] [--no-suite] [--out docs/benchmarks/results.md] [--prefix nfb-]
//   [--no-labs] [--labs-baseline DIR] [--jobs 2]  (the per-lab section, scripts/bench/labs.ts)
import { spawn } from 'node:child_process';
import { $ } from 'zx';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { labsSection } from './labs.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
};
const list = (s: string) => (s === 'none' || s === '' ? [] : s.split(',').map(Number));
const sizes = list(arg('sizes', '2,10,50,200,1000'));
const repeat = Number(arg('repeat', '3'));
const pairsMax = Number(arg('pairs-max', '50'));
const mininetSizes = list(arg('mininet', '2,10,50'));
const dockerN = Number(arg('docker', '50'));
const suite = !process.argv.includes('--no-suite');
const labs = !process.argv.includes('--no-labs');
const labsBaseline = arg('labs-baseline', '');
// --impls nflab,nflab-spawn,batch: nflab-spawn is nflab without its command helper. --impls nflab,batch leaves out the slow one-`ip`-per-step baseline (minutes at N = 1000 on a loaded machine).
const impls = arg('impls', 'nflab,batch,ip').split(',');
const jobs = arg('jobs', '2').split(',').filter(Boolean).map(Number);
const out = arg('out', `${REPO}docs/benchmarks/results.md`);
const prefix = arg('prefix', `nfb${process.pid % 10000}-`);
const maxLoad = Number(arg('max-load', String(os.availableParallelism() * 2)));

type Phases = Record<string, { s: number; ok: number; total: number }>;
interface Sample {
  phases: Phases;
  load: number;
  profile?: Record<string, number>;
  rss?: number;
}

/** Waits (up to 60 s) for the 1-minute load to fall under --max-load; returns the load it starts at. */
async function calm(): Promise<number> {
  const deadline = Date.now() + 60_000;
  while (os.loadavg()[0]! > maxLoad && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2000));
  return os.loadavg()[0]!;
}

/** Runs one argv (zx quotes each word) to the end; a failing command is a result, not an exception. */
async function run(
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await $({ cwd: REPO, env: { ...process.env, ...env }, quiet: true, nothrow: true })`${argv}`;
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

function parse(stdout: string): Sample['phases'] & object {
  const phases: Phases = {};
  for (const line of stdout.split('\n')) {
    const m = /^(setup|gateway|allpairs|teardown) ([\d.]+) (\d+) (\d+)$/.exec(line.trim());
    if (m) phases[m[1]!] = { s: Number(m[2]), ok: Number(m[3]), total: Number(m[4]) };
  }
  return phases;
}

async function sample(impl: string, n: number, pairs: boolean): Promise<Sample> {
  const load = await calm();
  const argv =
    impl === 'nflab' || impl === 'nflab-spawn'
      ? [process.execPath, '--import', 'tsx', 'scripts/bench/nflab-bridge.ts', String(n), pairs ? '1' : '0']
      : impl === 'nflab-docker'
        ? [process.execPath, '--import', 'tsx', 'scripts/bench/nflab-bridge.ts', String(n), '0', '--nodes', 'docker']
        : ['bash', `scripts/bench/bridge-${impl}.sh`, `${prefix}${impl[0]}`, String(n), pairs ? '1' : '0'];
  // nflab-spawn: the engine with every command spawned from node (no command helper), the way before issue 18.
  const r = await run(argv, impl === 'nflab-spawn' ? { NFLAB_EXEC_HELPER: '0' } : {});
  if (r.code !== 0) throw new Error(`${impl} N=${n} failed (${r.code}): ${r.stderr.slice(-2000)}`);
  const profile = /^profile (.*)$/m.exec(r.stdout)?.[1];
  const rss = /^rss (\d+)$/m.exec(r.stdout)?.[1];
  const phases = parse(r.stdout);
  for (const [phase, p] of Object.entries(phases))
    if (p.ok !== p.total) console.error(`! ${impl} N=${n} ${phase}: ${p.ok}/${p.total}`);
  return { phases, load, ...(profile ? { profile: JSON.parse(profile) } : {}), ...(rss ? { rss: Number(rss) } : {}) };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const table = (header: string[], rows: string[][]) =>
  [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

const lines: string[] = [];
const say = (s = '') => {
  lines.push(s);
  console.log(s);
};
// zx quotes each word of the argv; nothrow: a missing tool reads as '?'.
const version = (argv: string[]) => {
  const r = $({ sync: true, quiet: true, nothrow: true })`${argv}`;
  return r.exitCode === 0 ? r.stdout.trim().split('\n')[0]! : '?';
};

say(`# Scale benchmark results`);
say();
say(
  `Written by \`scripts/bench.sh\` on ${new Date().toISOString()}. Machine: ${os.availableParallelism()} CPUs (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, kernel ${os.release()}, Node ${process.version}, ${version(['ip', '-V'])}. Load average at the start: ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(
      ', ',
    )}. Each figure is the median of ${repeat} runs (1 at N ≥ 1000); the three implementations take turns, and each run waits (up to 60 s) for the 1-minute load to drop under ${maxLoad}.`,
);
say();

// ---- 1. N containers on one bridge -------------------------------------------------------------
const results = new Map<string, Sample[]>();
for (const n of sizes) {
  const pairs = n <= pairsMax;
  const reps = n >= 1000 ? 1 : repeat;
  for (let r = 0; r < reps; r++) {
    const order = ['nflab', 'nflab-spawn', 'batch', 'ip'].filter((i) => impls.includes(i));
    for (let k = 0; k < r; k++) order.push(order.shift()!);
    for (const impl of order) {
      const s = await sample(impl, n, pairs);
      results.set(`${impl} ${n}`, [...(results.get(`${impl} ${n}`) ?? []), s]);
      console.error(`${impl} N=${n}: ${JSON.stringify(s.phases)} load ${s.load.toFixed(1)}`);
    }
  }
}
const med = (impl: string, n: number, phase: string) =>
  median((results.get(`${impl} ${n}`) ?? []).flatMap((s) => (s.phases[phase] ? [s.phases[phase]!.s] : [])));
const build = (impl: string, n: number) => med(impl, n, 'setup') + med(impl, n, 'teardown');

say('## N containers on one bridge: set-up and teardown');
say();
say(
  "Seconds (median). `ip` = one `ip` call per step (scripts/bench/bridge-ip.sh), `batch` = `ip -batch` and one process per container (scripts/bench/bridge-batch.sh), nflab = the engine building labs/scale/bridge-n.ts (scripts/bench/nflab-bridge.ts). Set-up includes nflab's wait until every link is up and every bridge port forwards; the scripts do not wait.",
);
say();
say(
  table(
    [
      'N',
      'nflab set-up',
      'nflab teardown',
      'batch set-up',
      'batch teardown',
      'ip set-up',
      'ip teardown',
      'nflab / batch (set-up + teardown)',
      'nflab / ip',
      'nflab ms per node',
      'load',
    ],
    sizes.map((n) => [
      String(n),
      fmt(med('nflab', n, 'setup')),
      fmt(med('nflab', n, 'teardown'), 3),
      fmt(med('batch', n, 'setup')),
      fmt(med('batch', n, 'teardown'), 3),
      fmt(med('ip', n, 'setup')),
      fmt(med('ip', n, 'teardown'), 3),
      fmt(build('nflab', n) / build('batch', n)),
      fmt(build('nflab', n) / build('ip', n)),
      fmt((build('nflab', n) / n) * 1000, 1),
      fmt(median((results.get(`nflab ${n}`) ?? []).map((s) => s.load)), 1),
    ]),
  ),
);
say();
if (impls.includes('nflab-spawn')) {
  say(
    "The command helper's share, same run: nflab-spawn is the engine with every command spawned from node (`NFLAB_EXEC_HELPER=0`).",
  );
  say();
  say(
    table(
      [
        'N',
        'nflab set-up + teardown',
        'nflab-spawn set-up + teardown',
        'batch set-up + teardown',
        'nflab / batch',
        'nflab-spawn / batch',
        'nflab / nflab-spawn',
      ],
      sizes.map((n) => [
        String(n),
        fmt(build('nflab', n)),
        fmt(build('nflab-spawn', n)),
        fmt(build('batch', n)),
        fmt(build('nflab', n) / build('batch', n)),
        fmt(build('nflab-spawn', n) / build('batch', n)),
        fmt(build('nflab', n) / build('nflab-spawn', n)),
      ]),
    ),
  );
  say();
}
say('## Reachability checks');
say();
say(
  'Seconds (median): every container pings the gateway once; all pairs (each container pings every other one) up to N = ' +
    pairsMax +
    '. nflab and batch run 2 × CPUs containers at a time, each sending its pings at once; ip pings one pair after another.',
);
say();
say(
  table(
    ['N', 'check', 'nflab', 'batch', 'ip', 'nflab / batch', 'nflab / ip'],
    sizes.flatMap((n) =>
      ['gateway', ...(n <= pairsMax ? ['allpairs'] : [])].map((phase) => [
        String(n),
        phase === 'gateway' ? 'everyone → gateway' : 'all pairs',
        fmt(med('nflab', n, phase)),
        fmt(med('batch', n, phase)),
        fmt(med('ip', n, phase)),
        fmt(med('nflab', n, phase) / med('batch', n, phase)),
        fmt(med('nflab', n, phase) / med('ip', n, phase)),
      ]),
    ),
  ),
);
say();
say("## Where nflab's set-up time goes");
say();
const phasesSeen = [
  ...new Set(sizes.flatMap((n) => (results.get(`nflab ${n}`) ?? []).flatMap((s) => Object.keys(s.profile ?? {})))),
];
say(
  table(
    ['N', ...phasesSeen.map((p) => `${p} (ms)`)],
    sizes.map((n) => [
      String(n),
      ...phasesSeen.map((p) =>
        fmt(
          median(
            (results.get(`nflab ${n}`) ?? []).flatMap((s) => (s.profile?.[p] !== undefined ? [s.profile[p]!] : [])),
          ),
          0,
        ),
      ),
    ]),
  ),
);
say();
const biggest = sizes[sizes.length - 1];
if (biggest !== undefined) {
  const rss = median((results.get(`nflab ${biggest}`) ?? []).flatMap((s) => (s.rss ? [s.rss] : [])));
  say(
    `Peak RSS of the nflab process at N = ${biggest}: **${fmt(rss / 1024, 0)} MiB** (getrusage maxrss of the engine process; the CLI figure is below).`,
  );
  say();
}

// ---- 2. Mininet --------------------------------------------------------------------------------
say('## All pairs against Mininet');
say();
if (mininetSizes.length > 0) {
  if (!existsSync('/usr/bin/mn')) {
    say('Mininet is not installed (`apt-get install -y mininet bridge-utils net-tools`): skipped.');
  } else {
    const rows: string[][] = [];
    for (const n of mininetSizes) {
      const ns = `${prefix}mn`;
      const samples: Phases[] = [];
      for (let r = 0; r < (n >= 50 ? 1 : repeat); r++) {
        await calm();
        await run(['ip', 'netns', 'add', ns]);
        try {
          const m = await run([
            'ip',
            'netns',
            'exec',
            ns,
            'unshare',
            '--pid',
            '--fork',
            '--mount-proc',
            '/usr/bin/python3',
            'scripts/bench/mininet-pingall.py',
            String(n),
            '--arp',
          ]);
          if (m.code !== 0) throw new Error(`mininet N=${n} failed: ${m.stderr.slice(-1500)}`);
          samples.push(parse(m.stdout));
        } finally {
          await run(['ip', 'netns', 'del', ns]);
        }
      }
      const mm = (phase: string) => median(samples.flatMap((s) => (s[phase] ? [s[phase]!.s] : [])));
      const nf = sizes.includes(n) ? med('nflab', n, 'allpairs') : NaN;
      const ok = samples[0]?.allpairs;
      rows.push([
        String(n),
        fmt(mm('setup')),
        fmt(mm('allpairs')),
        ok ? `${ok.ok}/${ok.total}` : '–',
        fmt(mm('teardown')),
        fmt(nf),
        fmt(mm('allpairs') / nf, 1),
      ]);
      console.error(`mininet N=${n}: ${JSON.stringify(samples)}`);
    }
    say(
      "Mininet 2.3.0 (Debian), `--switch lxbr --controller none --topo single,N` with static ARP (`--arp`, the same pinned neighbours as nflab's all-pairs lab), driven through its Python API (scripts/bench/mininet-pingall.py) to time pingall apart from set-up, in a network namespace and a PID namespace of its own. Seconds.",
    );
    say();
    say(
      table(
        [
          'N',
          'Mininet set-up',
          'Mininet pingall',
          'replies',
          'Mininet stop',
          'nflab all pairs',
          'Mininet / nflab (pingall)',
        ],
        rows,
      ),
    );
  }
}
say();

// ---- 3. The lab suite, both node modes ---------------------------------------------------------
if (suite) {
  say('## The lab suite (`nflab run --all`), per lab');
  say();
  const perMode = new Map<string, Map<string, number>>();
  const totals = new Map<string, number>();
  for (const mode of ['netns', 'docker']) {
    await calm();
    const started = performance.now();
    const r = await run([process.execPath, 'bin/nflab.mjs', 'run', '--all', '--json', '--nodes', mode]);
    totals.set(mode, (performance.now() - started) / 1000);
    try {
      const report = JSON.parse(r.stdout) as { labs: { id: string; status: string; durationMs: number }[] };
      perMode.set(
        mode,
        new Map(
          report.labs.map((l) => [`${l.id}${l.status === 'passed' ? '' : ` (${l.status})`}`, l.durationMs / 1000]),
        ),
      );
    } catch {
      perMode.set(mode, new Map([[`(run failed: exit ${r.code})`, NaN]]));
    }
  }
  const ids = [...new Set([...perMode.values()].flatMap((m) => [...m.keys()]))];
  say(
    table(
      ['lab', 'netns (s)', 'docker (s)'],
      [
        ...ids.map((id) => [id, fmt(perMode.get('netns')?.get(id) ?? NaN), fmt(perMode.get('docker')?.get(id) ?? NaN)]),
        ['whole command (wall, with start-up and preflight)', fmt(totals.get('netns')!), fmt(totals.get('docker')!)],
      ],
    ),
  );
  say();
}

// ---- 3b. Per lab, wall and CPU, against a baseline checkout, --jobs, start-up ---------------------
if (labs) {
  say(await labsSection({ repeat, jobs, ...(labsBaseline ? { baseline: labsBaseline } : {}), calm }));
}

// ---- 4. Docker mode at scale -------------------------------------------------------------------
if (dockerN > 0) {
  say(`## Docker mode: ${dockerN} containers on one bridge`);
  say();
  try {
    const s = await sample('nflab-docker', dockerN, false);
    say(
      table(
        ['N', 'set-up (s)', 'ms per container', 'everyone → gateway (s)', 'teardown (s)', 'load'],
        [
          [
            String(dockerN),
            fmt(s.phases.setup!.s),
            fmt((s.phases.setup!.s / dockerN) * 1000, 0),
            fmt(s.phases.gateway!.s),
            fmt(s.phases.teardown!.s),
            fmt(s.load, 1),
          ],
        ],
      ),
    );
    say();
    say(`Profile (ms): ${JSON.stringify(s.profile)}`);
  } catch (err) {
    say(`Docker mode could not run: ${(err as Error).message.split('\n')[0]}`);
  }
  say();
}

// ---- 5. Peak RSS of the CLI at the largest size ------------------------------------------------
if (biggest !== undefined) {
  await calm();
  const child = spawn(process.execPath, ['bin/nflab.mjs', 'run', 'labs/scale/bridge-n.ts'], {
    cwd: REPO,
    env: { ...process.env, NFLAB_N: String(biggest) },
    stdio: 'ignore',
  });
  let peak = 0;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0));
    } catch {
      /* exited */
    }
  }, 100);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  clearInterval(timer);
  say(
    `Peak RSS of \`NFLAB_N=${biggest} nflab run labs/scale/bridge-n.ts\` (VmHWM of the CLI process, sampled every 100 ms): **${fmt(peak / 1024, 0)} MiB** (exit ${code}).`,
  );
  say();
}
say(
  `Load average at the end: ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(', ')}.`,
);
writeFileSync(out, lines.join('\n') + '\n');
console.error(`written to ${out}`);
