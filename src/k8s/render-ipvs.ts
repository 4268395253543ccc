// kube-proxy's IPVS mode, as the commands that build the same state by hand: every service
// address bound /32 on the dummy kube-ipvs0 (left DOWN), one IPVS virtual service per address and
// port with its scheduler (rr by default) and, for ClientIP affinity, persistence with the
// affinity timeout; real servers in masquerading (NAT) mode; the ipsets the iptables rules match
// (KUBE-CLUSTER-IP, KUBE-LOOP-BACK, KUBE-NODE-PORT-TCP/UDP, KUBE-EXTERNAL-IP, KUBE-LOAD-BALANCER);
// and the small set of iptables rules that stays constant whatever the number of Services.
// Rendered as text only: this machine's kernel has no ip_vs or dummy interfaces (the Debian VM has).

import { LabError } from '../errors.ts';
import type { ResolvedService } from './service.ts';

export interface IpvsOptions {
  clusterCIDR?: string;
  /** The node addresses NodePorts are served on (one virtual service each). */
  nodeIPs?: string[];
  /** kube-proxy --ipvs-scheduler (default rr). */
  scheduler?: string;
}

export interface IpvsRendered {
  /** ip and ipvsadm commands, one a line. */
  commands: string[];
  /** ipset restore input. */
  ipsets: string;
  /** iptables-restore input for nat and filter. */
  iptables: string;
}

