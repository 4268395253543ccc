// The Kubernetes Service model the kube-proxy labs (L4, L5, L6, L10, L11) are written in, and the
// options that pick which kube-proxy generation's iptables rules to render for it.
// One Service here is one service *port* (kube-proxy's ServicePortName): a multi-port Service is
// several entries with the same name and different `portName`s.

import { LabError } from '../errors.ts';

export type ServiceProtocol = 'tcp' | 'udp';

export interface Service {
  name: string;
  /** Defaults to 'default'. */
  namespace?: string;
  /** The port's name; '' (the default) for a single unnamed port, as in all the blog's Services. */
  portName?: string;
  clusterIP: string;
  port: number;
  protocol: ServiceProtocol;
  /** Pod port for endpoints given as a bare IP; defaults to `port`. */
  targetPort?: number;
  /**
   * Pod IPs ('10.244.0.2') or 'ip:port', or { address, local } for an endpoint on this node (its
   * EndpointSlice nodeName is the node's). The 'blog' profile keeps this order for its statistic
   * rules; later profiles sort endpoints as kube-proxy does.
   */
  endpoints: (string | ServiceEndpoint)[];
  /** Defaults to 'ClusterIP'. 'NodePort' and 'LoadBalancer' may have a `nodePort`. */
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  nodePort?: number;
  /** ClientIP session affinity (`-m recent`); absent means None. */
  sessionAffinity?: { timeoutSeconds: number };
  /** spec.externalIPs (not in the 'blog' profile). */
  externalIPs?: string[];
  /** status.loadBalancer.ingress[].ip (type LoadBalancer; not in the 'blog' profile). */
  loadBalancerIPs?: string[];
  /** spec.loadBalancerSourceRanges (KUBE-FW / KUBE-PROXY-FIREWALL). */
  loadBalancerSourceRanges?: string[];
  /** spec.externalTrafficPolicy; defaults to 'Cluster'. */
  externalTrafficPolicy?: 'Cluster' | 'Local';
  /** spec.healthCheckNodePort (LoadBalancer with Local policy). */
  healthCheckNodePort?: number;
}

export interface ServiceEndpoint {
  address: string;
  port?: number;
  /** The endpoint runs on the node kube-proxy renders for. */
  local?: boolean;
}

/**
 * Which kube-proxy generation's rules to write ('nftables' and 'ipvs' are rendered by their own
 * modules; see profiles.ts).
 * 'blog': v1.8 to v1.18 (docs/labs.md#kube-proxy-blog-era): `--set-xmark 0x4000/0x4000`, probabilities `%0.5f`.
 * A later 'v1.25' era (A.2: --or-mark/--xor-mark, `%0.10f`, MASQUERADE --random-fully) plugs in
 * through `eraStyle()` in render-iptables.ts.
 */
export type ProxyEra = 'blog' | 'v1.19' | 'current' | 'nftables';

/**
 * Stable names of rules a lab may leave out to tell a "break, then fix" story.
 * Each may be scoped as `<id>@<scope>`, where scope is a service's `name` or `namespace/name`, or
 * (for the per-endpoint id 'sep-hairpin-masq') an endpoint IP; unscoped ids apply everywhere.
 */
export const OMITTABLE_RULES = {
  'services-jump': 'nat PREROUTING/OUTPUT -j KUBE-SERVICES ("kubernetes service portals")',
  'postrouting-jump': 'nat POSTROUTING -j KUBE-POSTROUTING',
  'postrouting-masquerade': 'KUBE-POSTROUTING ... -m mark --mark 0x4000/0x4000 -j MASQUERADE',
  'clusterip-mark-masq': 'KUBE-SERVICES ! -s <clusterCIDR> -d <clusterIP> ... -j KUBE-MARK-MASQ',
  'nodeport-mark-masq': 'KUBE-NODEPORTS ... --dport <nodePort> -j KUBE-MARK-MASQ (L5 break 4)',
  'nodeport-svc-jump': 'KUBE-NODEPORTS ... --dport <nodePort> -j KUBE-SVC-*',
  'nodeports-jump': 'the last KUBE-SERVICES rule: -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS (L5 step 1)',
  'affinity-rcheck': 'KUBE-SVC-* -m recent --rcheck ... rules of an affinity service (L6 break 6)',
  'sep-hairpin-masq': 'KUBE-SEP-* -s <endpoint>/32 -j KUBE-MARK-MASQ (L10 break 2)',
  'no-endpoints-reject': 'filter KUBE-SERVICES / KUBE-EXTERNAL-SERVICES "... has no endpoints" -j REJECT',
  'forward-jump': 'filter FORWARD -j KUBE-FORWARD',
  'forward-mark-accept': 'KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT',
  'firewall-drop': 'kubelet KUBE-FIREWALL -m mark --mark 0x8000/0x8000 -j DROP and its INPUT/OUTPUT jumps',
} as const;

