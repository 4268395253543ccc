// The pictures of a handout: lab 11's netfilter hook picture drawn from a real run's traces (the
// bridged echo request and reply pass the bridge and ip PREROUTING/FORWARD/POSTROUTING tables,
// never INPUT or OUTPUT), and lab 04's diagram with its Service, endpoints and kube-proxy chains.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nflab } from './helpers/system.ts';
import { loadAllLabs } from '../src/resolve/load.ts';
import { topologySvg } from '../src/handout/diagram-svg.ts';
import { buildHandout } from '../src/handout/model.ts';

const dir = mkdtempSync(join(tmpdir(), 'nflab-pictures-test-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test.serial(
  "lab 11 run for real: step 2's hook picture shows the traced packets in the tables they passed, with the counters",
  async (t) => {
    const r = await nflab(['handout', '11', '--run', '--format', 'html', '--out', dir]);
    t.is(r.code, 0, r.stderr);
    const html = readFileSync(join(dir, '11-chain-traversal.html'), 'utf8');
    const step2 = html.slice(html.indexOf('id="step-2"'), html.indexOf('id="step-3"'));
    const figure = step2.slice(
      step2.indexOf('<figure class="hooks"'),
      step2.indexOf('</figure>', step2.indexOf('<figure class="hooks"')),
    );
    t.true(figure.length > 0, 'step 2 has a hook picture');
    const cell = (k: string) =>
      new RegExp(`data-cell="${k}" data-traced="(\\d+)"(?: data-counter="(\\d+)")?`).exec(figure);
    for (const k of [
      'bridge nat PREROUTING',
      'ip raw PREROUTING',
      'ip mangle FORWARD',
      'ip filter FORWARD',
      'bridge nat POSTROUTING',
    ]) {
      t.true(Number(cell(k)?.[1]) >= 1, `${k}: a traced packet passed`);
    }
    for (const k of ['ip filter INPUT', 'ip filter OUTPUT', 'bridge filter INPUT'])
      t.is(Number(cell(k)?.[1]), 0, `${k}: no traced packet`);
    // The counters the step read: the request and the reply in raw PREROUTING, only the first packet in nat.
    t.is(cell('ip raw PREROUTING')?.[2], '2');
    t.is(cell('ip nat PREROUTING')?.[2], '1');
    t.true((figure.match(/<g class="packet"/g) ?? []).length >= 2, 'the request and the reply are drawn');
  },
);

test("lab 04's diagram shows the Service: ClusterIP:port, each endpoint with its pod, kube-proxy's chains, backend and client roles", async (t) => {
  const lab = (await loadAllLabs()).find((l) => l.id === '04')!;
  const svg = topologySvg(lab, buildHandout(lab, 'netns').kindOf);
  const service = svg.slice(svg.indexOf('<g class="service"'), svg.indexOf('</g>', svg.indexOf('<g class="service"')));
  for (const s of [
    'Service k8s-nginx-cluster (ClusterIP)',
    '10.98.51.150:80/tcp',
    '→ 10.244.0.2:80 (p1)',
    '→ 10.244.0.3:80 (p2)',
    '→ 10.244.0.4:80 (p3)',
    'KUBE-SERVICES',
    'KUBE-SVC-3FL7SSXCKTCXAYCR',
    'KUBE-POSTROUTING',
  ]) {
    t.true(service.includes(s), s);
  }
  for (const pod of ['p1', 'p2', 'p3']) t.regex(svg, new RegExp(`data-node="${pod}">[\\s\\S]*?pod · backend`));
  t.regex(svg, /data-node="pc">[\s\S]*?pod · client/);
});
