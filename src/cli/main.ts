// The nflab command line. Each command is a thin layer over the engine; exit codes follow
// docs/design.md#exit-codes: 0 all met, 1 a check not met, 2 usage or invalid lab, 3 environment.
import yargs from 'yargs';
import type { Argv } from 'yargs';
import { EnvError, LabError, errorCode, exitCodeOf } from '../errors.ts';
import { killLiveChildren } from '../exec/local.ts';
import { mapLimit } from '../exec/pool.ts';
import { connectTarget, withTarget, type TargetArgs } from './target.ts';
import type { Executor } from '../exec/types.ts';
import type { DriverKind, Lab } from '../lab/types.ts';
import { loadAllLabs, resolveLabs } from '../resolve/load.ts';
import { runLab, type RunEvent } from '../engine/run-lab.ts';
import { preflight } from '../engine/preflight.ts';
import { resolveLab, rootNodeOf } from '../resolve/resolve-lab.ts';
import { deadRuns, removeRun } from '../engine/cleanup.ts';
import { assertJournalWritable, readJournal, type DamagedRecord } from '../engine/journal.ts';
import { summary, terminalReporter } from '../report/terminal.ts';
import type { LabReport } from '../report/types.ts';
import { showLab } from './show.ts';
import { assertStep } from '../engine/select-run.ts';
import { toJunit } from '../report/junit.ts';
import { writeFileSync } from 'node:fs';
import { interruptions } from './interrupt.ts';
import { kubeProxyCommand, withKubeProxyOption } from './kube-proxy.ts';
import type { RunRecordFile } from '../report/record.ts';
import type { Comparison } from '../report/compare.ts';
import { backendNote, IPTABLES_BACKENDS, machineBackend, type IptablesBackend } from '../engine/iptables-backend.ts';
import { LocalExecutor } from '../exec/local.ts';
import { verifyLabsCommand, withVerifyOptions } from './verify-lab.ts';
import { fleetSummary, formatFleetSummary, runOnTargets, targetList, type TargetOutcome } from './targets.ts';
import { join } from 'node:path';
import { withCompletion } from './completion.ts';
import { progressReporter } from './progress.ts';
import { COMMAND_NAMES, examples, topExamples } from './examples.ts';
import { runInOuterNamespace } from './outer-namespace.ts';
import { ownRuns, runWords, selectRun, stepsWords } from '../engine/select-run.ts';
import { leftUp } from '../engine/cleanup.ts';
import { callerOwner, ownerWords } from '../engine/owner.ts';
import { orderedOutput } from '../report/ordered-output.ts';
import { availableParallelism } from 'node:os';

interface Common extends TargetArgs {
  nodes: DriverKind;
  image?: string;
  json: boolean;
  rootNamespace?: boolean;
  iptables: IptablesBackend;
  pcap?: string;
}

function withDriver<T>(y: Argv<T>) {
  return withTarget(y)
    .option('nodes', {
      choices: ['netns', 'docker'] as const,
      default: 'netns' as const,
      describe: 'how container nodes are realised: network namespaces or Docker containers',
    })
    .option('image', {
      type: 'string',
      describe: 'Docker image for container nodes (default: nflab/lab, built locally)',
    })
    .option('iptables', {
      choices: IPTABLES_BACKENDS,
      default: 'nft' as IptablesBackend,
      describe:
        "the iptables backend the lab's iptables commands run: iptables-nft or iptables-legacy (whatever the machine's own `iptables` is)",
    });
}

/** The note for a user whose own `iptables` on that machine is not the backend the lab uses. */
async function backendNoteFor(exec: Executor, backend: IptablesBackend): Promise<string | undefined> {
  return backendNote(await machineBackend(exec), backend, exec.name);
}

/** --run ID: which of the caller's runs, when they have several of one lab up. */
function withRun<T>(y: Argv<T>) {
  return y.option('run', {
    type: 'string',
    describe: 'the run id (nflab status lists yours), when you have several runs of the lab up',
  });
}

function withRootNamespace<T>(y: Argv<T>) {
  return y.option('root-namespace', {
    type: 'boolean',
    default: false,
    describe:
      "on a VM only: the lab's host node is the machine's own root namespace, as in the articles (its iptables, sysctls and links are restored afterwards); default: everything in a sandbox",
  });
}

/** The executor for a command's --target (this machine unless told otherwise). */
function executor(args: TargetArgs = {}): Promise<Executor> {
  return connectTarget(args);
}

