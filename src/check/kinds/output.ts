// output(node, command).includes(...) / .excludes(...): what a command prints after the traffic.
import { defineKind } from '../kind.ts';
import { quoteWord as q } from '../../exec/quote.ts';

export const outputKind = defineKind({
  kind: 'output',
  builder: 'output(node, command).includes(...)',
  fields: { command: 'object', includes: 'array-of-strings', excludes: 'array-of-strings' },
  validate(c, v) {
    v.command(c.command);
    if (c.includes === undefined && c.excludes === undefined) v.add('output check: give "includes" or "excludes"');
  },
  describe: (c) =>
    `\`${c.command.argv.join(' ')}\` on ${c.command.node} ${c.includes ? `shows ${c.includes.map((s) => `"${s}"`).join(', ')}` : ''}${c.includes && c.excludes ? ' and ' : ''}${c.excludes ? `does not show ${c.excludes.map((s) => `"${s}"`).join(', ')}` : ''}`,
  needs: (c) => [{ type: 'output', command: c.command }],
  judge(c, obs) {
    const result = obs.output(c.command);
    const expected = {
      ...(c.includes ? { includes: c.includes } : {}),
      ...(c.excludes ? { excludes: c.excludes } : {}),
    };
    if (!result) return { met: false, expected, observed: 'the command did not run' };
    const text = result.stdout + result.stderr;
    const met = (c.includes ?? []).every((s) => text.includes(s)) && (c.excludes ?? []).every((s) => !text.includes(s));
    return { met, expected, observed: { output: text.trim().split('\n').slice(0, 12) } };
  },
  // Text a command prints is the reference answer's (a rule as iptables-save writes it, a route): another answer may print it otherwise.
  about: () => 'reference',
  hint(c, _verdict, obs) {
    const result = obs.output(c.command);
    if (!result) return undefined;
    const text = result.stdout + result.stderr;
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    const missing = (c.includes ?? []).filter((s) => !text.includes(s));
    const present = (c.excludes ?? []).filter((s) => text.includes(s));
    const nearest = (s: string) => {
      const words = new Set(s.split(/\s+/));
      const scored = lines
        .map((l) => [l, l.split(/\s+/).filter((w) => words.has(w)).length] as const)
        .sort((a, b) => b[1] - a[1]);
      return scored[0] && scored[0][1] > 0 ? `; the nearest line is "${scored[0][0].trim()}"` : '';
    };
    return (
      [
        ...missing.map(
          (s) => `\`${c.command.argv.join(' ')}\` on ${c.command.node} does not print "${s}"${nearest(s)}`,
        ),
        ...present.map(
          (s) =>
            `\`${c.command.argv.join(' ')}\` on ${c.command.node} prints "${s}": "${lines.find((l) => l.includes(s))?.trim()}"`,
        ),
        ...(result.code !== 0 ? [`the command exited with ${result.code}`] : []),
      ].join('; ') || undefined
    );
  },
  exportLine(c, desc, ids) {
    const parts = [
      ...(c.includes ?? []).map((s) => `include ${q(s)}`),
      ...(c.excludes ?? []).map((s) => `exclude ${q(s)}`),
    ];
    return `check_output ${ids.output(c.command)} ${desc} ${parts.join(' ')}`;
  },
  look: (c, show) => [show(c.command.node, c.command.argv)],
});
