// Kubernetes YAML (v1 Service and discovery.k8s.io/v1 EndpointSlice, as `kubectl get -o yaml`
// writes them; several documents per file, or a `kind: List`) turned into the renderer's Service
// model: one entry per service port, its endpoints joined from the slices by service name, port
// name and protocol. What kube-proxy would ignore is ignored (ExternalName, headless Services,
// other kinds); what no profile models is refused, naming the document and the field.

import { createRequire } from 'node:module';
import { LabError } from '../errors.ts';
import type { Service, ServiceEndpoint } from './service.ts';

export interface YamlSource {
  /** Shown in errors, e.g. the file name. */
  name: string;
  text: string;
}

export interface YamlOptions {
  /** The node kube-proxy runs on: endpoints whose nodeName matches are local. */
  nodeName?: string;
}

// yaml is required on first use, not imported: only `kube-proxy render` reads YAML, and the module is
// large for every start of the CLI.
const require = createRequire(import.meta.url);
function parseAllDocuments(text: string): ReturnType<typeof import('yaml').parseAllDocuments> {
  return (require('yaml') as typeof import('yaml')).parseAllDocuments(text);
}

type Obj = Record<string, unknown>;

interface Doc {
  where: string;
  obj: Obj;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Field {
  constructor(private readonly where: string) {}
  fail(path: string, msg: string): never {
    throw new LabError(`${this.where}: field "${path}": ${msg}`);
  }
  unsupported(path: string, what: string): never {
    throw new LabError(`${this.where}: field "${path}": ${what} is not supported by nflab's kube-proxy profiles`);
  }
  str(v: unknown, path: string): string {
    if (typeof v !== 'string') this.fail(path, `must be a string, got ${JSON.stringify(v)}`);
    return v as string;
  }
  int(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(path, `must be an integer, got ${JSON.stringify(v)}`);
    return v as number;
  }
  list(v: unknown, path: string): unknown[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) this.fail(path, 'must be a list');
    return v as unknown[];
  }
  obj(v: unknown, path: string): Obj {
    if (v === undefined || v === null) return {};
    if (!isObj(v)) this.fail(path, 'must be a mapping');
    return v as Obj;
  }
}

function documents(sources: YamlSource[]): Doc[] {
  const docs: Doc[] = [];
  for (const src of sources) {
    parseAllDocuments(src.text).forEach((d, i) => {
      const where = `${src.name}: document ${i + 1}`;
      if (d.errors.length > 0) throw new LabError(`${where}: invalid YAML: ${d.errors[0]?.message.split('\n')[0]}`);
      const value = d.toJS() as unknown;
      if (value === null || value === undefined) return;
      if (!isObj(value)) throw new LabError(`${where}: a Kubernetes object (a mapping) was expected`);
      if (value.kind === 'List') {
        new Field(where).list(value.items, 'items').forEach((item, j) => {
          if (!isObj(item)) throw new LabError(`${where}: field "items[${j}]": must be a mapping`);
          docs.push({ where: `${where} items[${j}]`, obj: item });
        });
      } else {
        docs.push({ where, obj: value });
      }
    });
  }
  return docs.map((d) => {
    const meta = isObj(d.obj.metadata) ? d.obj.metadata : {};
    const label = `${String(d.obj.kind)} ${String(meta.namespace ?? 'default')}/${String(meta.name ?? '?')}`;
    return { where: `${d.where} (${label})`, obj: d.obj };
  });
}

interface SlicePort {
  name: string;
  port: number;
  protocol: string;
}

interface Slice {
  namespace: string;
  service: string;
  ports: SlicePort[];
  endpoints: { address: string; ready: boolean; servingTerminating: boolean; nodeName?: string }[];
}