export async function main(argv: string[]): Promise<void> {
  try {
    const outside = runInOuterNamespace(argv);
    if (outside !== undefined) {
      process.exitCode = outside;
      return;
    }
  } catch (err) {
    process.stderr.write(`nflab: ${(err as Error).message}\n`);
    process.exitCode = exitCodeOf(err);
    return;
  }
  const parser = withCompletion(
    topExamples(
      withKubeProxyOption(yargs(argv).scriptName('nflab')).usage(
        '$0 <command> [options]\n\nScripted, verified container-networking labs.',
      ),
    ),
  )
    .command(
      'list',
      'list the labs',
      (y) =>
        examples('list', y.option('json', { type: 'boolean', default: false, describe: 'machine-readable output' })),
      async (a) => {
        const labs = await loadAllLabs();
        if (a.json)
          process.stdout.write(
            JSON.stringify(
              {
                labs: labs.map((l) => ({
                  id: l.id,
                  title: l.title,
                  summary: l.summary,
                  source: l.source,
                  steps: l.steps.length,
                  file: l.file,
                })),
              },
              null,
              2,
            ) + '\n',
          );
        else for (const l of labs) process.stdout.write(`${l.id}  ${l.title}\n    ${l.summary}\n`);
      },
    )
    .command(
      'run [labs..]',
      'run labs and check every expectation',
      (y) =>
        examples(
          'run',
          withRootNamespace(withDriver(y))
            .positional('labs', { type: 'string', array: true, describe: 'lab ids (01) or lab files (./my-lab.ts)' })
            .option('all', { type: 'boolean', default: false, describe: 'run every lab in labs/' })
            .option('json', { type: 'boolean', default: false, describe: 'print only the JSON report on stdout' })
            .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'show every command' })
            .option('junit', {
              type: 'string',
              describe:
                'also write a JUnit XML report (one test case per check) to this file (several targets: one file each, results.<target>.xml)',
            })
            .option('strict', {
              type: 'boolean',
              default: false,
              describe: 'a skipped lab (a kernel feature missing here) fails the run: exit 1',
            })
            .option('pcap', {
              type: 'string',
              describe:
                'also keep each capture as a pcap file in this directory, named <lab>-step<N>-<node>-<iface>.pcap (for Wireshark)',
            })
            .option('record', {
              type: 'string',
              describe:
                "keep the evidence in this file: the JSON report plus every step's raw observations (for --compare)",
            })
            .option('compare', {
              type: 'string',
              describe:
                'compare this run with a recorded one (--record, or a --json report), check by check; exit 1 when a verdict changed',
            })
            .option('target', {
              type: 'string',
              array: true,
              describe:
                "where commands run: ssh://user@host[:port], a Host of ~/.ssh/config (patterns: 'lab-*'), vagrant[:machine]; repeat it for several machines",
            })
            .option('target-file', {
              type: 'string',
              array: true,
              describe: 'a file of targets, one a line (ssh:// URLs or ssh_config hosts)',
            })
            .option('parallel-targets', {
              type: 'number',
              default: 4,
              describe: 'with several targets: how many run at once',
            })
            .option('report-dir', {
              type: 'string',
              describe: 'write <target>.json and <target>.junit.xml per target, and summary.json, here',
            })
            .option('jobs', {
              alias: 'j',
              type: 'number',
              default: availableParallelism(),
              defaultDescription: 'the number of CPUs',
              describe: 'labs to run at once on one target (each lab has its own sandbox; output stays in lab order)',
            }),
        ),
      async (a) => {
        const targets = await targetList(a);
        process.exitCode =
          targets.length > 1 || a.targetFile || a.reportDir
            ? await fleetRunCommand(targets, a.labs ?? [], a.all, a, a.verbose, a.parallelTargets, a.junit, a.reportDir)
            : await runCommand(a.labs ?? [], a.all, { ...a, target: targets[0] }, a.verbose, a.junit, {
                record: a.record,
                compare: a.compare,
                strict: a.strict,
                jobs: a.jobs,
              });
      },
    )
    .command(
      'show <lab>',
      'show a lab: its topology, steps and the exact commands a person types',
      (y) =>
        examples(
          'show',
          withRootNamespace(withDriver(y))
            .positional('lab', { type: 'string', demandOption: true })
            .option('json', { type: 'boolean', default: false }),
        ),
      async (a) => {
        const [lab] = await resolveLabs([a.lab]);
        if (a.json) {
          process.stdout.write(JSON.stringify(lab, null, 2) + '\n');
          return;
        }
        process.stdout.write(showLab(resolveLab(lab!, { driver: a.nodes, rootNamespace: a.rootNamespace })));
        // What the user types is `iptables`: say when that is not the backend nflab would run (this machine only: show connects nowhere).
        if (!a.target) {
          const note = await backendNoteFor(new LocalExecutor(), a.iptables);
          if (note) process.stdout.write(`\n${note}\n`);
        }
      },
    )
    .command(
      'up <lab>',
      'build a lab, apply its steps up to N, and leave it running for hands-on work',
      (y) =>
        examples(
          'up',
          withRootNamespace(withDriver(y))
            .positional('lab', { type: 'string', demandOption: true })
            .option('step', { type: 'number', default: 0, describe: 'apply steps 1..N (0: only the topology)' })
            .option('again', {
              type: 'boolean',
              default: false,
              describe: 'bring up another run of a lab you already have up (then name runs with --run ID)',
            })
            .option('json', { type: 'boolean', default: false }),
        ),
      async (a) => {
        process.exitCode = await upCommand(a.lab, a.step, a);
      },
    )
    .command(
      'shell <lab> [node]',
      'a shell on your running lab where the names nflab show prints work (ip netns exec c1 …, docker exec c1 …); with a node, a shell inside it',
      (y) =>
        examples(
          'shell',
          withRun(y)
            .positional('lab', { type: 'string', demandOption: true, describe: 'lab id (or run id)' })
            .positional('node', {
              type: 'string',
              describe: 'a node of the lab (c1, host, …): the shell runs inside it',
            }),
        ),
      async (a) => {
        const { shellCommand } = await import('./shell.ts');
        process.exitCode = await shellCommand({ lab: a.lab, node: a.node, run: a.run });
      },
    )
    .command(
      'exec <lab> <node> [argv..]',
      'run one command in a node of your running lab (for scripts): nflab exec 02 c1 -- ping -c 1 198.51.100.8; its exit status is passed through',
      (y) =>
        examples(
          'exec',
          withRun(y)
            .positional('lab', { type: 'string', demandOption: true, describe: 'lab id (or run id)' })
            .positional('node', { type: 'string', demandOption: true, describe: 'a node of the lab' })
            .positional('argv', { type: 'string', array: true, describe: 'the command, after --' })
            .parserConfiguration({ 'populate--': true, 'unknown-options-as-args': true }),
        ),
      async (a) => {
        const argv = [
          ...((a.argv as string[] | undefined) ?? []),
          ...((a as { '--'?: unknown[] })['--'] ?? []).map(String),
        ];
        if (argv.length === 0)
          throw new LabError('name the command to run after --: nflab exec <lab> <node> -- <command> [args…]');
        const { execCommand } = await import('./shell.ts');
        process.exitCode = await execCommand({ lab: a.lab, node: a.node, run: a.run, argv });
      },
    )
    .command(
      'status',
      "the labs that are up: lab, run id, steps applied, nodes, node mode, owner, age (yours; --all: everyone's)",
      (y) =>
        examples(
          'status',
          y
            .option('all', { type: 'boolean', default: false, describe: "every user's runs, not only yours" })
            .option('json', { type: 'boolean', default: false, describe: 'machine-readable output' }),
        ),
      async (a) => {
        const { statusCommand } = await import('./status.ts');
        process.exitCode = await statusCommand(a.all, a.json);
      },
    )
    .command(
      'solve <lab>',
      'apply the reference commands of the steps up to N on your running lab, in place',
      (y) =>
        examples(
          'solve',
          withRun(y)
            .positional('lab', { type: 'string', demandOption: true, describe: 'lab id (or run id)' })
            .option('step', {
              type: 'number',
              demandOption: true,
              describe: 'apply the steps after the last one applied, up to N',
            })
            .option('json', { type: 'boolean', default: false }),
        ),
      async (a) => {
        const { solveCommand } = await import('./solve.ts');
        process.exitCode = await solveCommand(a.lab, a.step, a.run, a.json);
      },
    )
    .command(
      'reset <lab>',
      'take your running lab back to its built topology (torn down and built again under the same run id)',
      (y) =>
        examples(
          'reset',
          withRun(y)
            .positional('lab', { type: 'string', demandOption: true, describe: 'lab id (or run id)' })
            .option('step', { type: 'number', default: 0, describe: 'then apply steps 1..N (0: the topology only)' }),
        ),
      async (a) => {
        const { resetCommand } = await import('./solve.ts');
        process.exitCode = await resetCommand(a.lab, a.step, a.run);
      },
    )
    .command(
      'down <lab>',
      'tear down your lab brought up with nflab up (by lab id or run id)',
      (y) => examples('down', withRun(withTarget(y)).positional('lab', { type: 'string', demandOption: true })),
      async (a) => {
        const exec = await executor(a);
        try {
          const journal = readJournal();
          reportDamaged(journal.damaged);
          // Only the caller's own run, on this target; several: --run ID (select-run.ts).
          const record = await selectRun({ lab: a.lab, run: a.run, target: exec.name, records: journal.records });
          await removeRun(exec, record);
          process.stdout.write(`lab ${record.labId} (run ${record.runId}) is down\n`);
        } finally {
          await exec.close();
        }
      },
    )
    .command(
      'clean',
      'remove everything left by nflab runs that were killed',
      (y) =>
        examples(
          'clean',
          withTarget(y).option('all', {
            type: 'boolean',
            default: false,
            describe: 'also tear down labs left up with nflab up',
          }),
        ),
      async (a) => {
        if (process.getuid?.() !== 0 && !a.target) {
          throw new EnvError(
            `nflab clean removes namespaces, containers and processes, which needs root, and you are uid ${process.getuid?.()}: nothing was cleaned`,
            'run it as root: sudo nflab clean',
          );
        }
        const exec = await executor(a);
        const journal = readJournal();
        // Only runs on this target: a record of a remote run names namespaces on that machine.
        const runs = deadRuns(a.all, journal.records).filter((r) => (r.target ?? 'this machine') === exec.name);
        // One run that cannot be removed must not keep the others from being cleaned.
        const failed: string[] = [];
        for (const r of runs) {
          try {
            const removed = await removeRun(exec, r);
            process.stdout.write(
              `run ${r.runId} (lab ${r.labId}): removed ${removed.length ? removed.join(', ') : 'nothing left'}\n`,
            );
          } catch (err) {
            failed.push(`run ${r.runId} (lab ${r.labId}): ${(err as Error).message}`);
          }
        }
        if (runs.length === 0) process.stdout.write('nothing to clean: no killed run left anything behind\n');
        // Labs left up on purpose are not residue: say which, and how to take them down.
        const up = a.all ? [] : journal.records.filter((r) => leftUp(r) && (r.target ?? 'this machine') === exec.name);
        if (up.length > 0) {
          const me = callerOwner();
          process.stdout.write(
            `still up (left up by nflab up; clean leaves them):\n${up.map((r) => `  ${runWords(r)}: ${r.owner?.uid === me.uid ? `nflab down ${r.labId} --run ${r.runId}` : `its owner's to take down (nflab down ${r.labId}), or nflab clean --all as root`}`).join('\n')}\n`,
          );
        }
        await exec.close();
        reportDamaged(journal.damaged);
        if (failed.length > 0 || journal.damaged.length > 0) {
          throw new EnvError(
            [...failed, ...journal.damaged.map((d) => `journal record ${d.file} ${d.problem}`)].join('\n  '),
            journal.damaged.length > 0
              ? 'look at the damaged records (the namespaces nfl-<run>-* they would name are listed by ip netns list), remove what is left by hand, then delete the files'
              : 'see the messages above, then run nflab clean again',
          );
        }
      },
    )
    .command(
      'image <action>',
      'the Docker image for container nodes, built locally (no registry needed)',
      (y) => examples('image', y.positional('action', { choices: ['build'] as const, demandOption: true })),
      async () => {
        const { connectDocker } = await import('../drivers/docker.ts');
        const { buildLabImage } = await import('../drivers/image.ts');
        const tag = await buildLabImage(await connectDocker(), (line) => process.stderr.write(`${line}\n`));
        process.stdout.write(`${tag}\n`);
      },
    )
    .command(
      'handout [labs..]',
      'write workshop handouts (md, html or pdf): topology diagram, commands per step, expectations, evidence from a run',
      (y) =>
        examples(
          'handout',
          y
            .positional('labs', { type: 'string', array: true, describe: 'lab ids (01) or lab files' })
            .option('all', { type: 'boolean', default: false, describe: 'every lab in labs/, with an index page' })
            .option('format', {
              choices: ['md', 'html', 'pdf'] as const,
              default: 'html' as const,
              describe:
                'md (with an .svg beside it), one self-contained html file, or pdf (printed by headless Chromium)',
            })
            .option('out', { type: 'string', demandOption: true, describe: 'directory to write into' })
            .option('nodes', {
              choices: ['netns', 'docker'] as const,
              describe: "show commands for namespaces or Docker containers (default: the evidence run's, else netns)",
            })
            .option('image', { type: 'string', describe: 'Docker image for container nodes, with --run' })
            .option('from-run', { type: 'string', describe: 'evidence from a saved `nflab run --json` output' })
            .option('run', {
              type: 'boolean',
              default: false,
              describe: 'run the labs first and use that run as evidence',
            })
            .option('edition', {
              choices: ['teacher', 'student'] as const,
              default: 'teacher' as const,
              describe:
                'teacher: the answer key (answers, expectations, evidence); student: a worksheet (questions, room to predict, the fix folded away, files named *.student.*)',
            }),
        ),
      async (a) => {
        const { handoutCommand } = await import('./handout.ts');
        process.exitCode = await handoutCommand({
          labs: a.labs ?? [],
          all: a.all,
          format: a.format,
          out: a.out,
          nodes: a.nodes,
          image: a.image,
          fromRun: a.fromRun,
          run: a.run,
          edition: a.edition,
        });
      },
    )
    .command(
      'export <lab>',
      'write a standalone bash script equivalent to the lab (build, steps, PASS/FAIL per check, teardown), for machines without Node',
      (y) =>
        examples(
          'export',
          y
            .positional('lab', { type: 'string', demandOption: true })
            .option('nodes', {
              choices: ['netns', 'docker'] as const,
              default: 'netns' as const,
              describe:
                'container nodes as namespaces, or Docker containers (docker run/exec; image from NFLAB_IMAGE, default nflab/lab)',
            })
            .option('format', {
              choices: ['bash', 'killercoda'] as const,
              default: 'bash' as const,
              describe:
                'bash: one standalone script; killercoda: a Killercoda scenario directory (index.json, step texts, a background script that builds the lab, a verify script per step) written to --out',
            })
            .option('out', {
              type: 'string',
              describe:
                'file to write (made executable); default: standard output. With --format killercoda: the scenario directory',
            }),
        ),
      async (a) => {
        const [lab] = await resolveLabs([a.lab]);
        if (a.format === 'killercoda') {
          const { writeKillercoda } = await import('../export/write-scenario.ts');
          if (!a.out) throw new LabError('--format killercoda writes a directory: name it with --out DIR');
          for (const f of writeKillercoda(lab!, a.out)) process.stdout.write(`${f}\n`);
          return;
        }
        const { exportBash } = await import('../export/bash.ts');
        const script = exportBash(lab!, { driver: a.nodes });
        if (!a.out) {
          process.stdout.write(script);
          return;
        }
        const { writeFileSync } = await import('node:fs');
        writeFileSync(a.out, script, { mode: 0o755 });
        process.stderr.write(`wrote ${a.out} (run it as root: sudo bash ${a.out})\n`);
      },
    )
    .command(
      'check <lab>',
      "check a lab brought up with nflab up against what step N expects, without applying step N's commands",
      (y) =>
        examples(
          'check',
          withRun(y)
            .positional('lab', {
              type: 'string',
              demandOption: true,
              describe: 'lab id (or the run id nflab up printed)',
            })
            .option('step', {
              type: 'number',
              demandOption: true,
              describe: 'the step whose traffic, observations and checks to run',
            })
            .option('json', { type: 'boolean', default: false, describe: 'print the step report as JSON' })
            .option('pcap', {
              type: 'string',
              describe: 'also keep each capture as a pcap file in this directory (for Wireshark)',
            }),
        ),
      async (a) => {
        const { checkCommand } = await import('./check.ts');
        process.exitCode = await checkCommand(a.lab, a.step, a.json, a.pcap, a.run);
      },
    )
    .command(
      'trace <lab>',
      "on a lab brought up with nflab up, trace packets through the hooks, tables and rules of its nodes: the ones you send (--filter, or -- <node> <command>), or step N's traffic (--step)",
      (y) =>
        examples(
          'trace',
          withRun(y)
            .positional('lab', {
              type: 'string',
              demandOption: true,
              describe: 'lab id (or the run id nflab up printed)',
            })
            .option('step', {
              type: 'number',
              describe: "send this step's scripted traffic (its commands are not applied) and judge its path checks",
            })
            .option('node', {
              type: 'string',
              describe: 'trace in this node only (default: every host and outside node)',
            })
            .option('filter', {
              type: 'string',
              describe: "which packets, in tcpdump's words: 'icmp and host 10.55.66.2', 'tcp and dst port 80'",
            })
            .option('count', {
              type: 'number',
              describe: `stop after this many packets (default ${20} when tracing what you send from another shell)`,
            })
            .option('seconds', { type: 'number', describe: 'stop after this many seconds (default 60)' })
            .option('pcap', {
              type: 'string',
              describe: "also keep each traced node's packets as a pcap file in this directory (for Wireshark)",
            })
            .option('json', { type: 'boolean', default: false, describe: 'print the traced paths as JSON' })
            .parserConfiguration({ 'populate--': true }),
        ),
      async (a) => {
        const { traceCommand } = await import('./trace.ts');
        const rest = (a as { '--'?: (string | number)[] })['--']?.map(String);
        process.exitCode = await traceCommand(
          a.lab,
          {
            step: a.step,
            node: a.node,
            filter: a.filter,
            count: a.count,
            seconds: a.seconds,
            command: rest && rest.length > 0 ? rest : undefined,
            json: a.json,
            pcap: a.pcap,
            run: a.run,
          },
          await executor(),
        );
      },
    )
    .command(kubeProxyCommand)
    .command((await import('./watch.ts')).watchModule)
    .command(
      'verify-lab [labs..]',
      "prove that each step's checks can fail: run each step with its commands left out and require a check not met",
      (y) => examples('verify-lab', withTarget(withVerifyOptions(y))),
      async (a) => {
        const exec = await executor(a);
        try {
          process.exitCode = await verifyLabsCommand(
            { labs: a.labs ?? [], all: a.all, json: a.json, parallel: a.parallel, ...(a.step ? { step: a.step } : {}) },
            exec,
          );
        } finally {
          await exec.close();
        }
      },
    )
    .demandCommand(1, `name a command: ${COMMAND_NAMES.join(', ')}`)
    .recommendCommands()
    .strict()
    .help()
    .alias('h', 'help')
    .fail((msg, err) => {
      throw err ?? new LabError(msg);
    });
  try {
    await parser.parseAsync();
  } catch (err) {
    const code = exitCodeOf(err);
    const message =
      err instanceof LabError || err instanceof EnvError ? err.message : ((err as Error).stack ?? String(err));
    process.stderr.write(`nflab: ${message}\n`);
    if (code === 2 && !(err instanceof LabError)) process.stderr.write('(see nflab --help)\n');
    // A program that asked for --json reads why there is no report from stdout too.
    if (process.argv.includes('--json'))
      process.stdout.write(JSON.stringify({ error: errorJson(err, code) }, null, 2) + '\n');
    process.exitCode = code;
  }
}

