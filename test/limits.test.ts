// Bounded runs (issue 17, item 4): a lab command that never ends (`conntrack -E`, `ip monitor`)
// is stopped at its limit and its step ends as `error` naming it; a step stops at its own limit;
// traffic whose own settings could take hours is refused at validation (exit 2).
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonOf, nflab, rootState, runNamespaces } from './helpers/system.ts';
import { processesNaming } from './helpers/residue.ts';
import { validateLab } from '../src/resolve/validate-lab.ts';
import { LabError } from '../src/errors.ts';
import type { Lab, Step } from '../src/lab/types.ts';
import type { RunReport } from '../src/report/types.ts';

const base = (steps: Step[], limits?: Lab['limits']): Lab => ({
  id: 'lim',
  title: 'limits',
  summary: 'a two-node lab',
  source: { title: 'none' },
  ...(limits ? { limits } : {}),
  topology: {
    nodes: { host: { role: 'host', listen: [8000] }, c1: { role: 'container' } },
    links: [
      {
        a: { node: 'c1', name: 'eth0', addresses: ['10.1.0.2/24'] },
        b: { node: 'host', name: 'veth0', addresses: ['10.1.0.1/24'] },
      },
    ],
  },
  steps,
});
const pingHost: Step['expect'] = [
  { kind: 'ping', traffic: { kind: 'ping', from: 'c1', to: '10.1.0.1' }, expect: 'succeeds' },
];

test('tcp with 10000 connections and a 60 s timeout is refused at validation, naming the step and the bound', (t) => {
  const lab = base([
    { title: 'flood', send: [{ kind: 'tcp', from: 'c1', to: '10.1.0.9', port: 80, connections: 10000, timeout: 60 }] },
  ]);
  const err = t.throws(() => validateLab(lab), { instanceOf: LabError });
  t.regex(
    err!.message,
    /lab lim: step 1 "flood": its traffic may take up to 1200000 s when nothing answers, more than the step's limit of 1800 s \(the longest: tcp from c1 to 10\.1\.0\.9/,
  );
});

test('the same traffic within a raised step limit is allowed; limits out of range are named', (t) => {
  t.notThrows(() =>
    validateLab(
      base([
        {
          title: 'some',
          limits: { stepSeconds: 100 },
          send: [{ kind: 'tcp', from: 'c1', to: '10.1.0.9', port: 80, connections: 20, timeout: 2 }],
        },
      ]),
    ),
  );
  t.throws(
    () =>
      validateLab(
        base([
          {
            title: 'some',
            limits: { stepSeconds: 10 },
            send: [{ kind: 'tcp', from: 'c1', to: '10.1.0.9', port: 80, connections: 20, timeout: 2 }],
          },
        ]),
      ),
    { message: /more than the step's limit of 10 s/ },
  );
  t.throws(() => validateLab(base([{ title: 'x', expect: pingHost }], { commandSeconds: 0 })), {
    message: /field "limits\.commandSeconds" must be a number of seconds in \(0, 3600\]/,
  });
  t.throws(() => validateLab(base([{ title: 'x', limits: { stepSeconds: 1e9 }, expect: pingHost }])), {
    message: /step 1 "x": field "limits\.stepSeconds" must be/,
  });
  t.throws(() => validateLab(base([{ title: 'x', limits: { stepSecs: 5 } as never, expect: pingHost }])), {
    message: /steps\[0\]\.limits\.stepSecs: did you mean stepSeconds\?/,
  });
});

function labFile(dir: string, lab: Lab): string {
  const file = join(dir, `${lab.id}.ts`);
  writeFileSync(file, `export default ${JSON.stringify(lab, null, 2)};\n`);
  return file;
}

for (const [command, limits, message] of [
  [
    ['conntrack', '-E'],
    { commandSeconds: 2 },
    /command `ip netns exec host conntrack -E` on node host did not end within its limit of 2 s \(limits\.commandSeconds\)/,
  ],
  [
    ['ip', 'monitor'],
    { commandSeconds: 2 },
    /command `ip netns exec host ip monitor` on node host did not end within its limit of 2 s/,
  ],
  [
    ['conntrack', '-E'],
    { commandSeconds: 30, stepSeconds: 3 },
    /the step reached its limit of 3 s \(limits\.stepSeconds\) while `ip netns exec host conntrack -E` ran on node host/,
  ],
] as const) {
  test(`\`${command.join(' ')}\` with limits ${JSON.stringify(limits)}: the step ends as error naming the command, the lab stops there and leaves nothing`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'nflab-limits-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const before = rootState();
    const file = labFile(
      dir,
      base(
        [
          {
            title: 'a command that never ends',
            limits: 'stepSeconds' in limits ? { stepSeconds: limits.stepSeconds } : undefined,
            run: [{ node: 'host', argv: [...command] }],
            expect: pingHost,
          },
          { title: 'never reached', expect: pingHost },
        ],
        { commandSeconds: limits.commandSeconds },
      ),
    );
    const r = await nflab(['run', file, '--json']);
    // The lab could not be run to its end: status error (exit 3), with the limit's code.
    t.is(r.code, 3, r.stderr);
    const lab = jsonOf<RunReport>(r).labs[0]!;
    t.is(lab.status, 'error');
    t.is(lab.error?.code, 'limit-reached');
    t.is(lab.steps.length, 1, 'the lab stopped at the step that did not finish');
    t.is(lab.steps[0]!.status, 'error');
    t.regex(lab.steps[0]!.reason ?? '', message);
    t.regex(lab.reason ?? '', /^step 1: /);
    t.deepEqual(runNamespaces(lab.runId), [], 'no namespace of the run remains');
    t.deepEqual(processesNaming(lab.runId), [], `no ${command[0]} of the run is left running`);
    t.deepEqual(rootState(), before);
  });
}