function readSlice(d: Doc): Slice | undefined {
  const f = new Field(d.where);
  if (d.obj.apiVersion !== 'discovery.k8s.io/v1')
    f.fail('apiVersion', `EndpointSlice must be discovery.k8s.io/v1, got ${JSON.stringify(d.obj.apiVersion)}`);
  const meta = f.obj(d.obj.metadata, 'metadata');
  const labels = f.obj(meta.labels, 'metadata.labels');
  const service = labels['kubernetes.io/service-name'];
  if (service === undefined)
    f.fail('metadata.labels', 'needs "kubernetes.io/service-name" (the Service it belongs to)');
  const addressType = f.str(d.obj.addressType, 'addressType');
  if (addressType !== 'IPv4') f.unsupported('addressType', `addressType ${addressType}`);
  const ports = f.list(d.obj.ports, 'ports').map((p, i) => {
    const po = f.obj(p, `ports[${i}]`);
    return {
      name: po.name === undefined || po.name === null ? '' : f.str(po.name, `ports[${i}].name`),
      port: f.int(po.port, `ports[${i}].port`),
      protocol: po.protocol === undefined ? 'TCP' : f.str(po.protocol, `ports[${i}].protocol`),
    };
  });
  const endpoints = f.list(d.obj.endpoints, 'endpoints').map((e, i) => {
    const eo = f.obj(e, `endpoints[${i}]`);
    if (eo.hints !== undefined) f.unsupported(`endpoints[${i}].hints`, 'topology-aware routing (hints)');
    const addresses = f.list(eo.addresses, `endpoints[${i}].addresses`);
    if (addresses.length === 0) f.fail(`endpoints[${i}].addresses`, 'needs at least one address');
    const conditions = f.obj(eo.conditions, `endpoints[${i}].conditions`);
    const ready = conditions.ready !== false; // unset means ready
    const servingTerminating = conditions.serving === true && conditions.terminating === true;
    return {
      // kube-proxy uses an endpoint's first address
      address: f.str(addresses[0], `endpoints[${i}].addresses[0]`),
      ready,
      servingTerminating,
      ...(typeof eo.nodeName === 'string' ? { nodeName: eo.nodeName } : {}),
    };
  });
  return {
    namespace: String(meta.namespace ?? 'default'),
    service: f.str(service, 'metadata.labels["kubernetes.io/service-name"]'),
    ports,
    endpoints,
  };
}

const PROTOCOLS: Record<string, Service['protocol']> = { TCP: 'tcp', UDP: 'udp' };

