// kube-proxy's per-service and per-endpoint chain names. iptables chain names are limited to 28
// characters, so kube-proxy names them by a hash: the first 16 characters of the standard RFC 4648
// base32 (alphabet A-Z2-7) encoding of sha256(servicePortName + protocol [+ endpoint]),
// protocol lower-case, endpoint 'ip:port'. Reproduces the blog's KUBE-SVC-3FL7SSXCKTCXAYCR
// (default/k8s-nginx-cluster:, tcp) and KUBE-SEP-7MBJVYFMXTKOJUKD (… 10.244.0.88:80).

import { createHash } from 'node:crypto';
import type { ProxyEra, ResolvedService, ServiceProtocol } from './service.ts';

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 without the '=' padding (never reached: only a 16-character prefix is used). */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

function hash16(text: string): string {
  return base32(createHash('sha256').update(text).digest()).slice(0, 16);
}

/**
 * kube-proxy's ServicePortName string, which is both the hash input and the rule comment.
 * 'blog' (v1.8–v1.18): "namespace/name:portName", so an unnamed port leaves a trailing ':'
 * ("default/k8s-nginx-cluster:"). Later releases drop the ':' when the port has no name, which
 * changes every hash; so the 'v1.19' and 'current' profiles return `namespace/name` there.
 */
export function servicePortName(
  s: Pick<ResolvedService, 'namespace' | 'name' | 'portName'>,
  era: ProxyEra = 'blog',
): string {
  switch (era) {
    case 'blog':
      return `${s.namespace}/${s.name}:${s.portName}`;
    case 'v1.19': // from v1.19 an unnamed port is just "namespace/name"
    case 'current':
    case 'nftables':
      return s.portName === '' ? `${s.namespace}/${s.name}` : `${s.namespace}/${s.name}:${s.portName}`;
    default: {
      const unknown: never = era;
      throw new Error(`unknown kube-proxy era ${String(unknown)}`);
    }
  }
}

/** KUBE-SVC-<hash(servicePortName + protocol)>. */
export function serviceChainName(portName: string, protocol: ServiceProtocol): string {
  return `KUBE-SVC-${hash16(portName + protocol)}`;
}

/** KUBE-SEP-<hash(servicePortName + protocol + 'ip:port')>. */
export function endpointChainName(portName: string, protocol: ServiceProtocol, endpoint: string): string {
  return `KUBE-SEP-${hash16(portName + protocol + endpoint)}`;
}

export interface ServiceChains {
  /** The ServicePortName string, e.g. "default/k8s-nginx-cluster:". */
  portName: string;
  svc: string;
  /** One per endpoint, in the service's endpoint order. */
  seps: { endpoint: string; ip: string; chain: string }[];
}

/** Every chain name kube-proxy would create for one resolved service port. */
export function chainsOf(s: ResolvedService, era: ProxyEra = 'blog'): ServiceChains {
  const portName = servicePortName(s, era);
  return {
    portName,
    svc: serviceChainName(portName, s.protocol),
    seps: s.endpoints.map((ep) => ({
      endpoint: ep.hostPort,
      ip: ep.ip,
      chain: endpointChainName(portName, s.protocol, ep.hostPort),
    })),
  };
}
