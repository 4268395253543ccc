// Both iptables backends: nflab runs a lab's iptables commands as iptables-nft or iptables-legacy
// (--iptables), whatever the machine's own `iptables` is. Real runs on this kernel, which has both.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { jsonOf, nflab, rootState } from './helpers/system.ts';
import { backendArgv, backendNote } from '../src/engine/iptables-backend.ts';

test('the x_tables front ends are named for the backend; other commands and ebtables are left alone', (t) => {
  t.deepEqual(backendArgv(['iptables', '-P', 'FORWARD', 'DROP'], 'legacy'), [
    'iptables-legacy',
    '-P',
    'FORWARD',
    'DROP',
  ]);
  t.deepEqual(backendArgv(['iptables-save', '-c'], 'nft'), ['iptables-nft-save', '-c']);
  t.deepEqual(backendArgv(['iptables-restore', '--noflush'], 'legacy'), ['iptables-legacy-restore', '--noflush']);
  t.deepEqual(backendArgv(['ip6tables-save'], 'legacy'), ['ip6tables-legacy-save']);
  t.deepEqual(backendArgv(['iptables-nft', '-L'], 'legacy'), ['iptables-nft', '-L'], 'an explicit backend stays');
  t.deepEqual(backendArgv(['ebtables', '-L'], 'legacy'), ['ebtables', '-L']);
  t.deepEqual(backendArgv(['sh', '-c', 'iptables -L'], 'legacy'), ['sh', '-c', 'iptables -L']);
  t.is(backendNote('nft', 'nft', 'this machine'), undefined);
  t.regex(
    backendNote('nft', 'legacy', 'this machine')!,
    /runs iptables-nft, and this lab's rules are in iptables-legacy/,
  );
});

/** The host namespace's rules as each backend's save shows them. */
function saved(ns: string): { nft: string; legacy: string } {
  const save = (prog: string) => execFileSync('ip', ['netns', 'exec', ns, prog], { encoding: 'utf8' });
  return { nft: save('iptables-nft-save'), legacy: save('iptables-legacy-save') };
}

test("--iptables legacy puts the lab's rules in the legacy tables, the default in nf_tables, and up says which `iptables` shows them", async (t) => {
  const before = rootState();
  for (const backend of ['legacy', 'nft'] as const) {
    const up = await nflab(['up', '01', '--step', '0', '--iptables', backend, '--again']);
    t.is(up.code, 0, up.stderr);
    const runId = /\(run (\w+),/.exec(up.stdout)?.[1];
    t.truthy(runId, up.stdout);
    t.teardown(async () => {
      await nflab(['down', runId!]);
    });
    // lab 01's set-up is `iptables -P FORWARD DROP` on host.
    const rules = saved(`nfl-${runId}-host`);
    const inBackend = backend === 'legacy' ? rules.legacy : rules.nft;
    const inOther = backend === 'legacy' ? rules.nft : rules.legacy;
    t.regex(inBackend, /:FORWARD DROP/, `${backend}: the set-up's policy is in iptables-${backend}`);
    t.notRegex(inOther, /:FORWARD DROP/, `${backend}: and not in the other backend`);
    // This machine's `iptables` is iptables-nft: only the legacy run gets the note.
    if (backend === 'legacy')
      t.regex(
        up.stdout,
        /note: `iptables` on this machine runs iptables-nft, and this lab's rules are in iptables-legacy: type iptables-legacy/,
      );
    else t.notRegex(up.stdout, /note: `iptables`/);
    t.is((await nflab(['down', runId!])).code, 0);
  }
  t.deepEqual(rootState(), before, 'the root namespace is as it was');
});

test('lab 01 under iptables-legacy: its counter checks are met from iptables-legacy-save, its path check skipped with the reason', async (t) => {
  const r = await nflab(['run', '01', '--iptables', 'legacy', '--json']);
  t.is(r.code, 0, r.stderr);
  const lab = jsonOf(r).labs[0];
  t.is(lab.iptables, 'legacy');
  const checks = lab.steps.flatMap(
    (s: { checks: { kind: string; status: string; reason?: string; observed: unknown }[] }) => s.checks,
  );
  const counters = checks.filter((c: { kind: string }) => c.kind === 'counter');
  t.true(counters.length >= 4);
  t.true(
    counters.every((c: { status: string }) => c.status === 'met'),
    JSON.stringify(counters),
  );
  const path = checks.find((c: { kind: string }) => c.kind === 'path');
  t.is(path.status, 'skipped');
  t.regex(path.reason, /needs the nftables trace: iptables-legacy rules/);
});
