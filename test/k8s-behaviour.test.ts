// The same Service behaviours under every kube-proxy profile, on the real kernel: ClusterIP from a
// pod (every backend, source kept) and from the node (masqueraded), NodePort from outside
// (masqueraded), ClientIP affinity (each client sticks), hairpin (a pod reaches itself,
// masqueraded). The lab (test/fixtures/labs/k8s-service-behaviour.ts) holds behaviour checks only:
// traffic outcomes, packets and conntrack tuples, no rule text; the rules under test are the
// profile's own (iptables-restore of blog, v1.19, current; nft -f of nftables).
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { nflab, jsonOf } from './helpers/system.ts';

const LAB = fileURLToPath(new URL('fixtures/labs/k8s-service-behaviour.ts', import.meta.url));

interface CheckJson {
  description: string;
  kind: string;
  status: string;
  observed?: unknown;
}
interface LabJson {
  id: string;
  status: string;
  kubeProxy?: string;
  steps: { title: string; status: string; checks: CheckJson[] }[];
}

for (const profile of ['blog', 'v1.19', 'current', 'nftables'] as const) {
  test.serial(
    `under --kube-proxy ${profile}: ClusterIP, NodePort, SessionAffinity and hairpin behave alike (packets and conntrack tuples)`,
    async (t) => {
      const r = await nflab(['run', LAB, '--kube-proxy', profile, '--json']);
      const [lab] = (jsonOf(r) as { labs: LabJson[] }).labs;
      t.truthy(lab);
      const notMet = lab!.steps.flatMap((s) =>
        s.checks
          .filter((c) => c.status !== 'met')
          .map((c) => `${s.title}: ${c.description}: ${JSON.stringify(c.observed)}`),
      );
      t.deepEqual(notMet, []);
      t.is(lab!.status, 'passed');
      t.is(r.code, 0);
      t.is(lab!.kubeProxy, profile, 'the report names the profile the rules were rendered with');
      // Behaviour evidence only: no check of this lab reads a rule or its counter.
      const kinds = new Set(lab!.steps.flatMap((s) => s.checks.map((c) => c.kind)));
      t.deepEqual(
        [...kinds].filter((k) => ['counter', 'output', 'path'].includes(k)),
        [],
      );
      t.true(kinds.has('conntrack') && kinds.has('distribution') && kinds.has('sticky'), [...kinds].join(','));
      // The tuples observed: 30 pod connections DNATed to the three pods.
      const clusterIP = lab!.steps[0]!.checks.find((c) => c.kind === 'conntrack' && /30 tuples/.test(c.description))!;
      const seen = clusterIP.observed as { count: number; entries: string[] };
      t.is(seen.count, 30, JSON.stringify(seen));
      t.true(
        seen.entries.every((e) => /dst=10\.96\.10\.10 .*src=10\.244\.0\.[234] dst=10\.244\.0\.10 sport=80/.test(e)),
        JSON.stringify(seen.entries),
      );
    },
  );
}

test("the behaviour lab really loads each profile's own rules", async (t) => {
  const shown = await Promise.all(
    (['blog', 'v1.19', 'current', 'nftables'] as const).map(
      async (p) => (await nflab(['show', LAB, '--kube-proxy', p])).stdout,
    ),
  );
  // blog hashes "default/web:" (trailing colon), v1.19 and current "default/web"; nftables has no KUBE- chains.
  const svcChain = (text: string) => /-A KUBE-SERVICES .*-d 10\.96\.10\.10\/32 .*-j (KUBE-SVC-\w+)/.exec(text)?.[1];
  t.truthy(svcChain(shown[0]!));
  t.not(svcChain(shown[0]!), svcChain(shown[1]!));
  t.is(svcChain(shown[1]!), svcChain(shown[2]!));
  t.regex(shown[2]!, /-A KUBE-EXT-/);
  t.notRegex(shown[1]!, /-A KUBE-EXT-/);
  t.regex(shown[3]!, /add element ip kube-proxy service-nodeports \{ tcp \. 30080 : goto external-/);
  t.notRegex(shown[3]!, /KUBE-SVC-/);
});