export function renderIpvs(services: ResolvedService[], o: IpvsOptions = {}): IpvsRendered {
  const scheduler = o.scheduler ?? 'rr';
  const commands = ['ip link add kube-ipvs0 type dummy'];
  const bound = new Set<string>();
  const bind = (ip: string) => {
    if (!bound.has(ip)) commands.push(`ip addr add ${ip}/32 dev kube-ipvs0`);
    bound.add(ip);
  };
  const sets = {
    'KUBE-CLUSTER-IP': {
      type: 'hash:ip,port',
      comment: 'Kubernetes service cluster ip + port for masquerade purpose',
      members: [] as string[],
    },
    'KUBE-LOOP-BACK': {
      type: 'hash:ip,port,ip',
      comment: 'Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose',
      members: [] as string[],
    },
    'KUBE-EXTERNAL-IP': {
      type: 'hash:ip,port',
      comment: 'Kubernetes service external ip + port for masquerade and filter purpose',
      members: [] as string[],
    },
    'KUBE-LOAD-BALANCER': { type: 'hash:ip,port', comment: 'Kubernetes service lb portal', members: [] as string[] },
    'KUBE-NODE-PORT-TCP': {
      type: 'bitmap:port',
      comment: 'Kubernetes nodeport TCP port for masquerade purpose',
      members: [] as string[],
    },
    'KUBE-NODE-PORT-UDP': {
      type: 'bitmap:port',
      comment: 'Kubernetes nodeport UDP port for masquerade purpose',
      members: [] as string[],
    },
  };
  for (const s of services) {
    const where = `service ${s.namespace}/${s.name}${s.portName ? `:${s.portName}` : ''}`;
    // Local policy (local real servers only, KUBE-NODE-PORT-LOCAL-*) and source ranges (KUBE-LOAD-BALANCER-SOURCE-*) are not modelled.
    if (s.externalLocal)
      throw new LabError(`${where}: field "externalTrafficPolicy: Local" is not supported by the ipvs profile`);
    if (s.sourceRanges.length > 0)
      throw new LabError(`${where}: field "loadBalancerSourceRanges" is not supported by the ipvs profile`);
    const flag = s.protocol === 'tcp' ? '-t' : '-u';
    const persistence = s.affinitySeconds !== undefined ? ` -p ${s.affinitySeconds}` : '';
    const virtual = (ip: string, port: number) => {
      commands.push(`ipvsadm -A ${flag} ${ip}:${port} -s ${scheduler}${persistence}`);
      for (const ep of s.endpoints) commands.push(`ipvsadm -a ${flag} ${ip}:${port} -r ${ep.hostPort} -m -w 1`);
    };
    const member = (ip: string) => `${ip},${s.protocol}:${s.port}`;
    bind(s.clusterIP);
    virtual(s.clusterIP, s.port);
    sets['KUBE-CLUSTER-IP'].members.push(member(s.clusterIP));
    for (const ip of s.externalIPs) {
      bind(ip);
      virtual(ip, s.port);
      sets['KUBE-EXTERNAL-IP'].members.push(member(ip));
    }
    for (const ip of s.loadBalancerIPs) {
      bind(ip);
      virtual(ip, s.port);
      sets['KUBE-LOAD-BALANCER'].members.push(member(ip));
    }
    if (s.nodePort !== undefined) {
      for (const ip of o.nodeIPs ?? []) virtual(ip, s.nodePort);
      sets[s.protocol === 'tcp' ? 'KUBE-NODE-PORT-TCP' : 'KUBE-NODE-PORT-UDP'].members.push(String(s.nodePort));
    }
    for (const ep of s.endpoints) sets['KUBE-LOOP-BACK'].members.push(`${ep.ip},${s.protocol}:${ep.port},${ep.ip}`);
  }
  const ipsets =
    Object.entries(sets)
      .flatMap(([name, set]) => [
        `create ${name} ${set.type} ${set.type === 'bitmap:port' ? 'range 0-65535' : 'family inet hashsize 1024 maxelem 65536'} comment`,
        ...set.members.map((m) => `add ${name} ${m} comment "${set.comment}"`),
      ])
      .join('\n') + '\n';

  const masqCluster = o.clusterCIDR !== undefined ? ['!', '-s', o.clusterCIDR] : [];
  const nat = [
    '*nat',
    ':KUBE-SERVICES - [0:0]',
    ':KUBE-POSTROUTING - [0:0]',
    ':KUBE-NODE-PORT - [0:0]',
    ':KUBE-LOAD-BALANCER - [0:0]',
    ':KUBE-MARK-MASQ - [0:0]',
    '-I PREROUTING 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-I OUTPUT 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-I POSTROUTING 1 -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000',
    '-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE',
    ...(o.clusterCIDR !== undefined
      ? [
          `-A KUBE-SERVICES ${masqCluster.join(' ')} -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ`,
        ]
      : []),
    '-A KUBE-SERVICES -m comment --comment "Kubernetes service external ip + port for masquerade and filter purpose" -m set --match-set KUBE-EXTERNAL-IP dst,dst -j KUBE-MARK-MASQ',
    '-A KUBE-SERVICES -m comment --comment "Kubernetes service lb portal" -m set --match-set KUBE-LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER',
    '-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT',
    '-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT',
    '-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ',
    '-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port for masquerade purpose" -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ',
    '-A KUBE-NODE-PORT -p udp -m comment --comment "Kubernetes nodeport UDP port for masquerade purpose" -m set --match-set KUBE-NODE-PORT-UDP dst -j KUBE-MARK-MASQ',
    'COMMIT',
  ];
  const filter = [
    '*filter',
    ':KUBE-FORWARD - [0:0]',
    '-I FORWARD 1 -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    'COMMIT',
  ];
  return { commands, ipsets, iptables: [...filter, ...nat].join('\n') + '\n' };
}

/** The whole IPVS state as one shell script a person can read (and run on a kernel with ip_vs). */
export function ipvsScript(r: IpvsRendered): string {
  return (
    [
      '# kube-ipvs0 and the IPVS virtual services',
      ...r.commands,
      '# the ipsets (ipset restore)',
      "ipset restore <<'EOF'",
      r.ipsets.trimEnd(),
      'EOF',
      '# the constant iptables rules (iptables-restore --noflush)',
      "iptables-restore --noflush <<'EOF'",
      r.iptables.trimEnd(),
      'EOF',
    ].join('\n') + '\n'
  );
}