/** Damaged journal records, each named with what is wrong (on stderr: stdout lists what was removed). */
function reportDamaged(damaged: DamagedRecord[]): void {
  for (const d of damaged)
    process.stderr.write(`nflab: journal record ${d.file} ${d.problem}: skipped (left in place)\n`);
}

function errorJson(
  err: unknown,
  exitCode: number,
): { exitCode: number; kind: string; code: string; message: string; fix?: string } {
  const code = errorCode(err);
  if (err instanceof EnvError)
    return { exitCode, kind: 'environment', code, message: err.message.replace(/\n  fix: [\s\S]*$/, ''), fix: err.fix };
  if (err instanceof LabError) return { exitCode, kind: 'usage', code, message: err.message };
  return { exitCode, kind: 'internal', code, message: (err as Error).message ?? String(err) };
}

/** --root-namespace needs one host node per lab and namespaces for the rest: usage errors, before connecting. */
function checkRootNamespaceUse(labs: Lab[], opts: Common): void {
  if (!opts.rootNamespace) return;
  for (const lab of labs) rootNodeOf(lab);
  if (opts.nodes === 'docker')
    throw new LabError('--root-namespace runs container nodes as namespaces; leave out --nodes docker');
}

/** Docker mode never falls back silently: no engine is an environment error (exit 3) with the fix,
 * checked before anything is created. The lab image is built here, once, if it is missing. */
