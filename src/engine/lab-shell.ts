// `nflab shell` and `nflab exec`: a shell (or one command) in which the names `nflab show` and the
// handouts print are the names of this run's nodes, so `ip netns exec c1 …` and `docker exec c1 …`
// work character for character.
//
// How: the shell runs in a mount namespace of its own (unshare -m, propagation slave: mounts made
// outside still reach it, none of its own leave it). There a small tmpfs is mounted on nflab's
// empty staging directory (<runtime>/shell), and in it
//   netns/c1 … a bind mount of /run/netns/nfl-<run>-c1 …, the whole directory then bind-mounted
//              over /run/netns: `ip netns` sees this run's nodes under the lab's names and no
//              other run (other users' labs stay invisible here, and nothing changes for them);
//   bin/docker a wrapper first on PATH that maps a lab node name (c1) to this run's container
//              (nfl-<run>-c1) where docker takes a container, and passes everything else through;
//   rc         the shell's rc file: the user's own bashrc, then a prompt naming the lab (and node).
// Nothing is created outside that mount namespace, and it ends with the shell's last process.
// nflab typed in the shell runs in the mount namespace the shell was started from (outer-namespace.ts).
import { join } from 'node:path';
import { quoteWord, shellQuote } from '../exec/quote.ts';
import { RUNTIME_DIR } from './journal.ts';

export const SHELL_STAGE_DIR = join(RUNTIME_DIR, 'shell');
/** Set in the shell's environment: the nflab process (pid:starttime) whose mount namespace is the outer one. */
export const OUTER_ENV = 'NFLAB_SHELL_OUTER';

export interface ShellNode {
  /** The lab's name for the node (c1). */
  name: string;
  realisation: 'netns' | 'docker' | 'root';
  /** The run's namespace (nfl-<run>-c1) or container (nfl-<run>-c1). */
  real: string;
}

export interface LabShellSpec {
  labId: string;
  runId: string;
  nodes: ShellNode[];
  /** Run inside this node (nflab shell 02 c1, nflab exec 02 c1 -- …). */
  node?: string;
  /** nflab exec: this command instead of an interactive shell. */
  argv?: string[];
  /** Whether stdin is a terminal (docker exec -t). */
  tty: boolean;
  stage?: string;
}

/** The prompt: `(nflab 02) root@box:~# `, inside a node `(nflab 02 c1) …`. */
export function promptOf(labId: string, node?: string): string {
  return `(nflab ${labId}${node ? ` ${node}` : ''}) \\u@\\h:\\w\\$ `;
}

/** The docker wrapper: which argument of each docker command is a container. */
export function dockerWrapper(spec: LabShellSpec): string {
  const containers = spec.nodes.filter((n) => n.realisation === 'docker');
  return `# nflab shell, lab ${spec.labId} (run ${spec.runId}): the lab's node names stand for this run's containers
${containers.map((c) => `#   ${c.name} -> ${c.real}`).join('\n')}
# docker exec c1 …, inspect, logs, top, cp c1:/path … work as the handouts print them; every other
# name and command reaches the real docker unchanged.
declare -A nodes=(${containers.map((c) => `[${quoteWord(c.name)}]=${quoteWord(c.real)}`).join(' ')})
args=("$@"); n=\${#args[@]}; i=0
mapped() { if [[ -n "\${nodes[$1]+set}" ]]; then printf '%s' "\${nodes[$1]}"; else printf '%s' "$1"; fi; }
while (( i < n )) && [[ \${args[i]} == -* ]]; do
  case \${args[i]} in -H|--host|-c|--context|--config|-l|--log-level|--tlscacert|--tlscert|--tlskey) i=$((i + 2)) ;; *) i=$((i + 1)) ;; esac
done
sub=\${args[i]:-}; i=$((i + 1))
if [[ $sub == container ]]; then sub=\${args[i]:-}; i=$((i + 1)); fi
case $sub in
  exec|attach|logs|top|port|diff|export|commit|rename|update) mode=first ;;
  inspect|kill|pause|unpause|restart|stop|start|stats|wait) mode=all ;;
  cp) mode=cp ;;
  *) mode=none ;;
esac
while [[ $mode != none ]] && (( i < n )); do
  a=\${args[i]}
  case $a in
    -e|--env|--env-file|-u|--user|-w|--workdir|--detach-keys|-n|--tail|--since|--until|-f|--format|--type|-s|--signal|-t|--time) i=$((i + 2)); continue ;;
    --) i=$((i + 1)); continue ;;
    -*) i=$((i + 1)); continue ;;
  esac
  if [[ $mode == cp ]]; then
    if [[ $a == *:* && -n "\${nodes[\${a%%:*}]+set}" ]]; then args[i]="\${nodes[\${a%%:*}]}:\${a#*:}"; fi
  else
    args[i]=$(mapped "$a")
    [[ $mode == first ]] && break
  fi
  i=$((i + 1))
