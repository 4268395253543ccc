// Many machines: `nflab run --target a --target b`, `--target-file FILE` (one target a line:
// ssh:// URLs or ssh_config hosts), or `--target 'lab-*'` (the hosts of the ssh_config the
// pattern matches). The labs run on each target in parallel with a bound; each target gets its
// own report (and JUnit file), and a summary across them follows: for a teacher checking a
// class's VMs, or CI checking a fleet.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EnvError, LabError, exitCodeOf } from '../errors.ts';
import type { Executor } from '../exec/types.ts';
import { mapLimit } from '../exec/pool.ts';
import type { LabReport } from '../report/types.ts';
import { toJunit } from '../report/junit.ts';
import { connectTarget, sshConfigFile, type TargetArgs } from './target.ts';

export interface TargetListArgs extends TargetArgs {
  targetFile?: string | string[];
}

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The targets named on the command line, in order, each once. */
export async function targetList(args: TargetListArgs): Promise<string[]> {
  const named = [...list(args.target), ...list(args.targetFile).flatMap(readTargetFile)];
  const out: string[] = [];
  for (const t of named) {
    const expanded = /[*?]/.test(t) && !t.includes('://') ? await matchingHosts(t, args) : [t];
    for (const e of expanded) if (!out.includes(e)) out.push(e);
  }
  return out;
}

/** A target file: one target a line; `#` starts a comment. */
function readTargetFile(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LabError(`--target-file ${file}: ${(e as Error).message}`);
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter(Boolean);
}

/** The literal Host names of the ssh_config that a pattern (`*`, `?`) matches. */
async function matchingHosts(pattern: string, args: TargetArgs): Promise<string[]> {
  const { globPattern, readSshConfigText, sshConfigHosts } = await import('../exec/ssh-config.ts');
  const file = sshConfigFile(args);
  if (!existsSync(file))
    throw new LabError(`--target ${pattern}: the pattern names hosts of ${file}, which does not exist`);
  const re = globPattern(pattern);
  const hosts = sshConfigHosts(readSshConfigText(file)).filter((h) => re.test(h));
  if (hosts.length === 0) throw new LabError(`--target ${pattern}: no Host of ${file} matches`);
  return hosts;
}

export interface TargetOutcome {
  /** The target as given (an ssh_config host, a URL). */
  target: string;
  /** The executor's name (ssh://user@host:port). */
  name?: string;
  labs: LabReport[];
  /** 0 met, 1 a check not met, 3 the target could not run the labs (unreachable, tools missing, a lab that could not be built). */
  exitCode: number;
  /** Why the target could not run the labs. */
  error?: { kind: string; message: string; fix?: string };
}

export interface ManyTargetsOptions {
  /** Targets worked on at once. */
  parallel: number;
  /** Runs the labs on one connected target; its progress lines go to `progress`, marked with the target. */
  runOn: (exec: Executor, progress: NodeJS.WritableStream | undefined) => Promise<LabReport[]>;
  /** The exit code of one target's reports (as for nflab run on one target). */
  exitCodeOf: (labs: LabReport[]) => number;
  /** Where progress goes (undefined: nowhere). */
  progress?: NodeJS.WritableStream;
  /** JUnit file name template: results.xml -> results.<target>.xml. */
  junit?: string;
  /** One JSON report and one JUnit file per target, and summary.json, in this directory. */
  reportDir?: string;
}