async function dockerPreflight(labs: Lab[], opts: Common, exec: Executor): Promise<void> {
  const usesDocker = labs.some((lab) =>
    Object.values(lab.topology.nodes).some((n) => n.role === 'container' && (n.driver ?? opts.nodes) === 'docker'),
  );
  if (!usesDocker) return;
  if (exec.name !== 'this machine') {
    throw new EnvError(
      `--nodes docker talks to this machine's Docker engine, not to ${exec.name}`,
      'run with --nodes netns on a remote target, or run nflab on that machine',
    );
  }
  const { connectDocker } = await import('../drivers/docker.ts');
  const docker = await connectDocker();
  if (opts.image === undefined) {
    const { ensureLabImage, imageLabTools, imageToolPackage } = await import('../drivers/image.ts');
    // The tools first: a lab the image cannot run is refused before the image is even built.
    const { assertImageHasTools } = await import('../drivers/image-tools.ts');
    const has = await imageLabTools();
    for (const lab of labs) assertImageHasTools(lab, opts.nodes, has, imageToolPackage);
    await ensureLabImage(docker, (line) => process.stderr.write(`${line}\n`));
  }
}

interface RunExtras {
  record?: string;
  compare?: string;
  strict?: boolean;
  jobs?: number;
}

async function runCommand(
  refs: string[],
  all: boolean,
  opts: Common,
  verbose: boolean,
  junit?: string,
  evidence: RunExtras = {},
): Promise<number> {
  if (!all && refs.length === 0) throw new LabError('name the labs to run (nflab run 01 02), a lab file, or --all');
  const jobs = evidence.jobs ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1) throw new LabError(`--jobs must be a whole number ≥ 1, got ${jobs}`);
  // A bad record file is a usage error before anything runs.
  const { readRecord } = await import('../report/record.ts');
  const baseline = evidence.compare === undefined ? undefined : readRecord(evidence.compare);
  const labs: Lab[] = all ? await loadAllLabs() : await resolveLabs(refs);
  checkRootNamespaceUse(labs, opts);
  assertJournalWritable();
  const exec = await executor(opts);
  try {
    await preflight(exec, labs, opts.iptables);
    await dockerPreflight(labs, opts, exec);
    if (verbose && !opts.json) {
      const note = await backendNoteFor(exec, opts.iptables);
      if (note) process.stdout.write(`${note}\n`);
    }
    return await runLabs(exec, labs, opts, verbose, junit, evidence, baseline);
  } finally {
    await exec.close();
  }
}

