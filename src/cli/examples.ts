// Examples for `nflab --help` and each command's --help, and the one list of command names that
// every message naming the commands uses.
import type { Argv } from 'yargs';

export const COMMAND_NAMES = [
  'list',
  'run',
  'show',
  'up',
  'shell',
  'exec',
  'status',
  'check',
  'watch',
  'trace',
  'solve',
  'reset',
  'down',
  'clean',
  'export',
  'handout',
  'image',
  'verify-lab',
  'kube-proxy',
  'completion',
] as const;

const EXAMPLES: Record<string, Array<[string, string]>> = {
  list: [['$0 list', 'the labs, with a line on what each shows']],
  run: [
    ['$0 run 01', 'run lab 01: build, every step, every check, tear down'],
    ['$0 run 01 -v', 'the same, showing every command'],
    ['$0 run --all --json --junit out.xml', 'every lab; the JSON report on stdout, JUnit for CI'],
    ['$0 run --all --strict', 'a lab skipped here (no ip_vs, say) fails the run'],
  ],
  show: [
    ['$0 show 02', 'the topology, steps and commands of lab 02'],
    ['$0 show 02 --nodes docker', 'the same commands as docker exec'],
  ],
  up: [
    ['$0 up 02 --step 3', 'build lab 02, apply steps 1-3, leave it running'],
    ['$0 up 02 --again', 'a second run of lab 02 beside the one you have'],
  ],
  shell: [
    ['$0 shell 02', 'a shell where ip netns exec c1 … (and docker exec c1 …) work as nflab show prints them'],
    ['$0 shell 02 c1', 'a shell inside node c1'],
  ],
  exec: [
    ['$0 exec 02 c1 -- ping -c 1 198.51.100.8', "one command in node c1 of your lab 02; its exit status is nflab's"],
  ],
  status: [
    ['$0 status', 'your labs that are up: run id, steps applied, nodes, age'],
    ['$0 status --all --json', "every user's, machine-readable"],
  ],
  solve: [['$0 solve 02 --step 4', 'apply the reference commands of the steps up to 4 on your running lab 02']],
  reset: [
    ['$0 reset 02', 'lab 02 back to its built topology (torn down and built again, same run id)'],
    ['$0 reset 02 --step 3', 'back to steps 1..3'],
  ],
  check: [['$0 check 02 --step 4', 'typed step 4 by hand? see which checks are met']],
  watch: [['$0 watch 02 --step 4', "type step 4's commands in another shell; this ends when they work"]],
  trace: [
    [
      '$0 trace 02 -- c1 ping -c 2 198.51.100.8',
      'run ping in c1 and trace what it sends, hop by hop, with NAT rewrites',
    ],
    [
      "$0 trace 02 --node host --filter 'icmp and host 10.55.66.2'",
      'trace what you send from another shell (20 packets, 60 s or Ctrl-C)',
    ],
    ['$0 trace 02 --step 4', 'each packet of step 4 through hooks, tables and rules'],
  ],
  down: [
    ['$0 down 02', 'tear down your lab 02 (brought up with nflab up)'],
    ['$0 down 02 --run abc123', 'one of several runs of it'],
  ],
  clean: [
    ['$0 clean', 'remove what killed runs left behind'],
    ['$0 clean --all', 'also labs left up'],
  ],
  export: [
    ['$0 export 02 > lab02.sh', 'a standalone bash script of lab 02'],
    ['$0 export 02 --format killercoda --out lab02/', 'a Killercoda scenario of lab 02'],
  ],
  handout: [
    ['$0 handout 02 --format html --out out/ --run', 'a page with the evidence of a run'],
    ['$0 handout --all --format pdf --out out/', 'every lab as PDF'],
    ['$0 handout 02 --edition student --format pdf --out out/', 'the student worksheet: questions, no answers'],
  ],
  image: [['$0 image build', 'build the Docker image for --nodes docker']],
  'verify-lab': [
    ['$0 verify-lab 03', 'each step of lab 03 without its commands must leave a check not met'],
    ['$0 verify-lab --all --json', 'every lab, machine-readable'],
  ],
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
    .epilogue(
      `Commands: ${COMMAND_NAMES.join(', ')}. Exit codes: 0 met, 1 a check not met, 2 bad usage, 3 this machine cannot run it (with the fix).`,
    );
}
