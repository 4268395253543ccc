// What a handout says about one lab, independent of its format: the commands a person types for
// the chosen driver, what each step expects, and (when a run is given) what that run observed.
// Markdown and HTML render this; neither computes commands of its own.
import { basename } from 'node:path';
import type { DriverKind, Lab } from '../lab/types.ts';
import type { CheckReport, CommandReport, LabReport, StepReport } from '../report/types.ts';
import { describeCheck, moduleOf } from '../check/registry.ts';
import { stepRequestsOf } from '../check/step-needs.ts';
import { resolveLab } from '../resolve/resolve-lab.ts';
import { planLines } from '../resolve/plan-display.ts';
import { trafficLine } from '../resolve/step-display.ts';
import { reachTargets } from '../traffic/reach.ts';

export interface HandoutExpectation {
  description: string;
  /** The run's verdict on this check, when the handout was made from a run that reached the step. */
  evidence?: CheckReport;
}

/** A question of the step, its answer, and (from a run) what that run observed for it. */
export interface HandoutQuestion {
  ask: string;
  answer: string;
  observed?: CheckReport;
}

/** Who the handout is for: the student's worksheet (questions, no answers, the fix folded away)
 * or the teacher's answer key (answers, expectations and a run's evidence). */
export type Edition = 'student' | 'teacher';
export const EDITIONS: readonly Edition[] = ['student', 'teacher'];

export interface HandoutStep {
  number: number;
  title: string;
  teaches?: string;
  questions: HandoutQuestion[];
  /** Start these before the traffic (in another terminal) to watch what the checks observe. */
  watch: string[];
  /** The step's own commands. */
  commands: string[];
  /** The traffic the step sends. */
  traffic: string[];
  /** Look at the result: counters, conntrack, the output the checks read. */
  look: string[];
  expect: HandoutExpectation[];
  /** What the run did in this step; absent when there was no run, or it stopped before. */
  evidence?: {
    status: StepReport['status'];
    durationMs: number;
    commands: CommandReport[];
    commandFailures: CheckReport[];
  };
}

export interface Handout {
  lab: Lab;
  /** Base name for this lab's output files: the lab file's name without .ts. */
  slug: string;
  driver: DriverKind;
  edition: Edition;
  kindOf: (node: string) => DriverKind;
  /** The commands that build the topology, as a person types them. */
  build: string[];
  steps: HandoutStep[];
  /** The run the evidence comes from. */
  report?: LabReport;
  /** Why there is no evidence (no run; or the run stopped: its reason). */
  noEvidence?: string;
}

export const NO_RUN = 'made without a run: no evidence';

export function handoutSlug(lab: Lab): string {
  return lab.file ? basename(lab.file).replace(/\.ts$/, '') : `lab-${lab.id}`;
}

export function buildHandout(lab: Lab, driver: DriverKind, report?: LabReport, edition: Edition = 'teacher'): Handout {
  // The handout renders the lab as resolved for its driver: the engine's build plan, its commands.
  const r = resolveLab(lab, { driver });
  const kindOf = r.driverOf;
  const show = r.show;
  const build = planLines(r).map((l) => l.text);
  const steps = lab.steps.map((step, i): HandoutStep => {
    const checks = step.expect ?? [];
    const ran = report?.steps[i];
    const judged = ran ? ran.checks.filter((c) => c.kind !== 'command') : [];
    return {
      number: i + 1,
      title: step.title,
      ...(step.teaches ? { teaches: step.teaches } : {}),
      questions: (step.questions ?? []).map((q) => {
        const observed = q.observedIn !== undefined ? judged[q.observedIn] : undefined;
        // Only a verdict on the very check the question names counts as its evidence.
        const same =
          observed && q.observedIn !== undefined && observed.description === describeCheck(checks[q.observedIn]!);
        return { ask: q.ask, answer: q.answer, ...(same ? { observed } : {}) };
      }),
      watch: unique(checks.flatMap((c) => moduleOf(c).watch?.(c as never, show) ?? [])),
      commands: (step.run ?? []).map((c) => r.display(c)),
      traffic: [
        ...r.steps[i]!.traffic.map((t) => trafficLine(r, t)),
        // Reachability at scale: one of its pings stands for all of them.
        ...stepRequestsOf(step, 'reach').map(({ check: c }) => {
          const targets = [...reachTargets(c)];
          const [from, tos] = targets[0] ?? ['?', ['?']];
          const n = targets.reduce((sum, [, t]) => sum + t.length, 0);
          return `${show(from, ['ping', '-c', '1', '-W', String(c.wait ?? 1), tos[0] ?? '?'])}${n > 1 ? `   # one of ${n} pings` : ''}`;
        }),
      ],
      look: unique(checks.flatMap((c) => moduleOf(c).look?.(c as never, show) ?? [])),
      expect: checks.map((c, j) => {
        const description = describeCheck(c);
        const evidence = judged[j];
        return { description, ...(evidence && evidence.description === description ? { evidence } : {}) };
      }),
      ...(ran
        ? {
            evidence: {
              status: ran.status,
              durationMs: ran.durationMs,
              commands: ran.commands,
              commandFailures: ran.checks.filter((c) => c.kind === 'command'),
            },
          }
        : {}),
    };
  });
  const noEvidence = !report
    ? NO_RUN
    : report.status === 'skipped'
      ? `the run skipped this lab: ${report.reason ?? 'no reason given'}`
      : report.steps.length < lab.steps.length
        ? `the run stopped after ${report.steps.length} of ${lab.steps.length} steps${report.reason ? `: ${report.reason}` : ''}`
        : undefined;
  return {
    lab,
    slug: handoutSlug(lab),
    driver,
    edition,
    kindOf,
    build,
    steps,
    ...(report ? { report } : {}),
    ...(noEvidence ? { noEvidence } : {}),
  };
}

function unique(lines: string[]): string[] {
  return [...new Set(lines)];
}

/** The command that checks a step on a lab brought up with `nflab up`. */
export function checkCommand(h: Handout, step: HandoutStep): string {
  return `nflab check ${h.lab.id} --step ${step.number}`;
}

/** A verdict in words, for the index and headings. */
export function verdictWords(report: LabReport | undefined): string {
  if (!report) return 'not run';
  const checks = report.steps.flatMap((s) => s.checks);
  const met = checks.filter((c) => c.status === 'met').length;
  if (report.status === 'skipped') return `skipped (${report.reason ?? 'no reason'})`;
  return `${report.status}: ${met} of ${checks.length} checks met`;
}