/** Runs the labs on one target, `jobs` at a time (each in its own sandbox, so they are independent;
 * the labs of a target's root namespace share it, so --root-namespace runs them one by one), until
 * interrupted. Each lab reports to its own `onEventOf(index)`; reports keep the lab order. */
async function runLabsOn(
  exec: Executor,
  labs: Lab[],
  opts: Common,
  onEventOf: (index: number) => ((event: RunEvent) => void) | undefined,
  aborted: () => boolean,
  keepObservations = false,
  jobs = 1,
): Promise<LabReport[]> {
  return mapLimit(labs, opts.rootNamespace ? 1 : jobs, async (lab, i) => {
    // After a signal: the labs it stopped in are `interrupted`, the ones not started were not run.
    if (aborted()) return notRun(lab, opts, exec);
    const { report } = await runLab(lab, {
      exec,
      driver: opts.nodes,
      image: opts.image,
      rootNamespace: opts.rootNamespace,
      iptables: opts.iptables,
      keepObservations,
      aborted,
      onEvent: onEventOf(i),
      ...(opts.pcap ? { pcapDir: opts.pcap } : {}),
    });
    return report;
  });
}

async function runLabs(
  exec: Executor,
  labs: Lab[],
  opts: Common,
  verbose: boolean,
  junit: string | undefined,
  evidence: RunExtras,
  baseline?: RunRecordFile,
): Promise<number> {
  const stream = opts.json ? (process.stderr.isTTY ? process.stderr : undefined) : process.stdout;
  // Labs that run at once print as if one ran after another: each lab's lines together, in lab order.
  const output = stream ? orderedOutput(stream, labs.length) : undefined;
  const progress = withProgress();
  const stop = interruptions(() => {
    progress.stop();
    killLiveChildren();
  });
  let reports: LabReport[];
  try {
    const onEventOf = (i: number) => {
      const report = output ? terminalReporter(output.sink(i), verbose) : undefined;
      return (e: RunEvent) => {
        progress(e);
        report?.(e);
        if (e.type === 'lab-end') output?.done(i);
      };
    };
    reports = await runLabsOn(exec, labs, opts, onEventOf, stop.signal, evidence.record !== undefined, evidence.jobs);
  } finally {
    output?.flush();
    progress.stop();
    stop.release();
  }
  const { withoutObservations, writeRecord, RECORD_FORMAT } = await import('../report/record.ts');
  const shown = withoutObservations(reports);
  if (evidence.record) writeRecord(evidence.record, reports, exec.name, opts.iptables);
  let changed = 0;
  let comparison: Comparison | undefined;
  if (baseline) {
    const { compareRuns, verdictsChanged } = await import('../report/compare.ts');
    comparison = compareRuns(baseline, {
      format: RECORD_FORMAT,
      recordedAt: '',
      target: exec.name,
      kernel: reports.find((r) => r.kernel)?.kernel,
      iptables: opts.iptables,
      labs: shown,
    });
    changed = verdictsChanged(comparison);
  }
  if (opts.json)
    process.stdout.write(JSON.stringify({ labs: shown, ...(comparison ? { comparison } : {}) }, null, 2) + '\n');
  else {
    summary(shown, process.stdout);
    if (comparison) process.stdout.write(`\n${(await import('../report/compare.ts')).formatComparison(comparison)}`);
  }
  if (junit) writeFileSync(junit, toJunit({ labs: shown }));
  if (stop.signal()) return stop.exitCode();
  const code = runExitCode(reports, evidence.strict);
  return code === 0 && changed > 0 ? 1 : code;
}

