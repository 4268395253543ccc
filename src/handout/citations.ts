// A lab's text cites kernel facts as "(G1)" or "(G5, G6)" and names its note of docs/labs.md in
// `source.spec`. A handout travels without the repository, so it prints each cited fact in full
// (from this table, a short form of docs/kernel-facts.md) and links the citation to it.

/** The facts of docs/kernel-facts.md, one or two sentences each. */
export const KERNEL_FACTS: Record<string, { title: string; text: string }> = {
  G1: {
    title: 'conntrack starts lazily in each network namespace',
    text: 'A fresh namespace tracks no connections: conntrack -L stays empty and the nat chains are not traversed at all until the namespace holds a rule that needs conntrack (a NAT target, or a -m conntrack / -m state match). Docker and kube-proxy hosts always have one.',
  },
  G2: {
    title: '-j LOG prints nothing inside a namespace',
    text: 'With net.netfilter.nf_log_all_netns=0 (the default, machine-wide) a LOG rule in a namespace other than the initial one writes nothing; its counter still grows. Rule counters and nftables packet traces work per namespace.',
  },
  G3: {
    title: "never rely on a new namespace's defaults",
    text: 'Sysctls such as net.bridge.bridge-nf-call-iptables and net.ipv4.ip_forward start with values that differ between kernels; labs set every one they depend on.',
  },
  G4: {
    title: 'error texts differ between versions',
    text: 'iputils 20221126 prints "ping: connect: Network is unreachable", older versions "connect: Network is unreachable"; checks match "Network is unreachable".',
  },
  G5: {
    title: 'iptables prints statistic probabilities in its own rounding',
    text: 'The kernel keeps a probability in steps of 2^-31 and iptables-save prints 11 decimals: 0.33333 comes back as 0.33332999982, 0.5 as 0.50000000000. Compare as numbers (±1e-4), not as strings.',
  },
  G6: {
    title: 'iptables prints MARK in its own form',
    text: '--or-mark 0x4000 is saved as --set-xmark 0x4000/0x4000 (listed "MARK or 0x4000"); --xor-mark 0x4000 as --set-xmark 0x4000/0x0 ("MARK xor 0x4000").',
  },
  G7: {
    title: 'ebtables-nft has no broute table and zeroing can fail',
    text: 'ebtables-nft 1.8.9 has no broute table, and ebtables -Z fails on some chains; read counter deltas instead.',
  },
  G8: {
    title: "curl's exit status tells a refusal from a silent drop",
    text: 'Exit status 7: the connection was refused (an RST came back); 28: a timeout (the SYN was dropped or went nowhere).',
  },
  G9: {
    title: 'NAT rules count connections, not packets',
    text: "Only the first packet of a connection traverses the nat table; conntrack applies the mapping to the rest, so a NAT rule's counter grows by one per connection (a SYN that is dropped is new each time it is retransmitted).",
  },
  G10: {
    title: 'the articles used Docker containers',
    text: 'The originals ran privileged Docker containers with --network=none; nflab uses namespaces by default and Docker containers with --nodes docker, with the same verdicts.',
  },
  G11: {
    title: 'old kernels needed modules loaded by hand',
    text: 'Kernels 4.4 and 4.15 needed modprobe iptable_nat and br_netfilter; on 6.x they are built in or loaded on demand.',
  },
};

/** Where the full text lives, for the reader who has nflab. */
export const FACTS_DOC = 'docs/kernel-facts.md';
export const LABS_DOC = 'docs/labs.md';

const CITATION = /\((G\d+(?:, G\d+)*)\)/g;

/** The facts a text cites, in order of first citation. */
export function citedFacts(texts: string[]): string[] {
  const ids: string[] = [];
  for (const t of texts)
    for (const m of t.matchAll(CITATION))
      for (const id of m[1]!.split(', ')) if (KERNEL_FACTS[id] && !ids.includes(id)) ids.push(id);
  return ids;
}

/** Anchor of a fact inside a handout. */
export const factAnchor = (id: string) => `fact-${id.toLowerCase()}`;

/**
 * Splits a text at its citations: plain pieces and cited fact ids, so each format links them its
 * own way (a citation of an unknown id stays text).
 */
export function splitCitations(text: string): Array<{ text: string } | { fact: string }> {
  const out: Array<{ text: string } | { fact: string }> = [];
  let last = 0;
  for (const m of text.matchAll(CITATION)) {
    const ids = m[1]!.split(', ');
    if (!ids.every((id) => KERNEL_FACTS[id])) continue;
    out.push({ text: text.slice(last, m.index! + 1) });
    ids.forEach((id, i) => {
      if (i > 0) out.push({ text: ', ' });
      out.push({ fact: id });
    });
    last = m.index! + m[0].length - 1;
  }
  out.push({ text: text.slice(last) });
  return out.filter((p) => !('text' in p) || p.text !== '');
}
