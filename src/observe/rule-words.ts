// Words of an iptables rule as iptables-save renders them: which options it moves to the front,
// which take mark values, and how MARK shorthands are saved. Shared by the counter matcher
// (parse-iptables-save.ts) and the exported scripts' matcher (src/check/rule-tokens.ts).

/** Options iptables always saves first and in a fixed order (-s -d -i -o -p), whatever order they were written in. */
export const BASIC_OPTIONS: Record<string, string> = {
  '-s': '-s',
  '--source': '-s',
  '--src': '-s',
  '-d': '-d',
  '--destination': '-d',
  '--dst': '-d',
  '-i': '-i',
  '--in-interface': '-i',
  '-o': '-o',
  '--out-interface': '-o',
  '-p': '-p',
  '--protocol': '-p',
};

/** Options whose value is a mark `value[/mask]`, compared as numbers (`--mark 16` saves as `--mark 0x10`). */
export const MARK_VALUE_OPTIONS = new Set(['--mark', '--set-xmark']);

/** Rewrites MARK/CONNMARK target shorthands to the `--set-xmark value/mask` that iptables saves. */
export function canonicalMarkTargets(words: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const value = words[i + 1];
    const v = value === undefined ? undefined : parseMark(value);
    if (v === undefined || !['--set-mark', '--or-mark', '--xor-mark', '--and-mark'].includes(word)) {
      out.push(word);
      continue;
    }
    let xmark: string;
    if (word === '--set-mark')
      xmark = v.mask === undefined ? `${hex(v.value)}/0xffffffff` : `${hex(v.value)}/${hex(v.mask)}`;
    else if (word === '--or-mark') xmark = `${hex(v.value)}/${hex(v.value)}`;
    else if (word === '--xor-mark') xmark = `${hex(v.value)}/0x0`;
    else xmark = `0x0/${hex(~v.value >>> 0)}`;
    out.push('--set-xmark', xmark);
    i++;
  }
  return out;
}

/** A mark written `value[/mask]`, in decimal or hex. */
export function parseMark(text: string): { value: number; mask?: number } | undefined {
  const m = /^(0x[0-9a-f]+|\d+)(?:\/(0x[0-9a-f]+|\d+))?$/i.exec(text);
  if (!m) return undefined;
  return m[2] === undefined ? { value: Number(m[1]) } : { value: Number(m[1]), mask: Number(m[2]) };
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
