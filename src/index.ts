// What a lab file imports: `import { defineLab, cmd, ping, ... } from 'nflab'`.
export * from './lab/define.ts';
export type * from './lab/types.ts';
export { runIfMain } from './cli/run-if-main.ts';
// Generated topologies of any size (scale labs and benchmarks).
export * from './topology/generate.ts';
// kube-proxy labs: the Service model, the rules it renders, and the shared pod topology.
export {
  kubeProxyRules,
  kubeChains,
  kubeRules,
  ruleText,
  kubeRuleCommand,
  savedRuleLine,
  endpointChoices,
  nftChains,
  nftCommand,
  nftRules,
  nftAddRule,
  NFT_TABLE,
} from './k8s/lab-rules.ts';
export { kubeProxyProfile, perProfile, PROFILES } from './k8s/profiles.ts';
export * from './k8s/pod-topology.ts';
export { savedProbability } from './k8s/numbers.ts';
export type { Service, ProxyOptions } from './k8s/service.ts';
