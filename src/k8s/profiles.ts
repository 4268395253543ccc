// The kube-proxy release profiles nflab renders, their real version ranges, and the one a lab
// run uses. The CLI's --kube-proxy sets NFLAB_KUBE_PROXY before any lab file is loaded, and the
// Kubernetes labs read it with kubeProxyProfile() when they build their rules; the default is the
// articles' era, so handouts match the articles.

import { LabError } from '../errors.ts';

export const PROFILES = {
  blog: 'kube-proxy v1.8–v1.18, iptables mode (the articles\' era: %0.5f probabilities, --set-xmark, "ns/name:" hashes)',
  'v1.19': 'kube-proxy v1.19–v1.2x, iptables mode (--or-mark/--xor-mark, %0.10f, unnamed ports hash without ":")',
  current:
    'kube-proxy v1.30 and later, iptables mode (KUBE-EXT/KUBE-FW chains, masquerade rule in KUBE-SVC, "svc -> ip:port" comments)',
  nftables:
    'kube-proxy v1.33 and later, nftables mode (one ip kube-proxy table, verdict maps, numgen; unserved ports of a ClusterIP are rejected)',
} as const;

export type Profile = keyof typeof PROFILES;
export const PROFILE_NAMES = Object.keys(PROFILES) as Profile[];
export const DEFAULT_PROFILE: Profile = 'blog';
export const PROFILE_ENV = 'NFLAB_KUBE_PROXY';

export function parseProfile(name: string, where = '--kube-proxy'): Profile {
  if (!(PROFILE_NAMES as string[]).includes(name))
    throw new LabError(
      `${where}: unknown kube-proxy profile ${JSON.stringify(name)} (known: ${PROFILE_NAMES.join(', ')})`,
    );
  return name as Profile;
}

/** The profile this run renders its Kubernetes labs with (--kube-proxy; default 'blog'). */
export function kubeProxyProfile(): Profile {
  const name = process.env[PROFILE_ENV];
  return name === undefined || name === '' ? DEFAULT_PROFILE : parseProfile(name, PROFILE_ENV);
}

/** Picks a value per profile; a lab's profile-dependent text reads through this. */
export function perProfile<T>(values: Record<Profile, T>): T {
  return values[kubeProxyProfile()];
}

/** "current: kube-proxy v1.30 and later, …" for show and handouts. */
export function profileLabel(name: string): string {
  return name in PROFILES ? `${name}: ${PROFILES[name as Profile]}` : name;
}