done
exec "$real" "\${args[@]}"
`;
}

function rcFile(spec: LabShellSpec, stage: string): string {
  const netns = spec.nodes.filter((n) => n.realisation === 'netns').map((n) => n.name);
  const docker = spec.nodes.filter((n) => n.realisation === 'docker').map((n) => n.name);
  const root = spec.nodes.filter((n) => n.realisation === 'root').map((n) => n.name);
  const lines = [
    `lab ${spec.labId} (run ${spec.runId})${spec.node ? `, inside node ${spec.node}` : ''}: the names nflab show prints work here`,
    ...(netns.length ? [`  ip netns exec ${netns.join('|')} …`] : []),
    ...(docker.length
      ? [
          `  docker exec ${docker.join('|')} …   (docker here is nflab's wrapper: ${docker.map((d) => `${d} = ${spec.nodes.find((n) => n.name === d)!.real}`).join(', ')})`,
        ]
      : []),
    ...(root.length
      ? [`  ${root.join(', ')}: this machine's own root namespace (type commands without a prefix)`]
      : []),
    '  nflab check, trace, down … work here too; exit (or Ctrl-D) leaves',
  ];
  return [
    "# nflab shell: the user's own start-up files, then the lab's prompt and PATH",
    '[ -f /etc/bash.bashrc ] && . /etc/bash.bashrc',
    '[ -f ~/.bashrc ] && . ~/.bashrc',
    `PS1=${quoteWord(promptOf(spec.labId, spec.node))}`,
    `PATH=${quoteWord(join(stage, 'bin'))}:"$PATH"`,
    // On stderr, as bash's prompts: `nflab shell 02 <<EOF` keeps a clean stdout.
    ...lines.map((l) => `printf '%s\\n' ${quoteWord(l)} >&2`),
    '',
  ].join('\n');
}

/** The argv that starts the shell (or runs the command): unshare → set-up → exec. */
export function labShellArgv(spec: LabShellSpec): string[] {
  const stage = spec.stage ?? SHELL_STAGE_DIR;
  const netns = spec.nodes.filter((n) => n.realisation === 'netns');
  const inside = spec.node === undefined ? undefined : spec.nodes.find((n) => n.name === spec.node);
  if (spec.node !== undefined && !inside) throw new Error(`no node ${spec.node} in the shell's nodes`);
  const s = quoteWord(stage);
  const heredoc = (file: string, text: string) =>
    `cat >${s}/${file} <<'NFLAB_EOF'\n${text}${text.endsWith('\n') ? '' : '\n'}NFLAB_EOF`;
  const setup = [
    'set -e',
    `mount -t tmpfs -o mode=0755,size=4m nflab-shell ${s}`,
    `mkdir ${s}/netns ${s}/bin`,
    ...netns.flatMap((n) => [
      `touch ${s}/netns/${quoteWord(n.name)}`,
      `mount --bind ${quoteWord(`/run/netns/${n.real}`)} ${s}/netns/${quoteWord(n.name)}`,
    ]),
    // Over /run/netns only when the run has namespaces there (a Docker-only lab may have none).
    ...(netns.length ? [`mount --rbind ${s}/netns /run/netns`] : []),
    `printf '#!/bin/bash\\nreal=%q\\n' "$(command -v docker || echo docker)" >${s}/bin/docker`,
    `cat >>${s}/bin/docker <<'NFLAB_EOF'\n${dockerWrapper(spec)}NFLAB_EOF`,
    `chmod 0755 ${s}/bin/docker`,
    heredoc('rc', rcFile(spec, stage)),
    'set +e',
    `export NFLAB_SHELL_LAB=${quoteWord(spec.labId)} NFLAB_SHELL_RUN=${quoteWord(spec.runId)}${spec.node ? ` NFLAB_SHELL_NODE=${quoteWord(spec.node)}` : ''}`,
    `export PATH=${s}/bin:"$PATH"`,
  ];
  const interactive = ['bash', '--rcfile', `${stage}/rc`, '-i'];
  let final: string;
  if (!inside || inside.realisation === 'root') {
    final = spec.argv ? `exec "$@"` : `exec ${shellQuote(interactive)}`;
  } else if (inside.realisation === 'netns') {
    final = `exec ip netns exec ${quoteWord(inside.name)} ${spec.argv ? '"$@"' : shellQuote(interactive)}`;
  } else {
    // Inside a container: its own shell (bash if the image has one, else sh) with the lab's prompt.
    const flags = spec.tty ? '-it' : '-i';
    final = spec.argv
      ? `exec ${s}/bin/docker exec ${flags} ${quoteWord(inside.name)} "$@"`
      : `exec ${s}/bin/docker exec ${flags} -e PS1=${quoteWord(`(nflab ${spec.labId} ${inside.name}) \\w # `)} ${quoteWord(inside.name)} sh -c ${quoteWord('if command -v bash >/dev/null; then exec bash --norc -i; else exec sh -i; fi')}`;
  }
  return [
    'unshare',
    '--mount',
    '--propagation',
    'slave',
    '--',
    'bash',
    '-c',
    [...setup, final].join('\n'),
    'nflab-shell',
    ...(spec.argv ?? []),
  ];
}