/** A file-name-safe form of a target. */
export function targetSlug(target: string): string {
  return (
    target
      .replace(/^ssh:\/\//, '')
      .replace(/[^A-Za-z0-9._-]+/g, '_')
      .replace(/^[._]+|_+$/g, '') || 'target'
  );
}

/** Lines written to `stream`, each prefixed with the target (several targets' progress interleaves). */
function prefixed(stream: NodeJS.WritableStream | undefined, prefix: string): NodeJS.WritableStream | undefined {
  if (!stream) return undefined;
  let partial = '';
  const writer = {
    write(chunk: string | Uint8Array): boolean {
      partial += chunk.toString();
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (line.trim() !== '') stream.write(`[${prefix}] ${line}\n`);
      return true;
    },
  };
  return writer as unknown as NodeJS.WritableStream;
}

/** File names per target, unique even when two targets read alike (vm1, ssh://vm1). */
function uniqueSlugs(targets: string[]): string[] {
  const seen = new Map<string, number>();
  return targets.map((t) => {
    const slug = targetSlug(t);
    const n = (seen.get(slug) ?? 0) + 1;
    seen.set(slug, n);
    return n === 1 ? slug : `${slug}-${n}`;
  });
}

export async function runOnTargets(
  targets: string[],
  args: TargetArgs,
  options: ManyTargetsOptions,
): Promise<TargetOutcome[]> {
  const slugs = uniqueSlugs(targets);
  return mapLimit(targets, options.parallel, async (target, index) => {
    const progress = prefixed(options.progress, target);
    let exec: Executor | undefined;
    const outcome: TargetOutcome = { target, labs: [], exitCode: 0 };
    try {
      exec = await connectTarget({ ...args, target });
      outcome.name = exec.name;
      outcome.labs = await options.runOn(exec, progress);
      outcome.exitCode = options.exitCodeOf(outcome.labs);
    } catch (err) {
      // One unreachable machine does not stop the others: it is reported with the others.
      if (!(err instanceof EnvError)) throw err;
      outcome.exitCode = exitCodeOf(err);
      outcome.error = { kind: 'environment', message: err.message.replace(/\n  fix: [\s\S]*$/, ''), fix: err.fix };
      progress?.write(`cannot run here: ${outcome.error.message}\n`);
    } finally {
      await exec?.close();
    }
    writeTargetReports(outcome, slugs[index]!, options);
    return outcome;
  });
}

function writeTargetReports(outcome: TargetOutcome, slug: string, options: ManyTargetsOptions): void {
  if (options.junit) writeFileSync(junitFileFor(options.junit, slug), toJunit({ labs: outcome.labs }));
  if (options.reportDir) {
    mkdirSync(options.reportDir, { recursive: true });
    writeFileSync(join(options.reportDir, `${slug}.json`), JSON.stringify(outcome, null, 2) + '\n');
    writeFileSync(join(options.reportDir, `${slug}.junit.xml`), toJunit({ labs: outcome.labs }));
  }
}

/** results.xml + web1 -> results.web1.xml (no extension: results.web1). */
export function junitFileFor(template: string, slug: string): string {
  const m = /^(.*?)(\.[^./]+)?$/.exec(template)!;
  return `${m[1]}.${slug}${m[2] ?? ''}`;
}

/** Across targets: 1 when a check is not met anywhere, else 3 when a target could not run the labs, else 0. */
export function fleetExitCode(outcomes: TargetOutcome[]): number {
  if (outcomes.some((o) => o.exitCode === 1)) return 1;
  return outcomes.find((o) => o.exitCode !== 0)?.exitCode ?? 0;
}

export function fleetSummary(outcomes: TargetOutcome[]) {
  return {
    targets: outcomes.length,
    passed: outcomes.filter((o) => o.exitCode === 0).length,
    failed: outcomes.filter((o) => o.exitCode === 1).map((o) => o.target),
    unreachable: outcomes.filter((o) => o.error).map((o) => o.target),
    exitCode: fleetExitCode(outcomes),
  };
}

/** One line per target and lab: a table a teacher reads at a glance. */
export function formatFleetSummary(outcomes: TargetOutcome[]): string {
  const labIds = [...new Set(outcomes.flatMap((o) => o.labs.map((l) => l.id)))];
  const width = Math.max(6, ...outcomes.map((o) => o.target.length));
  const lines = [`\n${'target'.padEnd(width)}  ${labIds.map((id) => id.padEnd(7)).join(' ')}  result`];
  for (const o of outcomes) {
    const cells = labIds.map((id) => (o.labs.find((l) => l.id === id)?.status ?? '-').padEnd(7));
    const result = o.error
      ? `cannot run: ${o.error.message.split('\n')[0]}`
      : o.exitCode === 0
        ? 'passed'
        : `${o.labs.flatMap((l) => l.steps.flatMap((s) => s.checks)).filter((c) => c.status === 'not-met').length} checks not met`;
    lines.push(`${o.target.padEnd(width)}  ${cells.join(' ')}  ${result}`);
  }
  const s = fleetSummary(outcomes);
  lines.push(
    `\n${s.passed} of ${s.targets} targets passed${s.failed.length ? `; checks not met on ${s.failed.join(', ')}` : ''}${s.unreachable.length ? `; could not run on ${s.unreachable.join(', ')}` : ''}`,
  );
  return `${lines.join('\n')}\n`;
}
