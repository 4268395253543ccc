// Examples for `nflab --help` and each command's --help, and the one list of command names that
// every message naming the commands uses.
import type { Argv } from 'yargs';

export const COMMAND_NAMES = ['list', 'run', 'show', 'up', 'check', 'watch', 'trace', 'down', 'clean', 'export', 'handout', 'image', 'verify-lab', 'kube-proxy', 'completion'] as const;

const EXAMPLES: Record<string, Array<[string, string]>> = {
  list: [['$0 list', 'the labs, with a line on what each shows']],
  run: [
    ['$0 run 01', 'run lab 01: build, every step, every check, tear down'],
    ['$0 run 01 -v', 'the same, showing every command'],
    ['$0 run --all --json --junit out.xml', 'every lab; the JSON report on stdout, JUnit for CI'],
    ['$0 run --all --strict', 'a lab skipped here (no ip_vs, say) fails the run'],
  ],
  show: [['$0 show 02', 'the topology, steps and commands of lab 02'], ['$0 show 02 --nodes docker', 'the same commands as docker exec']],
  up: [['$0 up 02 --step 3', 'build lab 02, apply steps 1-3, leave it running']],
  check: [['$0 check 02 --step 4', 'typed step 4 by hand? see which checks are met']],
  watch: [['$0 watch 02 --step 4', 'type step 4\'s commands in another shell; this ends when they work']],
  trace: [['$0 trace 02 --step 4', 'each packet of step 4 through hooks, tables and rules']],
  down: [['$0 down 02', 'tear down lab 02 (brought up with nflab up)']],
  clean: [['$0 clean', 'remove what killed runs left behind'], ['$0 clean --all', 'also labs left up']],
  export: [['$0 export 02 > lab02.sh', 'a standalone bash script of lab 02']],
  handout: [['$0 handout 02 --format html --out out/ --run', 'a page with the evidence of a run'], ['$0 handout --all --format pdf --out out/', 'every lab as PDF']],
  image: [['$0 image build', 'build the Docker image for --nodes docker']],
  'verify-lab': [['$0 verify-lab 03', 'each step of lab 03 without its commands must leave a check not met'], ['$0 verify-lab --all --json', 'every lab, machine-readable']],
};

export function examples<T>(command: string, y: Argv<T>): Argv<T> {
  for (const [cmd, what] of EXAMPLES[command] ?? []) y.example(cmd, what);
  return y;
}

export function topExamples<T>(y: Argv<T>): Argv<T> {
  return y
    .example('$0 run 01', 'your first lab: build, check, tear down')
    .example('$0 show 01', 'what lab 01 builds and the commands it types')
    .example('$0 up 01 --step 1', 'leave lab 01 running after step 1, to explore by hand')
    .example('$0 completion >> ~/.bashrc', 'shell completion for commands, options and lab ids')
    .epilogue(`Commands: ${COMMAND_NAMES.join(', ')}. Exit codes: 0 met, 1 a check not met, 2 bad usage, 3 this machine cannot run it (with the fix).`);
}
