// A normaliser for iptables-restore text in the sort order kube-proxy's own test documents
// (pkg/proxy/iptables/proxier_test.go, sortIPTablesRules): kube-proxy walks Services in map order,
// so its test sorts before comparing while keeping the order that matters.
//   - tables by name;
//   - chains: KUBE-NODEPORTS, then KUBE-SERVICES, then other KUBE-* chains, then the rest, each
//     group by name;
//   - the rules of each chain keep their order, except KUBE-NODEPORTS and KUBE-SERVICES (both
//     tables), stably sorted by the service name in their comment (the text before the first space
//     or ':'), with nat KUBE-SERVICES' "must be the last rule" rule kept last.
// Rules inserted into built-in chains (`-I`) are kube-proxy's jumps, not part of its restore input,
// and are left out.

export interface DumpRule {
  chain: string;
  /** The rule's words after `-A CHAIN`, as written (comment quoting kept). */
  text: string;
  comment?: string;
}

export interface DumpTable {
  name: string;
  chains: string[];
  rules: DumpRule[];
}

function commentOf(text: string): string | undefined {
  const m = /--comment\s+("([^"]*)"|(\S+))/.exec(text);
  return m ? (m[2] ?? m[3]) : undefined;
}

/** Parses `*table`, `:CHAIN`, `-A CHAIN …` and `COMMIT` lines; anything else is an error. */
export function parseRestore(text: string): DumpTable[] {
  const tables: DumpTable[] = [];
  let current: DumpTable | undefined;
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fail = (): never => {
      throw new Error(`line ${n + 1}: cannot parse ${JSON.stringify(line)}`);
    };
    if (line.startsWith('*')) {
      current = { name: line.slice(1), chains: [], rules: [] };
      tables.push(current);
    } else if (line === 'COMMIT') {
      current = undefined;
    } else if (!current) {
      fail();
    } else if (line.startsWith(':')) {
      current.chains.push(line.slice(1).split(/\s+/)[0] as string);
    } else if (line.startsWith('-A ')) {
      const [, chain = '', ...rest] = line.split(' ');
      const ruleText = rest.join(' ');
      const comment = commentOf(ruleText);
      current.rules.push({ chain, text: ruleText, ...(comment !== undefined && { comment }) });
    } else if (line.startsWith('-I ')) {
      continue;
    } else {
      fail();
    }
  }
  return tables;
}

function serviceNameOf(rule: DumpRule): string | undefined {
  if (rule.comment === undefined) return undefined;
  const i = rule.comment.search(/[ :]/);
  return i < 0 ? rule.comment : rule.comment.slice(0, i);
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function chainRank(name: string): number {
  if (name === 'KUBE-NODEPORTS') return 0;
  if (name === 'KUBE-SERVICES') return 1;
  return name.startsWith('KUBE-') ? 2 : 3;
}

/** The upstream test's order (see the header). Returns the tables with chains and rules sorted. */
export function sortLikeKubeProxyTests(tables: DumpTable[]): DumpTable[] {
  return [...tables]
    .sort((a, b) => byName(a.name, b.name))
    .map((t) => {
      const chains = [...new Set(t.chains)].sort((a, b) => chainRank(a) - chainRank(b) || byName(a, b));
      const rules = chains.flatMap((chain) => {
        const own = t.rules.filter((r) => r.chain === chain);
        if (chain !== 'KUBE-NODEPORTS' && chain !== 'KUBE-SERVICES') return own;
        const last = (r: DumpRule) =>
          t.name === 'nat' && chain === 'KUBE-SERVICES' && (r.comment ?? '').includes('must be the last rule') ? 1 : 0;
        // Array.prototype.sort is stable; rules without a comment keep their place among equals.
        return [...own].sort((a, b) => last(a) - last(b) || byName(serviceNameOf(a) ?? '', serviceNameOf(b) ?? ''));
      });
      return { name: t.name, chains, rules };
    });
}

/** Prints tables back as iptables-restore text. */
export function printRestore(tables: DumpTable[]): string {
  return (
    tables
      .map((t) =>
        [
          `*${t.name}`,
          ...t.chains.map((c) => `:${c} - [0:0]`),
          ...t.rules.map((r) => `-A ${r.chain} ${r.text}`),
          'COMMIT',
        ].join('\n'),
      )
      .join('\n') + '\n'
  );
}

/** Every `-A` rule of the text as `table CHAIN words`, one string each (what the figures count). */
export function ruleLines(tables: DumpTable[]): string[] {
  return tables.flatMap((t) => t.rules.map((r) => `${t.name} -A ${r.chain} ${r.text}`));
}
