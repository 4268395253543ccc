// How long the Docker driver takes to bring up N container nodes, all at once (one create() of N
// nodes, which the driver runs in parallel) versus one after another (N create() calls of one node).
// Run as root with a Docker engine: node --import tsx scripts/bench-docker-start.ts [--n 20,50] [--repeat 1]
import { randomBytes } from 'node:crypto';
import { $ } from 'zx';
import * as os from 'node:os';
import { LocalExecutor } from '../src/exec/local.ts';
import { DockerDriver, connectDocker } from '../src/drivers/docker.ts';
import { ensureLabImage } from '../src/drivers/image.ts';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const sizes = option('n', '20,50').split(',').map(Number);
const repeat = Number(option('repeat', '1'));
const prefix = option('prefix', 'bench');
const exec = new LocalExecutor();

const docker = await connectDocker();
const t0 = performance.now();
const image = await ensureLabImage(docker, (l) => console.error(l));
console.error(`image ${image} ready in ${((performance.now() - t0) / 1000).toFixed(2)} s`);

interface Timing {
  up: number;
  down: number;
}

async function bringUp(n: number, parallel: boolean): Promise<Timing> {
  const runId = `${prefix}${randomBytes(3).toString('hex')}`;
  const driver = new DockerDriver({ runId, exec, image, docker });
  const nodes = Array.from({ length: n }, (_, i) => `n${String(i + 1).padStart(2, '0')}`);
  try {
    const start = performance.now();
    if (parallel) await driver.create(nodes);
    else for (const node of nodes) await driver.create([node]);
    const up = (performance.now() - start) / 1000;
    const stop = performance.now();
    await driver.destroy();
    return { up, down: (performance.now() - stop) / 1000 };
  } finally {
    await driver.destroy();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// Warm-up: the first container after an import pays for unpacking the image layer.
await bringUp(1, true);

const rows: string[][] = [];
const singles: number[] = [];
for (let r = 0; r < 5; r++) singles.push((await bringUp(1, true)).up);
const single = median(singles);
rows.push(['1', 'alone (median of 5)', single.toFixed(2), (single * 1000).toFixed(0), '', '']);
for (const n of sizes) {
  const par: Timing[] = [];
  const seq: Timing[] = [];
  for (let r = 0; r < repeat; r++) {
    seq.push(await bringUp(n, false));
    par.push(await bringUp(n, true));
  }
  const p = median(par.map((x) => x.up));
  const s = median(seq.map((x) => x.up));
  const d = median(par.map((x) => x.down));
  rows.push([String(n), 'sequential', s.toFixed(2), ((s / n) * 1000).toFixed(0), '', '']);
  rows.push([String(n), 'parallel', p.toFixed(2), ((p / n) * 1000).toFixed(0), (s / p).toFixed(2), d.toFixed(2)]);
}

const header = ['N', 'mode', 'seconds', 'ms per container', 'sequential / parallel', 'destroy (s, parallel)'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows) console.log(line(r));

// zx quotes each word of the argv; nothrow: a missing tool reads as '?'.
const version = (argv: string[]) => {
  const r = $({ sync: true, quiet: true, nothrow: true })`${argv}`;
  return r.exitCode === 0 ? r.stdout.trim() : '?';
};
console.log();
console.log(
  `machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, kernel ${os.release()}`,
);
console.log(
  `docker engine ${version(['docker', 'version', '--format', '{{.Server.Version}}'])}, ${version(['runc', '--version']).split('\n')[0]}, repeat ${repeat} (median)`,
);
