// Wrapping commands for print: between shell words, with `\` continuations a shell joins back.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { loadAllLabs } from '../../src/resolve/load.ts';
import { buildHandout } from '../../src/handout/model.ts';
import { joinContinuations, PRINT_WIDTH, shellWords, wrapCommand } from '../../src/handout/wrap-command.ts';
import type { Lab } from '../../src/lab/types.ts';

function labCommands(lab: Lab): string[] {
  const h = buildHandout(lab, 'netns');
  return [...h.build, ...h.steps.flatMap((s) => [...s.watch, ...s.commands, ...s.traffic, ...s.look])];
}

test('shell words keep quotes whole and a trailing note apart', (t) => {
  t.deepEqual(shellWords(`iptables -m comment --comment "a b  c" -j X   # note`), {
    words: ['iptables', '-m', 'comment', '--comment', '"a b  c"', '-j', 'X'],
    comment: '   # note',
  });
  t.deepEqual(shellWords(`echo 'it''s' a\\ b`).words, ['echo', "'it''s'", 'a\\ b'], 'an escaped space joins two words');
});

test('a wrapped here-document runs in bash exactly as the unwrapped one', (t) => {
  const rule =
    '-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.98.51.150/32 -p tcp -m comment --comment "default/k8s-nginx-cluster: cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ';
  const display = `cat <<'EOF'\n${rule}\nEOF`;
  const wrapped = wrapCommand(display, 60);
  t.true(wrapped.length > 3 && wrapped.every((l) => l.length <= 60 || !l.trim().includes(' ')));
  const out = execFileSync('bash', ['-c', wrapped.join('\n')], { encoding: 'utf8' }).trim();
  t.is(out.split(/\s+/).join(' '), rule, 'the same words reach iptables-restore');
});

test('wrapping: every wrapped line fits the print width unless a single word is longer', async (t) => {
  const labs = (await loadAllLabs()).filter((l) => /^\d+$/.test(l.id));
  const over: string[] = [];
  for (const lab of labs)
    for (const c of labCommands(lab)) {
      for (const line of wrapCommand(c))
        if (line.length > PRINT_WIDTH && line.trim().includes(' ')) over.push(`lab ${lab.id}: ${line}`);
      // Joining gives the command back (a note after it keeps one space before its #).
      const oneSpace = (l: string) => l.replace(/ {2,}(# [^']*)$/, ' $1');
      t.deepEqual(
        joinContinuations(wrapCommand(c)).map(oneSpace),
        c.split('\n').map(oneSpace),
        `lab ${lab.id}: wrapping is undone by joining`,
      );
    }
  t.deepEqual(over, []);
});