function readService(d: Doc, slices: Slice[], opts: YamlOptions): Service[] {
  const f = new Field(d.where);
  if (d.obj.apiVersion !== 'v1') f.fail('apiVersion', `Service must be v1, got ${JSON.stringify(d.obj.apiVersion)}`);
  const meta = f.obj(d.obj.metadata, 'metadata');
  const name = f.str(meta.name, 'metadata.name');
  const namespace = meta.namespace === undefined ? 'default' : f.str(meta.namespace, 'metadata.namespace');
  const spec = f.obj(d.obj.spec, 'spec');
  const type = spec.type === undefined ? 'ClusterIP' : f.str(spec.type, 'spec.type');
  if (type === 'ExternalName') return []; // kube-proxy writes no rules for it
  if (!['ClusterIP', 'NodePort', 'LoadBalancer'].includes(type))
    f.fail('spec.type', `unknown type ${JSON.stringify(type)}`);
  const clusterIP = spec.clusterIP === undefined ? undefined : f.str(spec.clusterIP, 'spec.clusterIP');
  if (clusterIP === undefined || clusterIP === '')
    f.fail('spec.clusterIP', 'is required (write the allocated address, as kubectl get -o yaml shows it)');
  if (clusterIP === 'None') return []; // headless: no proxying
  if ((clusterIP as string).includes(':')) f.unsupported('spec.clusterIP', 'IPv6');
  for (const [i, fam] of f.list(spec.ipFamilies, 'spec.ipFamilies').entries())
    if (fam !== 'IPv4') f.unsupported(`spec.ipFamilies[${i}]`, `ip family ${String(fam)}`);
  if (spec.internalTrafficPolicy === 'Local')
    f.unsupported('spec.internalTrafficPolicy', 'internalTrafficPolicy: Local');
  if (spec.trafficDistribution !== undefined) f.unsupported('spec.trafficDistribution', 'trafficDistribution');
  const policy =
    spec.externalTrafficPolicy === undefined
      ? undefined
      : f.str(spec.externalTrafficPolicy, 'spec.externalTrafficPolicy');
  if (policy !== undefined && policy !== 'Cluster' && policy !== 'Local')
    f.fail('spec.externalTrafficPolicy', `must be Cluster or Local, got ${JSON.stringify(policy)}`);
  const affinity = spec.sessionAffinity === undefined ? 'None' : f.str(spec.sessionAffinity, 'spec.sessionAffinity');
  let timeoutSeconds: number | undefined;
  if (affinity === 'ClientIP') {
    const cfg = f.obj(
      f.obj(spec.sessionAffinityConfig, 'spec.sessionAffinityConfig').clientIP,
      'spec.sessionAffinityConfig.clientIP',
    );
    timeoutSeconds =
      cfg.timeoutSeconds === undefined
        ? 10800
        : f.int(cfg.timeoutSeconds, 'spec.sessionAffinityConfig.clientIP.timeoutSeconds');
  } else if (affinity !== 'None')
    f.fail('spec.sessionAffinity', `must be None or ClientIP, got ${JSON.stringify(affinity)}`);
  const externalIPs = f.list(spec.externalIPs, 'spec.externalIPs').map((x, i) => f.str(x, `spec.externalIPs[${i}]`));
  const sourceRanges = f
    .list(spec.loadBalancerSourceRanges, 'spec.loadBalancerSourceRanges')
    .map((x, i) => f.str(x, `spec.loadBalancerSourceRanges[${i}]`).trim());
  const status = f.obj(d.obj.status, 'status');
  const ingress = f.list(f.obj(status.loadBalancer, 'status.loadBalancer').ingress, 'status.loadBalancer.ingress');
  const lbIPs = ingress.flatMap((x, i) => {
    const io = f.obj(x, `status.loadBalancer.ingress[${i}]`);
    if (io.ipMode === 'Proxy') f.unsupported(`status.loadBalancer.ingress[${i}].ipMode`, 'ipMode: Proxy');
    return io.ip === undefined ? [] : [f.str(io.ip, `status.loadBalancer.ingress[${i}].ip`)];
  });
  const healthCheckNodePort =
    spec.healthCheckNodePort === undefined ? undefined : f.int(spec.healthCheckNodePort, 'spec.healthCheckNodePort');

  const own = slices.filter((s) => s.namespace === namespace && s.service === name);
  return f.list(spec.ports, 'spec.ports').map((p, i) => {
    const po = f.obj(p, `spec.ports[${i}]`);
    const protocolName = po.protocol === undefined ? 'TCP' : f.str(po.protocol, `spec.ports[${i}].protocol`);
    const protocol = PROTOCOLS[protocolName];
    if (!protocol) f.unsupported(`spec.ports[${i}].protocol`, `protocol ${protocolName}`);
    const portName = po.name === undefined ? '' : f.str(po.name, `spec.ports[${i}].name`);
    const port = f.int(po.port, `spec.ports[${i}].port`);
    const nodePort =
      po.nodePort === undefined || type === 'ClusterIP' ? undefined : f.int(po.nodePort, `spec.ports[${i}].nodePort`);
    const all = own.flatMap((sl) => {
      const sp = sl.ports.find((x) => x.name === portName && x.protocol === protocolName);
      return sp ? sl.endpoints.map((e) => ({ ...e, port: sp.port })) : [];
    });
    const ready = all.filter((e) => e.ready);
    if (ready.length === 0 && all.some((e) => e.servingTerminating)) {
      f.unsupported(`spec.ports[${i}]`, 'falling back to serving-terminating endpoints (no ready endpoint is left)');
    }
    const endpoints: ServiceEndpoint[] = ready.map((e) => ({
      address: e.address,
      port: e.port,
      ...(opts.nodeName !== undefined && e.nodeName === opts.nodeName ? { local: true } : {}),
    }));
    const svc: Service = {
      name,
      namespace,
      portName,
      clusterIP: clusterIP as string,
      port,
      protocol: protocol as Service['protocol'],
      endpoints,
      type: type as Service['type'],
    };
    if (nodePort !== undefined) svc.nodePort = nodePort;
    if (timeoutSeconds !== undefined) svc.sessionAffinity = { timeoutSeconds };
    if (externalIPs.length) svc.externalIPs = externalIPs;
    if (type === 'LoadBalancer' && lbIPs.length) svc.loadBalancerIPs = lbIPs;
    if (type === 'LoadBalancer' && sourceRanges.length) svc.loadBalancerSourceRanges = sourceRanges;
    if (policy !== undefined) svc.externalTrafficPolicy = policy as 'Cluster' | 'Local';
    if (healthCheckNodePort !== undefined) svc.healthCheckNodePort = healthCheckNodePort;
    documentOf.set(svc, d.where);
    return svc;
  });
}

/** The document each Service entry came from ("file: document N (Service ns/name)"), for errors found later. */
export const documentOf = new WeakMap<Service, string>();

/** Services (one per port) from Kubernetes YAML; throws LabError naming file, document and field. */
export function servicesFromYaml(sources: YamlSource[], opts: YamlOptions = {}): Service[] {
  const docs = documents(sources);
  const slices = docs
    .filter((d) => d.obj.kind === 'EndpointSlice')
    .map(readSlice)
    .filter((s): s is Slice => s !== undefined);
  return docs.filter((d) => d.obj.kind === 'Service').flatMap((d) => readService(d, slices, opts));
}
