// What a Kubernetes lab's diagram adds to the topology: each Service (ClusterIP:port → endpoints,
// the NodePort), the pods' roles (backend of a Service, client), and the kube-proxy chains a
// connection to the Service passes in the node's nat table.
import type { ServiceEndpoint } from '../k8s/service.ts';
import type { Lab } from '../lab/types.ts';
import { kubeChains } from '../k8s/lab-rules.ts';

export interface ServiceBox {
  node: string;
  /** Lines of the box, the first one its title. */
  lines: string[];
}

/** Pod name by IP: the addresses on each container's links. */
function podsByIp(lab: Lab): Map<string, string> {
  const out = new Map<string, string>();
  for (const link of lab.topology.links)
    for (const end of [link.a, link.b]) {
      if (lab.topology.nodes[end.node]?.role !== 'container') continue;
      for (const cidr of end.addresses ?? []) out.set(cidr.split('/')[0]!, end.node);
    }
  return out;
}

export function serviceBoxes(lab: Lab): ServiceBox[] {
  const spec = lab.kubeProxy;
  if (!spec) return [];
  const pods = podsByIp(lab);
  return spec.services.map((svc) => {
    const { svc: svcChain, sep } = kubeChains(spec, svc.name);
    const endpoints = svc.endpoints.map(endpointText).map((ep) => {
      const [ip, port] = ep.includes(':') ? ep.split(':') : [ep, String(svc.targetPort ?? svc.port)];
      return `  → ${ip}:${port}${pods.get(ip!) ? ` (${pods.get(ip!)})` : ''}`;
    });
    const seps = Object.values(sep);
    return {
      node: spec.node,
      lines: [
        `Service ${svc.name} (${svc.type ?? 'ClusterIP'}${svc.sessionAffinity ? ', affinity ClientIP' : ''})`,
        `${svc.clusterIP}:${svc.port}/${svc.protocol}${svc.nodePort ? `, node port ${svc.nodePort}` : ''}`,
        ...endpoints,
        `kube-proxy, nat table of ${spec.node}:`,
        '  PREROUTING, OUTPUT → KUBE-SERVICES',
        ...(svc.nodePort ? ['  KUBE-SERVICES → KUBE-NODEPORTS'] : []),
        `  → ${svcChain}`,
        `  → ${seps.length === 1 ? seps[0] : `${seps.length} KUBE-SEP-* chains`} (DNAT)`,
        '  POSTROUTING → KUBE-POSTROUTING',
        '    (MASQUERADE when marked 0x4000)',
      ],
    };
  });
}

/** What each pod is to the lab's Services: `backend of k8s-nginx-cluster`, `client`. */
export function podRoles(lab: Lab): Map<string, string> {
  const roles = new Map<string, string>();
  const spec = lab.kubeProxy;
  if (!spec) return roles;
  const pods = podsByIp(lab);
  for (const svc of spec.services)
    for (const ep of svc.endpoints.map(endpointText)) {
      const pod = pods.get(ep.split(':')[0]!);
      if (pod && !roles.has(pod)) roles.set(pod, `backend of ${svc.name}`);
    }
  for (const step of lab.steps)
    for (const check of step.expect ?? []) {
      const from = 'traffic' in check ? (check.traffic as { from?: string }).from : undefined;
      if (from && lab.topology.nodes[from]?.role === 'container' && !roles.has(from)) roles.set(from, 'client');
    }
  return roles;
}

/** An endpoint as `ip` or `ip:port`, whichever way the Service gives it. */
function endpointText(ep: string | ServiceEndpoint): string {
  return typeof ep === 'string' ? ep : `${ep.address}${ep.port !== undefined ? `:${ep.port}` : ''}`;
}
