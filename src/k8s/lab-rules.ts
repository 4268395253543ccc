// What a kube-proxy lab needs from the renderer: the commands that load a Service set's rules into
// the node, the chain names kube-proxy computed for them, and single rules to delete or add back
// (the "break, then fix" steps) or to point counter checks at.
import type { Command, KubeProxySpec } from '../lab/types.ts';
import { restore } from '../lab/define.ts';
import { LabError } from '../errors.ts';
import {
  buildKubeProxyRules,
  renderKubeProxyRules,
  renderRulesAsSaved,
  savedArgs,
  type KubeRule,
  type RuleTable,
} from './render-iptables.ts';
import { nftLoadable, nftNames, renderNftables, withCounters } from './render-nftables.ts';
import { resolveService } from './service.ts';
import { savedWordOrder } from './saved-order.ts';
import type { OmittableRule, ProxyOptions } from './service.ts';

/** A lab's options as rendered on a test node: without nfacct counters unless asked (many kernels lack xt_nfacct; kube-proxy then leaves them out too). */
function labOptions(spec: KubeProxySpec): ProxyOptions {
  return { nfacct: false, ...spec.options };
}

/** The nft transaction a lab loads: kube-proxy's, with a counter in each rule that acts (withCounters). */
function nftTransaction(spec: KubeProxySpec): string {
  const resolved = spec.services.map(resolveService);
  return withCounters(
    nftLoadable(
      renderNftables(resolved, {
        ...spec.options,
        serviceCIDRs: spec.options.serviceCIDRs ?? [],
        nodeIPs: spec.options.nodeIPs ?? [],
      }),
    ),
  );
}

/** Validates the spec for its profile (LabError naming the service and field). */
export function checkKubeProxySpec(spec: KubeProxySpec): void {
  if (spec.options.era === 'nftables') nftTransaction(spec);
  else buildKubeProxyRules(spec.services, labOptions(spec));
}

/** What `nflab show` prints: a heading and the rules as the node lists them back. */
export function shownKubeProxyRules(spec: KubeProxySpec): { heading: string; text: string } {
  if (spec.options.era === 'nftables')
    return { heading: `kube-proxy's nftables transaction on ${spec.node} (\`nft -f\`)`, text: nftTransaction(spec) };
  const saved = renderRulesAsSaved(spec.services, labOptions(spec));
  return {
    heading: `kube-proxy's rules on ${spec.node}, as \`iptables-save\` prints them`,
    text: saved.nat + saved.filter,
  };
}

/** The command that loads the spec's rules on its node: `iptables-restore --noflush`, or `nft -f -` for nftables. */
export function kubeProxyRules(spec: KubeProxySpec): Command[] {
  if (spec.options.era === 'nftables')
    return [{ node: spec.node, argv: ['nft', '-f', '-'], stdin: nftTransaction(spec) }];
  const rendered = renderKubeProxyRules(spec.services, labOptions(spec));
  return [restore(spec.node, rendered.nat + rendered.filter)];
}

/** The chains of one Service: its KUBE-SVC chain and the KUBE-SEP chain of each endpoint IP. */
export function kubeChains(spec: KubeProxySpec, serviceName: string): { svc: string; sep: Record<string, string> } {
  const set = buildKubeProxyRules(spec.services, labOptions(spec));
  const found = set.services.find((s) => s.service.name === serviceName);
  if (!found)
    throw new LabError(
      `kubeChains: no service ${JSON.stringify(serviceName)} (known: ${set.services.map((s) => s.service.name).join(', ')})`,
    );
  return { svc: found.svc, sep: Object.fromEntries(found.seps.map((e) => [e.ip, e.chain])) };
}

/** nftables mode: the table a lab's counter checks name (`rule(node, \`${NFT_TABLE} <chain>\`, words)`). */
export const NFT_TABLE = 'ip kube-proxy';

/** nftables mode: one Service's chains and affinity sets, by endpoint IP. */
export function nftChains(
  spec: KubeProxySpec,
  serviceName: string,
): { service: string; external: string; endpoint: Record<string, string>; affinity: Record<string, string> } {
  const s = spec.services.find((x) => x.name === serviceName);
  if (!s)
    throw new LabError(
      `nftChains: no service ${JSON.stringify(serviceName)} (known: ${spec.services.map((x) => x.name).join(', ')})`,
    );
  const resolved = resolveService(s);
  const names = nftNames(resolved);
  return {
    service: names.service,
    external: names.external,
    endpoint: Object.fromEntries(resolved.endpoints.map((e) => [e.ip, names.endpoint(e)])),
    affinity: Object.fromEntries(resolved.endpoints.map((e) => [e.ip, names.affinity(e)])),
  };
}

