// One rule as iptables-save (1.8.9, nf_tables) prints it back, whatever order its words were
// written in: the basic matches first (-s, -d, -i, -o, -p; a bare address gets /32), then each
// `-m` match in the order given with its options in the order the extension prints them, then the
// target in its saved spelling. kube-proxy ≥ v1.2x writes `-m comment … -m tcp -p tcp -d IP --dport`,
// so its restore input and iptables-save differ in every service rule.

import { savedProbability } from './numbers.ts';

const BASICS = ['-s', '-d', '-i', '-o', '-p'] as const;
type Basic = (typeof BASICS)[number];

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** `-m recent` prints its command, then --seconds/--reap, then --name, --mask and --rsource. */
function savedRecent(opts: string[]): string[] {
  const take = (flag: string, withValue: boolean): string[] => {
    const i = opts.indexOf(flag);
    if (i < 0) return [];
    return withValue ? [flag, opts[i + 1] as string] : [flag];
  };
  const command = ['--set', '--rcheck', '--update', '--remove'].flatMap((f) => take(f, false));
  const name = take('--name', true);
  const mask = take('--mask', true);
  return [
    ...command,
    ...take('--seconds', true),
    ...take('--reap', false),
    ...take('--hitcount', true),
    ...(name.length ? name : ['--name', 'DEFAULT']),
    ...(mask.length ? mask : ['--mask', '255.255.255.255']),
    '--rsource',
  ];
}

function savedMatch(name: string, opts: string[]): string[] {
  if (name === 'recent') return savedRecent(opts);
  if (name === 'statistic') {
    const out = [...opts];
    const i = out.indexOf('--probability');
    if (i >= 0) out[i + 1] = savedProbability(Number(out[i + 1]));
    return out;
  }
  return opts;
}

function savedTarget(target: string[]): string[] {
  const [, name, ...rest] = target;
  if (name === 'MARK' && (rest[0] === '--or-mark' || rest[0] === '--xor-mark') && rest[1] !== undefined) {
    const v = Number(rest[1]);
    return ['-j', 'MARK', '--set-xmark', `${hex(v)}/${rest[0] === '--or-mark' ? hex(v) : '0x0'}`];
  }
  if (name === 'REJECT' && !rest.includes('--reject-with'))
    return ['-j', 'REJECT', ...rest, '--reject-with', 'icmp-port-unreachable'];
  return target;
}

export function savedWordOrder(args: string[]): string[] {
  const basics = new Map<Basic, string[]>();
  const matches: { name: string; opts: string[] }[] = [];
  let target: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const word = args[i] as string;
    const negated = word === '!';
    const flag = negated ? (args[i + 1] as string) : word;
    if ((BASICS as readonly string[]).includes(flag)) {
      let value = args[i + (negated ? 2 : 1)] as string;
      if ((flag === '-s' || flag === '-d') && !value.includes('/')) value = `${value}/32`;
      basics.set(flag as Basic, [...(negated ? ['!'] : []), flag, value]);
      i += negated ? 2 : 1;
    } else if (word === '-m') {
      matches.push({ name: args[i + 1] as string, opts: [] });
      i++;
    } else if (word === '-j') {
      target = args.slice(i);
      break;
    } else {
      const current = matches[matches.length - 1];
      if (current) current.opts.push(word);
    }
  }
  return [
    ...BASICS.flatMap((b) => basics.get(b) ?? []),
    ...matches.flatMap((m) => ['-m', m.name, ...savedMatch(m.name, m.opts)]),
    ...(target.length ? savedTarget(target) : []),
  ];
}
