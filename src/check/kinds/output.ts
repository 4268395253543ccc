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
  describe: (c) => `\`${c.command.argv.join(' ')}\` on ${c.command.node} ${c.includes ? `shows ${c.includes.map((s) => `"${s}"`).join(', ')}` : ''}${c.includes && c.excludes ? ' and ' : ''}${c.excludes ? `does not show ${c.excludes.map((s) => `"${s}"`).join(', ')}` : ''}`,
  needs: (c) => [{ type: 'output', command: c.command }],
  judge(c, obs) {
    const result = obs.output(c.command);
    const expected = { ...(c.includes ? { includes: c.includes } : {}), ...(c.excludes ? { excludes: c.excludes } : {}) };
    if (!result) return { met: false, expected, observed: 'the command did not run' };
    const text = result.stdout + result.stderr;
    const met = (c.includes ?? []).every((s) => text.includes(s)) && (c.excludes ?? []).every((s) => !text.includes(s));
    return { met, expected, observed: { output: text.trim().split('\n').slice(0, 12) } };
  },
  exportLine(c, desc, ids) {
    const parts = [...(c.includes ?? []).map((s) => `include ${q(s)}`), ...(c.excludes ?? []).map((s) => `exclude ${q(s)}`)];
    return `check_output ${ids.output(c.command)} ${desc} ${parts.join(' ')}`;
  },
  look: (c, show) => [show(c.command.node, c.command.argv)],
});
