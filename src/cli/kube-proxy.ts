// `nflab kube-proxy render FILE… [--profile P] [--format restore|save]`: Kubernetes YAML (v1
// Services, discovery.k8s.io/v1 EndpointSlices) in, what kube-proxy writes out: its
// iptables-restore input, or what iptables-save shows afterwards. The same renderer the labs use.
// Also the --kube-proxy option every lab command takes.

import { readFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { LabError } from '../errors.ts';
import { PROFILE_ENV, PROFILE_NAMES, parseProfile } from '../k8s/profiles.ts';
import { renderKubeProxyRules, renderRulesAsSaved } from '../k8s/render-iptables.ts';
import type { ProxyOptions } from '../k8s/service.ts';
import { documentOf, servicesFromYaml } from '../k8s/yaml.ts';
import { nftLoadable, renderNftables } from '../k8s/render-nftables.ts';
import { ipvsScript, renderIpvs } from '../k8s/render-ipvs.ts';
import { resolveService, type Service } from '../k8s/service.ts';

interface RenderArgs {
  files: string[];
  serviceCidr?: string[];
  nodeIp?: string[];
  profile: string;
  format: string;
  clusterCidr?: string;
  nodeName?: string;
  nfacct: boolean;
  jumps: boolean;
  randomFully: boolean;
}

export function renderYaml(a: RenderArgs): string {
  const profile = a.profile === 'ipvs' ? 'ipvs' : parseProfile(a.profile, '--profile');
  const sources = a.files.map((name) => {
    try {
      return { name, text: readFileSync(name, 'utf8') };
    } catch (err) {
      throw new LabError(`${name}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  });
  const services = servicesFromYaml(sources, a.nodeName === undefined ? {} : { nodeName: a.nodeName });
  if (profile === 'nftables') return renderNftablesYaml(services, a);
  if (profile === 'ipvs') return renderIpvsYaml(services, a);
  const opts: ProxyOptions = {
    era: profile,
    nfacct: a.nfacct,
    randomFully: a.randomFully,
    ...(a.clusterCidr !== undefined && { clusterCIDR: a.clusterCidr }),
  };
  if (a.format === 'nft')
    throw new LabError(`--format nft: the ${profile} profile writes iptables rules; use --profile nftables`);
  let rendered;
  try {
    rendered = a.format === 'save' ? renderRulesAsSaved(services, opts) : renderKubeProxyRules(services, opts);
  } catch (err) {
    // The renderer names the service; say which document it came from.
    const culprit =
      err instanceof LabError
        ? services.find((s) => err.message.startsWith(`service ${s.namespace ?? 'default'}/${s.name}`))
        : undefined;
    const where = culprit && documentOf.get(culprit);
    throw where ? new LabError(`${where}: ${(err as Error).message}`) : err;
  }
  const text = rendered.filter + rendered.nat;
  return a.jumps
    ? text
    : text
        .split('\n')
        .filter((l) => !/^-[AI] (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) /.test(l))
        .join('\n');
}

function resolvedWithDocuments(services: Service[]) {
  return services.map((s) => {
    try {
      return resolveService(s);
    } catch (err) {
      const where = documentOf.get(s);
      throw where ? new LabError(`${where}: ${(err as Error).message}`) : err;
    }
  });
}

/** IPVS mode: the commands, ipsets and constant iptables rules, as one readable script. */
function renderIpvsYaml(services: Service[], a: RenderArgs): string {
  if (a.format !== 'restore')
    throw new LabError(
      `--format ${a.format}: the ipvs profile prints one script (ip, ipvsadm, ipset restore, iptables-restore); leave out --format`,
    );
  return ipvsScript(
    renderIpvs(resolvedWithDocuments(services), {
      ...(a.clusterCidr !== undefined && { clusterCIDR: a.clusterCidr }),
      nodeIPs: a.nodeIp ?? [],
    }),
  );
}

/** nftables mode: the `nft -f` transaction kube-proxy writes (in an order nft accepts). */
function renderNftablesYaml(services: Service[], a: RenderArgs): string {
  if (a.format === 'save')
    throw new LabError(
      '--format save: the nftables profile has no iptables-save view; use --format nft (load it with nft -f, read it back with nft list table ip kube-proxy)',
    );
  const resolved = resolvedWithDocuments(services);
  const opts = {
    era: 'current' as const,
    ...(a.clusterCidr !== undefined && { clusterCIDR: a.clusterCidr }),
    serviceCIDRs: a.serviceCidr ?? [],
    nodeIPs: a.nodeIp ?? [],
    fullyRandom: true,
  };
  return nftLoadable(renderNftables(resolved, opts));
}

export const kubeProxyCommand: CommandModule = {
  command: 'kube-proxy <action> <files..>',
  describe: 'render what kube-proxy writes for Kubernetes YAML (v1 Service, discovery.k8s.io/v1 EndpointSlice)',
  builder: (y: Argv) =>
    y
      .positional('action', { choices: ['render'] as const })
      .positional('files', {
        type: 'string',
        array: true,
        describe: 'YAML files, several documents each (kubectl get -o yaml)',
      })
      .option('profile', {
        choices: [...PROFILE_NAMES, 'ipvs'],
        default: 'current',
        describe: 'kube-proxy release profile (nftables: v1.33+ nftables mode; ipvs: IPVS mode, as a script)',
      })
      .option('format', {
        choices: ['restore', 'save', 'nft'] as const,
        default: 'restore',
        describe:
          'restore: what kube-proxy hands iptables-restore (nftables: its nft -f transaction); save: what iptables-save shows afterwards; nft: the nftables transaction',
      })
      .option('service-cidr', {
        type: 'string',
        array: true,
        describe: 'nftables: the service CIDRs (traffic to unallocated ClusterIPs in them is dropped)',
      })
      .option('node-ip', {
        type: 'string',
        array: true,
        describe: 'nftables, ipvs: the node addresses that accept NodePort traffic',
      })
      .option('cluster-cidr', {
        type: 'string',
        describe: 'the pod CIDR (kube-proxy --cluster-cidr): adds the "! -s CIDR … KUBE-MARK-MASQ" rules',
      })
      .option('node-name', {
        type: 'string',
        describe: "this node's name: endpoints with that nodeName are local (externalTrafficPolicy: Local)",
      })
      .option('nfacct', {
        type: 'boolean',
        default: true,
        describe: 'current: the nfacct counter matches (kube-proxy leaves them out where the kernel lacks xt_nfacct)',
      })
      .option('jumps', {
        type: 'boolean',
        default: true,
        describe: 'include the jump rules kube-proxy inserts into the built-in chains',
      })
      .option('random-fully', {
        type: 'boolean',
        default: false,
        describe: 'MASQUERADE --random-fully (what kube-proxy adds when iptables supports it)',
      }),
  handler: (a) => {
    process.stdout.write(renderYaml(a as unknown as RenderArgs));
  },
};

/** The global --kube-proxy option: which profile the Kubernetes labs render (set before labs load). */
export function withKubeProxyOption<T>(y: Argv<T>) {
  return y
    .option('kube-proxy', {
      choices: PROFILE_NAMES,
      describe: "kube-proxy release profile for the Kubernetes labs (default: blog, the articles' era)",
      global: true,
    })
    .middleware((a) => {
      if (typeof a.kubeProxy === 'string') process.env[PROFILE_ENV] = a.kubeProxy;
    });
}
