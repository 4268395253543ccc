// IPv4 address arithmetic: CIDRs, addresses as numbers, subnets.
import { isIPv4 } from 'node:net';

export function parseCidr(text: string): { address: string; prefix: number } | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (!m || !isIPv4(m[1]!) || Number(m[2]) > 32) return undefined;
  return { address: m[1]!, prefix: Number(m[2]) };
}

export function ipToNumber(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

export function sameSubnet(a: string, b: string, prefix: number): boolean {
  if (prefix === 0) return true;
  const shift = 32 - prefix;
  return Math.floor(ipToNumber(a) / 2 ** shift) === Math.floor(ipToNumber(b) / 2 ** shift);
}