export type OmittableRule = keyof typeof OMITTABLE_RULES;

export interface ProxyOptions {
  era: ProxyEra;
  /** kube-proxy --cluster-cidr: adds `! -s <cidr> ... -j KUBE-MARK-MASQ` and the KUBE-FORWARD pod rules. */
  clusterCIDR?: string;
  omit?: (OmittableRule | `${OmittableRule}@${string}`)[];
  /** 'current': the nfacct counter matches (kube-proxy adds them only where the kernel has xt_nfacct). Default true. */
  nfacct?: boolean;
  /** 'current': NodePorts on 127.0.0.0/8 and the KUBE-FIREWALL localnet rule (route_localnet). Default true. */
  localhostNodePorts?: boolean;
  /** nftables: the service CIDRs (cluster-ips-check drops unallocated addresses in them). */
  serviceCIDRs?: string[];
  /** nftables: the node addresses that accept NodePort traffic. */
  nodeIPs?: string[];
  /** MASQUERADE --random-fully (kube-proxy adds it when iptables supports it; its tests' fake does not). */
  randomFully?: boolean;
}

/** A Service with every default filled in and its endpoints split, after validation. */
export interface ResolvedService {
  name: string;
  namespace: string;
  portName: string;
  clusterIP: string;
  port: number;
  protocol: ServiceProtocol;
  endpoints: {
    ip: string;
    port: number;
    /** 'ip:port', as kube-proxy hashes and DNATs it */ hostPort: string;
    local: boolean;
  }[];
  nodePort?: number;
  affinitySeconds?: number;
  type: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  externalIPs: string[];
  loadBalancerIPs: string[];
  sourceRanges: string[];
  externalLocal: boolean;
  healthCheckNodePort?: number;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
// Kubernetes object names (DNS-1123 labels). They also keep the rule comments free of quotes.
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isIPv4(s: string): boolean {
  return IPV4.test(s);
}

export function isIPv4Cidr(s: string): boolean {
  const [ip, len, ...rest] = s.split('/');
  return (
    rest.length === 0 && ip !== undefined && isIPv4(ip) && len !== undefined && /^\d+$/.test(len) && Number(len) <= 32
  );
}

function isPort(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** Validates a Service and fills in defaults; throws LabError naming the service and field at fault. */
export function resolveService(s: Service): ResolvedService {
  const namespace = s.namespace ?? 'default';
  const portName = s.portName ?? '';
  const where = `service ${namespace}/${s.name}${portName ? `:${portName}` : ''}`;
  const fail = (msg: string): never => {
    throw new LabError(`${where}: ${msg}`);
  };
  if (!DNS_LABEL.test(s.name)) fail(`name must be a DNS label (a-z, 0-9, '-'), got ${JSON.stringify(s.name)}`);
  if (!DNS_LABEL.test(namespace)) fail(`namespace must be a DNS label, got ${JSON.stringify(namespace)}`);
  if (portName !== '' && !DNS_LABEL.test(portName))
    fail(`portName must be a DNS label, got ${JSON.stringify(portName)}`);
  if (!isIPv4(s.clusterIP)) fail(`clusterIP must be an IPv4 address, got ${JSON.stringify(s.clusterIP)}`);
  if (!isPort(s.port)) fail(`port must be 1-65535, got ${s.port}`);
  if (s.protocol !== 'tcp' && s.protocol !== 'udp')
    fail(`protocol must be 'tcp' or 'udp', got ${JSON.stringify(s.protocol)}`);
  if (s.targetPort !== undefined && !isPort(s.targetPort)) fail(`targetPort must be 1-65535, got ${s.targetPort}`);
  const type = s.type ?? 'ClusterIP';
  if (type !== 'ClusterIP' && type !== 'NodePort' && type !== 'LoadBalancer')
    fail(`type must be ClusterIP, NodePort or LoadBalancer, got ${JSON.stringify(type)}`);
  if (s.nodePort !== undefined && !isPort(s.nodePort)) fail(`nodePort must be 1-65535, got ${s.nodePort}`);
  if (type === 'ClusterIP' && s.nodePort !== undefined)
    fail("nodePort is set but type is not 'NodePort' or 'LoadBalancer'");
  const ipList = (field: string, list: string[] | undefined, check: (x: string) => boolean): string[] => {
    if (list === undefined) return [];
    if (!Array.isArray(list)) fail(`${field} must be a list`);
    return list.map((x) => {
      const v = typeof x === 'string' ? x.trim() : x;
      if (typeof v !== 'string' || !check(v))
        fail(
          `${field}: ${JSON.stringify(x)} is not an IPv4 ${field === 'loadBalancerSourceRanges' ? 'CIDR' : 'address'}`,
        );
      return v as string;
    });
  };
  const externalIPs = ipList('externalIPs', s.externalIPs, isIPv4);
  const loadBalancerIPs = ipList('loadBalancerIPs', s.loadBalancerIPs, isIPv4);
  const sourceRanges = ipList('loadBalancerSourceRanges', s.loadBalancerSourceRanges, isIPv4Cidr);
  if (type !== 'LoadBalancer' && loadBalancerIPs.length > 0)
    fail("loadBalancerIPs are set but type is not 'LoadBalancer'");
  const policy = s.externalTrafficPolicy ?? 'Cluster';
  if (policy !== 'Cluster' && policy !== 'Local')
    fail(`externalTrafficPolicy must be Cluster or Local, got ${JSON.stringify(policy)}`);
  if (s.healthCheckNodePort !== undefined && !isPort(s.healthCheckNodePort))
    fail(`healthCheckNodePort must be 1-65535, got ${s.healthCheckNodePort}`);
  const seconds = s.sessionAffinity?.timeoutSeconds;
  if (seconds !== undefined && !(Number.isInteger(seconds) && seconds >= 1 && seconds <= 86400)) {
    fail(`sessionAffinity.timeoutSeconds must be an integer 1-86400, got ${seconds}`);
  }

  const seen = new Set<string>();
  if (!Array.isArray(s.endpoints)) fail('endpoints must be a list');
  const endpoints = s.endpoints.map((entry) => {
    const ep =
      typeof entry === 'string' ? entry : entry?.port !== undefined ? `${entry.address}:${entry.port}` : entry?.address;
    if (typeof ep !== 'string')
      fail(`endpoint must be an IPv4 address, 'ip:port' or {address}, got ${JSON.stringify(entry)}`);
    const [ip = '', portText, ...rest] = (ep as string).split(':');
    const port = portText === undefined ? (s.targetPort ?? s.port) : Number(portText);
    if (!isIPv4(ip) || rest.length > 0 || !isPort(port))
      fail(`endpoint must be an IPv4 address or 'ip:port', got ${JSON.stringify(ep)}`);
    const hostPort = `${ip}:${port}`;
    if (seen.has(hostPort)) fail(`endpoint ${hostPort} is listed twice`);
    seen.add(hostPort);
    return { ip, port, hostPort, local: typeof entry === 'object' && entry.local === true };
  });

  const externallyReachable = s.nodePort !== undefined || externalIPs.length > 0 || loadBalancerIPs.length > 0;
  const resolved: ResolvedService = {
    name: s.name,
    namespace,
    portName,
    clusterIP: s.clusterIP,
    port: s.port,
    protocol: s.protocol,
    endpoints,
    type,
    externalIPs,
    loadBalancerIPs,
    sourceRanges,
    externalLocal: policy === 'Local' && externallyReachable,
  };
  if (s.nodePort !== undefined) resolved.nodePort = s.nodePort;
  // kube-proxy serves the health check port only for LoadBalancers with Local policy.
  if (s.healthCheckNodePort !== undefined && type === 'LoadBalancer' && policy === 'Local')
    resolved.healthCheckNodePort = s.healthCheckNodePort;
  if (seconds !== undefined) resolved.affinitySeconds = seconds;
  return resolved;
}
