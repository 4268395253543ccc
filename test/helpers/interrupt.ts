// Interrupting real runs at chosen points. A point is a progress marker the CLI prints (the run
// line, "topology built", each step's line, the summary) plus a delay into the stretch of time that
// follows it, measured on an uninterrupted run of the same lab: so points land in set-up, in every
// step and in teardown even when the machine is slower than when the lab was measured.
import { $ } from 'zx';
import { CLI, REPO, nflab, type CliResult } from './system.ts';
import { pinNamespaces, readJournal, type Pinned } from './residue.ts';
import type { ProcessRef } from '../../src/engine/journal.ts';

/** A progress marker: the line that ends one phase and starts the next. */
interface Mark {
  phase: string;
  line: RegExp;
}

function marksOf(steps: number): Mark[] {
  return [
    { phase: 'setup', line: /\(run [a-z0-9]+\)/ },
    ...Array.from({ length: steps }, (_, i) => ({
      phase: `step ${i + 1}`,
      line: i === 0 ? /topology built/ : new RegExp(`[✔✘] step ${i}: `),
    })),
    { phase: 'teardown', line: new RegExp(`[✔✘] step ${steps}: `) },
    { phase: 'after', line: /checks met, / },
  ];
}

export interface LabInfo {
  id: string;
  steps: number;
}

export function listLabs(): LabInfo[] {
  const out = $({ sync: true, quiet: true, cwd: REPO })`${process.execPath} ${CLI} list --json`.stdout;
  return (JSON.parse(out) as { labs: LabInfo[] }).labs.map((l) => ({ id: l.id, steps: l.steps }));
}

/** A phase of an uninterrupted run: the marker that starts it, and how long it lasted (ms). */
export interface Phase {
  phase: string;
  line: RegExp;
  ms: number;
}

/** The phases of an uninterrupted run, among the markers it printed (a lab skipped for a missing
 * kernel feature prints no step), and that run's result. */
export interface Timeline {
  lab: LabInfo;
  phases: Phase[];
  result: CliResult;
}

export async function measure(lab: LabInfo): Promise<Timeline> {
  const marks = marksOf(lab.steps);
  const seenAt = new Map<Mark, number>();
  const result = await nflab(['run', lab.id], {
    onStdout: (all) => {
      for (const m of marks) if (!seenAt.has(m) && m.line.test(all)) seenAt.set(m, Date.now());
    },
  });
  const seen = marks.filter((m) => seenAt.has(m));
  const phases = seen
    .slice(0, -1)
    .map((m, i) => ({ phase: m.phase, line: m.line, ms: seenAt.get(seen[i + 1]!)! - seenAt.get(m)! }));
  return { lab, phases, result };
}

/** Small deterministic PRNG (mulberry32): the same seed picks the same points. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Point {
  phase: string;
  line: RegExp;
  delayMs: number;
}

/**
 * `count` points: one in set-up, one in teardown, the rest spread evenly over the steps' time
 * (with a random offset inside each slot), so long steps get more points than short ones. Delays
 * stay within the first 70% of a phase: a run a little faster than the measured one must still
 * be in that phase when the signal comes.
 */
export function choosePoints(timeline: Timeline, count: number, random: () => number): Point[] {
  const phases = timeline.phases;
  const at = (phase: Phase, fraction: number): Point => ({
    phase: phase.phase,
    line: phase.line,
    delayMs: Math.floor(0.7 * fraction * phase.ms),
  });
  if (phases.length === 0) return [];
  const setup = phases[0]!;
  const teardown =
    phases.length > 1 && phases[phases.length - 1]!.phase === 'teardown' ? phases[phases.length - 1] : undefined;
  const points: Point[] = [at(setup, random()), ...(teardown ? [at(teardown, random())] : [])];
  const steps = phases.slice(1, teardown ? -1 : undefined);
  // A lab without steps (skipped) has only its set-up to interrupt.
  const spread = steps.length > 0 ? steps : [setup];
  const total = spread.reduce((sum, p) => sum + p.ms, 0);
  const slots = count - points.length;
  for (let j = 0; j < slots; j++) {
    let position = ((j + random()) / slots) * total;
    let i = 0;
    while (i < spread.length - 1 && position >= spread[i]!.ms) position -= spread[i++]!.ms;
    points.push(at(spread[i]!, spread[i]!.ms > 0 ? Math.min(position / spread[i]!.ms, 0.999) : 0));
  }
  return points;
}

export interface Interrupted {
  runId: string;
  /** The phase the run was in when the signal was sent (the last marker it had printed). */
  phaseHit: string;
  inodes: number[];
  /** The run's namespaces as they were at the signal, held open: release() after the checks. */
  pinned: Pinned;
  watchdog?: ProcessRef;
  result: CliResult;
  sent: boolean;
}

/** Runs the lab and sends `signal` at `point`. */
export async function interruptAt(lab: LabInfo, signal: NodeJS.Signals, point: Point): Promise<Interrupted> {
  const marks = marksOf(lab.steps);
  let runId = '';
  let pinned: Pinned = { inodes: [], release: () => {} };
  let watchdog: ProcessRef | undefined;
  let phaseHit = 'ended first';
  let armed = false;
  let sent = false;
  let latest = '';
  const phaseNow = () => {
    let last = -1;
    for (let i = 0; i < marks.length; i++) if (marks[i]!.line.test(latest)) last = i;
    return last < 0 ? 'startup' : marks[last]!.phase;
  };
  const result = await nflab(['run', lab.id], {
    onStdout: (all, child) => {
      latest = all;
      runId ||= /\(run ([a-z0-9]+)\)/.exec(all)?.[1] ?? '';
      if (armed || !point.line.test(all)) return;
      armed = true;
      setTimeout(() => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        // What exists at this instant, read just before the signal.
        if (runId) pinned = pinNamespaces(runId);
        watchdog = runId ? readJournal(runId)?.watchdog : undefined;
        phaseHit = phaseNow();
        try {
          sent = child.kill(signal);
        } catch {
          sent = false;
        }
      }, point.delayMs);
    },
  });
  return { runId, phaseHit, inodes: pinned.inodes, pinned, watchdog, result, sent };
}

/** At most `n` runs at once in this test file (each run is a real lab on a 2-core machine). */
export function limiter(n: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    // A finishing run hands its slot straight to the next waiting one.
    if (active < n) active++;
    else await new Promise<void>((r) => waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}
