// What keeps a lab's commands inside the lab's own namespaces. A network namespace isolates links,
// routes, firewall rules and net.* sysctls, but not the filesystem, other sysctls or other
// namespaces: `sysctl -w kernel.x`, `tee /etc/x`, `ip link set eth0 netns 1` (PID 1's namespace is
// the root one) or `ip -batch <file>` would reach the machine itself. Validation rejects them.

/** Files a lab may read or write: the node's own network state. */
const NET_FILES = /^\/(proc\/sys\/net|proc\/net|sys\/class\/net|sys\/devices\/virtual\/net)\/[A-Za-z0-9_.:@+\/-]+$/;

/** `net.ipv4.ip_forward` or `net/ipv4/ip_forward`: only net.* sysctls are private to a namespace. */
export function sysctlKeyProblem(key: string): string | undefined {
  if (!/^net[./][A-Za-z0-9_.\-/:@]+$/.test(key)) {
    return `sysctl ${JSON.stringify(key)} is not a net.* sysctl (only those are private to the lab's namespaces)`;
  }
  // `net/../kernel/x` is a path out of net.*; no sysctl name has two dots in a row.
  if (key.includes('..')) return `sysctl ${JSON.stringify(key)} leaves net.*`;
  return undefined;
}

/** ip options and words that reach another namespace or read a file of the machine. */
const IP_OPTIONS = new Set(['-n', '-netns', '--netns', '-a', '-all', '--all', '-b', '-batch', '--batch', '-force']);
const IP_WORDS = new Set(['netns', 'link-netns', 'link-netnsid', 'netnsid']);
/** sysctl options that load settings from files (every kind of sysctl, not only net.*). */
const SYSCTL_FILE_OPTIONS = /^(-p|--load|--system|-f)(=|$)|^-[a-zA-Z]*p/;

/** Problems with one command's words, or an empty list. `argv[0]` is already an allowed command. */
export function commandScopeProblems(argv: readonly string[]): string[] {
  const [program, ...args] = argv;
  const problems: string[] = [];
  switch (program) {
    case 'ip':
    case 'bridge': {
      const bad = args.filter((w) => IP_OPTIONS.has(w) || IP_WORDS.has(w));
      if (bad.length > 0)
        problems.push(
          `${program} ${bad.map((w) => JSON.stringify(w)).join(', ')} would reach beyond the node's namespace`,
        );
      break;
    }
    case 'sysctl':
      for (const word of args) {
        if (word.startsWith('-')) {
          if (SYSCTL_FILE_OPTIONS.test(word))
            problems.push(`sysctl option ${JSON.stringify(word)} loads settings from a file of the machine`);
          continue;
        }
        const problem = sysctlKeyProblem(word.split('=')[0]!);
        if (problem) problems.push(problem);
      }
      break;
    case 'tee':
    case 'cat':
      for (const word of args) {
        if (program === 'tee' && (word === '-a' || word === '--append')) continue;
        if (!NET_FILES.test(word) || word.split('/').includes('..')) {
          problems.push(
            `${program} ${JSON.stringify(word)}: a lab reads and writes only its node's network files (/proc/sys/net, /proc/net, /sys/class/net)`,
          );
        }
      }
      if (args.filter((w) => !w.startsWith('-')).length === 0) problems.push(`${program} needs a file`);
      break;
  }
  return problems;
}