/** nftables mode: the rules of one chain as the lab loads them (with counters), each as the words
 * after `add rule ip kube-proxy CHAIN`: to add a rule back after a step flushed its chain. */
export function nftRules(spec: KubeProxySpec, chain: string): string[] {
  const prefix = `add rule ${NFT_TABLE} ${chain} `;
  const rules = nftTransaction(spec)
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length));
  if (rules.length === 0) throw new LabError(`nftRules: no rule in chain ${JSON.stringify(chain)}`);
  return rules;
}

/** nftables mode: `nft add rule ip kube-proxy CHAIN <rule>` for one of nftRules' rules. */
export function nftAddRule(node: string, chain: string, rule: string): Command {
  return nftCommand(node, 'add', 'rule', ...NFT_TABLE.split(' '), chain, ...rule.split(' '));
}

/** nftables mode: `nft <words…>` on the node, as an argv command (e.g. flush a chain, add a rule). */
export function nftCommand(node: string, ...words: string[]): Command {
  return { node, argv: ['nft', ...words] };
}

export interface RuleSelector {
  chain?: string;
  /** An omittable rule id (service.ts OMITTABLE_RULES), optionally narrowed by `scope`. */
  id?: OmittableRule;
  /** A service name, namespace/name or endpoint IP the rule belongs to. */
  scope?: string;
}

/**
 * Rules of one table, in kube-proxy's order, picked from the *complete* rule set (the spec's
 * omissions ignored), so a lab can add back a rule it started without. Throws if none matches.
 */
export function kubeRules(spec: KubeProxySpec, table: RuleTable, select: RuleSelector = {}): KubeRule[] {
  const set = buildKubeProxyRules(spec.services, { ...labOptions(spec), omit: [] });
  // 'current' rules are written in kube-proxy's word order (-m tcp -p tcp -d …); a lab gets them in
  // iptables-save's, which is also valid input and what its counter checks read back.
  const asSaved =
    spec.options.era === 'current'
      ? (r: KubeRule): KubeRule => ({ ...r, args: savedWordOrder(r.args), written: r.args })
      : (r: KubeRule) => r;
  const rules = set[table].rules
    .map(asSaved)
    .filter(
      (r) =>
        (select.chain === undefined || r.chain === select.chain) &&
        (select.id === undefined || r.id === select.id) &&
        (select.scope === undefined || (r.scopes ?? []).includes(select.scope)),
    );
  if (rules.length === 0) throw new LabError(`kubeRules: no ${table} rule matches ${JSON.stringify(select)}`);
  return rules;
}

/** The rule's words as kube-proxy writes them (comment quoted), for rule()/rules() checks. */
export function ruleText(rule: KubeRule): string {
  return rule.args.map((w, i) => (rule.args[i - 1] === '--comment' ? JSON.stringify(w) : w)).join(' ');
}

/** The rule as iptables-save prints it: `-A CHAIN words…` (for output(...).includes checks). */
export function savedRuleLine(rule: KubeRule): string {
  return `-A ${rule.chain} ${ruleText({ ...rule, args: savedArgs(rule.args) })}`;
}

/** Only the rules that pick an endpoint (`-j KUBE-SEP-…`, no affinity look-up): a KUBE-SVC chain's random choice. */
export function endpointChoices(rules: KubeRule[]): KubeRule[] {
  return rules.filter(
    (r) => r.args.at(-2) === '-j' && (r.args.at(-1) ?? '').startsWith('KUBE-SEP-') && r.id !== 'affinity-rcheck',
  );
}

/** `iptables -t <table> -A|-D|-I <chain> <args>` for one rendered rule, as an argv command. */
export function kubeRuleCommand(node: string, table: RuleTable, op: '-A' | '-D' | '-I', rule: KubeRule): Command {
  // As kube-proxy wrote it: `iptables -D` with the saved spelling of some matches (-m recent's
  // explicit --rsource) finds no rule.
  return { node, argv: ['iptables', '-t', table, op, rule.chain, ...(rule.written ?? rule.args)] };
}