/** 3 when a lab could not be built or run (status error), else 1 when a check was not met (or, with
 * --strict, a lab was skipped), else 0. */
export function runExitCode(reports: LabReport[], strict = false): number {
  if (reports.some((r) => r.status === 'error')) return 3;
  if (reports.some((r) => r.status === 'failed')) return 1;
  return strict && reports.some((r) => r.status === 'skipped') ? 1 : 0;
}

/** The terminal report (if any) with progress on stderr beside it: the spinner is cleared first. */
function withProgress(report?: (e: RunEvent) => void): ((e: RunEvent) => void) & { stop: () => void } {
  const progress = progressReporter();
  return Object.assign(
    (e: RunEvent) => {
      progress.onEvent(e);
      report?.(e);
    },
    { stop: progress.stop },
  );
}

function notRun(lab: Lab, opts: Common, exec: Executor): LabReport {
  return {
    id: lab.id,
    title: lab.title,
    status: 'not-run',
    reason: 'not run: an earlier lab was interrupted',
    driver: opts.nodes,
    target: exec.name,
    runId: '',
    startedAt: new Date().toISOString(),
    durationMs: 0,
    steps: [],
  };
}

/** nflab run on several targets at once: a report (and JUnit file) per target, then a summary across them. */
async function fleetRunCommand(
  targets: string[],
  refs: string[],
  all: boolean,
  opts: Common,
  verbose: boolean,
  parallel: number,
  junit?: string,
  reportDir?: string,
): Promise<number> {
  if (!all && refs.length === 0) throw new LabError('name the labs to run (nflab run 01 02), a lab file, or --all');
  if (targets.length === 0) throw new LabError('no targets: the --target-file lists none');
  if (!Number.isInteger(parallel) || parallel < 1)
    throw new LabError('--parallel-targets must be a whole number of at least 1');
  const labs: Lab[] = all ? await loadAllLabs() : await resolveLabs(refs);
  checkRootNamespaceUse(labs, opts);
  const progress = opts.json ? (process.stderr.isTTY ? process.stderr : undefined) : process.stdout;
  const stop = interruptions(killLiveChildren);
  let outcomes: TargetOutcome[];
  try {
    outcomes = await runOnTargets(targets, opts, {
      parallel,
      junit,
      reportDir,
      progress,
      exitCodeOf: runExitCode,
      runOn: async (exec, out) => {
        await preflight(exec, labs);
        await dockerPreflight(labs, opts, exec);
        return runLabsOn(exec, labs, opts, () => (out ? terminalReporter(out, verbose) : undefined), stop.signal);
      },
    });
  } finally {
    stop.release();
  }
  const summaryOfFleet = fleetSummary(outcomes);
  if (reportDir) writeFileSync(join(reportDir, 'summary.json'), JSON.stringify(summaryOfFleet, null, 2) + '\n');
  if (opts.json) process.stdout.write(JSON.stringify({ targets: outcomes, summary: summaryOfFleet }, null, 2) + '\n');
  else process.stdout.write(formatFleetSummary(outcomes));
  if (stop.signal()) return stop.exitCode();
  return summaryOfFleet.exitCode;
}

