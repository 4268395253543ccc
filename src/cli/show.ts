// `nflab show`: a lab as a person reads it, with the exact commands to type for the chosen driver:
// the build plan the engine executes (src/resolve/plan-display.ts), then each step's commands and
// traffic in the order the engine runs them.
import type { ResolvedLab } from '../resolve/resolve-lab.ts';
import { planLines } from '../resolve/plan-display.ts';
import { describeCheck } from '../check/registry.ts';
import { trafficLine } from '../resolve/step-display.ts';
import { shownKubeProxyRules } from '../k8s/lab-rules.ts';
import { profileLabel } from '../k8s/profiles.ts';

export function showLab(r: ResolvedLab): string {
  const lab = r.lab;
  const lines: string[] = [
    `lab ${lab.id}: ${lab.title}`,
    '',
    lab.summary,
    '',
    `source: ${lab.source.title}${lab.source.url ? ` <${lab.source.url}>` : ''}`,
    '',
    '## Build the topology',
    '',
  ];
  const indent = (text: string) => text.split('\n').map((l) => `  ${l}`);
  lines.push(...planLines(r).flatMap((l) => indent(l.text)));
  if (lab.kubeProxy) {
    // What `iptables-save` prints once the setup loaded them (the form the articles show), or nft's transaction.
    const shown = shownKubeProxyRules(lab.kubeProxy);
    lines.push('', `## ${shown.heading}`, '', `kube-proxy profile: ${profileLabel(lab.kubeProxy.options.era)}`, '');
    lines.push(
      ...shown.text
        .trimEnd()
        .split('\n')
        .map((l) => `  ${l}`),
    );
  }
  for (const s of r.steps) {
    lines.push('', `## Step ${s.number}: ${s.step.title}`);
    if (s.step.teaches) lines.push('', s.step.teaches);
    lines.push('');
    for (const c of s.step.run ?? []) lines.push(...indent(r.display(c)));
    for (const t of s.traffic) lines.push(`  ${trafficLine(r, t)}`);
    if ((s.step.expect ?? []).length > 0) {
      lines.push('', '  expect:');
      for (const check of s.step.expect ?? []) lines.push(`    - ${describeCheck(check)}`);
    }
  }
  return lines.join('\n') + '\n';
}
