// nflab's side of the bridge benchmark: the scale lab labs/scale/bridge-n.ts at size N, run through
// the engine (build, steps, teardown) in this process, timed per phase like the bash baselines.
// Usage: node --import tsx scripts/bench/nflab-bridge.ts N [all-pairs:0|1] [--nodes netns|docker]
// Prints "phase seconds ok total" lines, then "profile <json>" (Sandbox.timings) and "rss <KiB>".
import { LocalExecutor } from '../../src/exec/local.ts';
import { loadLabFile } from '../../src/resolve/load.ts';
import { Sandbox } from '../../src/engine/sandbox.ts';
import { resolveLab } from '../../src/resolve/resolve-lab.ts';
import { runStep } from '../../src/engine/step.ts';
import type { DriverKind } from '../../src/lab/types.ts';

const n = Number(process.argv[2]);
const pairs = process.argv[3] === '1';
const driver = (
  process.argv.includes('--nodes') ? process.argv[process.argv.indexOf('--nodes') + 1] : 'netns'
) as DriverKind;
process.env.NFLAB_N = String(n);
process.env.NFLAB_PAIRS_MAX = pairs ? String(n) : '0';
const lab = await loadLabFile(new URL('../../labs/scale/bridge-n.ts', import.meta.url).pathname);
const exec = new LocalExecutor();
const sandbox = new Sandbox(resolveLab(lab, { driver }), exec, { watchdog: false });
const seconds = (ms: number) => (ms / 1000).toFixed(3);
// The CLI has run commands before a build starts (uname, preflight): so has this, before the clock.
await exec.run(['true']);
try {
  let t = performance.now();
  await sandbox.build();
  console.log(`setup ${seconds(performance.now() - t)} ${n} ${n}`);
  for (const [i, step] of lab.steps.entries()) {
    t = performance.now();
    const report = await runStep(sandbox, step, () => false);
    const reach = report.checks.find((c) => c.kind === 'all-reach' || c.kind === 'all-pairs')!;
    const observed = reach.observed as { pings: number; replies: number };
    console.log(
      `${i === 0 ? 'gateway' : 'allpairs'} ${seconds(performance.now() - t)} ${observed.replies} ${observed.pings}`,
    );
    const unmet = report.checks.filter((c) => c.status !== 'met');
    if (unmet.length > 0) console.error(`not met: ${JSON.stringify(unmet).slice(0, 2000)}`);
  }
} finally {
  const t = performance.now();
  await sandbox.teardown();
  console.log(`teardown ${seconds(performance.now() - t)} ${n} ${n}`);
}
console.log(
  `profile ${JSON.stringify(Object.fromEntries(Object.entries(sandbox.timings).map(([k, v]) => [k, Math.round(v)])))}`,
);
console.log(`rss ${process.resourceUsage().maxRSS}`);