async function upCommand(ref: string, step: number, opts: Common & { again?: boolean }): Promise<number> {
  const [lab] = await resolveLabs([ref]);
  assertStep(lab!, step, 0);

  checkRootNamespaceUse([lab!], opts);
  assertJournalWritable();
  const exec = await executor(opts);
  // One run of a lab per user unless asked: a second copy would make every later command ambiguous.
  const already = ownRuns(readJournal().records, callerOwner(), exec.name).filter((r) => r.labId === lab!.id);
  if (already.length > 0 && !opts.again) {
    await exec.close();
    throw new LabError(
      `you (${ownerWords(callerOwner())}) already have lab ${lab!.id} up: ${already.map((r) => runWords(r)).join('; ')}; use it (nflab shell ${lab!.id}), take it down (nflab down ${lab!.id}), or bring up another with --again`,
    );
  }
  await preflight(exec, [lab!], opts.iptables);
  await dockerPreflight([lab!], opts, exec);
  const stop = interruptions(killLiveChildren);
  try {
    const onEvent = withProgress(opts.json ? undefined : terminalReporter(process.stdout));
    const { report, kept } = await runLab(lab!, {
      exec,
      driver: opts.nodes,
      image: opts.image,
      rootNamespace: opts.rootNamespace,
      iptables: opts.iptables,
      keepAfterStep: step,
      aborted: stop.signal,
      onEvent,
    }).finally(onEvent.stop);
    if (opts.json) process.stdout.write(JSON.stringify({ labs: [report], runId: report.runId }, null, 2) + '\n');
    if (!kept) return stop.signal() ? stop.exitCode() : runExitCode([report]) || 1;
    if (!opts.json) {
      process.stdout.write(
        upNext(
          lab!,
          kept.record.runId,
          step,
          already.length > 0,
          (node) => kept.sandbox.driverOf(node).enterHint(node),
          (node) => kept.sandbox.driverOf(node).display(node, ['…']).replace(/'…'/, '…'),
        ),
      );
      const note = await backendNoteFor(exec, opts.iptables);
      if (note) process.stdout.write(`${note}\n`);
      process.stdout.write(
        `When done: nflab down ${lab!.id}${already.length > 0 ? ` --run ${kept.record.runId}` : ''}${exec.name === 'this machine' ? '' : ` --target ${exec.name}`}\n`,
      );
    }
    return runExitCode([report]);
  } finally {
    stop.release();
    await exec.close();
  }
}

/** What `up` prints once the lab is up: how to get the shell where the printed names work, and
 * what comes next (the next step's title and the command that checks it). */
export function upNext(
  lab: Lab,
  runId: string,
  step: number,
  more: boolean,
  rawHint: (node: string) => string,
  printed: (node: string) => string,
): string {
  const run = more ? ` --run ${runId}` : '';
  const forms = [
    ...new Set(Object.keys(lab.topology.nodes).map((n) => printed(n).replace(new RegExp(`\\b${n}\\b`), '<node>'))),
  ].join(', ');
  const lines = [
    '',
    `lab ${lab.id} is up (run ${runId}, ${stepsWords(step)}).`,
    '',
    `A shell where the commands of nflab show ${lab.id} work as printed (${forms}):`,
    `  nflab shell ${lab.id}${run}`,
    'or a shell inside one node:',
  ];
  for (const node of Object.keys(lab.topology.nodes))
    lines.push(`  nflab shell ${lab.id} ${node}${run}`.padEnd(28) + `   (outside nflab: ${rawHint(node)})`);
  if (step < lab.steps.length) {
    lines.push(
      '',
      `Next: step ${step + 1}: ${lab.steps[step]!.title}`,
      `  type its commands (nflab show ${lab.id}), then: nflab check ${lab.id} --step ${step + 1}${run}`,
      `  (or let nflab type them: nflab solve ${lab.id} --step ${step + 1}${run})`,
    );
  } else
    lines.push(
      '',
      `Every step of lab ${lab.id} is applied; nflab reset ${lab.id}${run} goes back to the built topology.`,
    );
  return `${lines.join('\n')}\n`;
}
