#!/usr/bin/env -S node --import tsx
// Lab 10 (docs/labs.md#l9): kube-proxy's packet marks. KUBE-MARK-MASQ ORs 0x4000 into the packet
// mark, KUBE-POSTROUTING masquerades only marked packets and clears the bit with an XOR; the
// conntrack mark is a different thing, set only by CONNMARK; KUBE-MARK-DROP marks for KUBE-FIREWALL.
import { cmd, conntrack, defineLab, output, path, ping, policy, restore, rule, runIfMain } from 'nflab';

const MASQ_MARK = 0x4000;
/** The rules of docs/labs.md#l9, as kube-proxy (after PR #92035) writes them: only c1 is marked. */
const KUBE_RULES = `*nat
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
-A PREROUTING -s 10.55.66.2/32 -j KUBE-MARK-MASQ
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
COMMIT`;

const fromC1 = ping('c1', '198.51.100.8');
const fromC2 = ping('c2', '198.51.100.8');
const icmpFrom = (src: string) => path('host', { proto: 'icmp', src, dst: '198.51.100.8' });

export default defineLab({
  id: '10',
  title: 'Packet marks: KUBE-MARK-MASQ, KUBE-POSTROUTING, CONNMARK and KUBE-MARK-DROP',
  summary:
    'kube-proxy marks the packets it wants masqueraded (MARK --or-mark 0x4000) and masquerades only those in POSTROUTING, clearing the bit with --xor-mark. iptables saves both as --set-xmark. c1 is marked and reaches the outside; c2 is not and gets no answer. The conntrack mark stays 0 until CONNMARK --save-mark copies the packet mark; a second bit (0x8000) marks packets for KUBE-FIREWALL to drop.',
  source: {
    title:
      'kubernetes PR #92035 (unmark packets before masquerading them); Linux防火墙iptables中mark模块分析及编写; kube-proxy iptables proxier',
    url: 'https://github.com/kubernetes/kubernetes/pull/92035',
    spec: 'L9',
  },
  topology: {
    nodes: {
      host: {
        role: 'host',
        sysctls: { 'net.ipv4.ip_forward': 1, 'net.bridge.bridge-nf-call-iptables': 1 },
        routes: [{ to: 'default', via: '10.0.2.2' }],
      },
      c1: { role: 'container', routes: [{ to: 'default', via: '10.55.66.1' }] },
      c2: { role: 'container', routes: [{ to: 'default', via: '10.55.66.1' }] },
      // The outside host has no route back to 10.55.66.0/24: only masqueraded packets get answers.
      ext: { role: 'outside', addresses: { lo: ['198.51.100.8/32'] } },
    },
    bridges: { hwchiu0: { node: 'host', addresses: ['10.55.66.1/24'] } },
    links: [
      {
        a: { node: 'c1', name: 'eth0', addresses: ['10.55.66.2/24'] },
        b: { node: 'host', name: 'veth0', bridge: 'hwchiu0' },
      },
      {
        a: { node: 'c2', name: 'eth0', addresses: ['10.55.66.3/24'] },
        b: { node: 'host', name: 'veth1', bridge: 'hwchiu0' },
      },
      {
        a: { node: 'host', name: 'eth0', addresses: ['10.0.2.15/24'] },
        b: { node: 'ext', name: 'eth0', addresses: ['10.0.2.2/24'] },
      },
    ],
    setup: [cmd('host', 'iptables -P FORWARD ACCEPT')],
  },
  steps: [
    {
      title: "Load kube-proxy's mark rules: --or-mark and --xor-mark come back as --set-xmark",
      teaches:
        'MARK computes new = (old AND NOT mask) XOR value. --or-mark 0x4000 is --set-xmark 0x4000/0x4000 (clear the bit, then set it); --xor-mark 0x4000 is --set-xmark 0x4000/0x0 (flip it). iptables-save prints only the --set-xmark form; iptables -L prints "MARK or" and "MARK xor".',
      run: [restore('host', KUBE_RULES)],
      expect: [
        output('host', 'iptables-save -t nat').includes(
          '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
          '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
          '-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0',
          '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
        ),
        output('host', 'iptables -t nat -L -n').includes(
          'MARK or 0x4000',
          'MARK xor 0x4000',
          'mark match ! 0x4000/0x4000',
          'random-fully',
        ),
      ],
    },
    {
      title: 'c1 is marked, so it is masqueraded and reaches the outside',
      teaches:
        "c1's echo request enters KUBE-MARK-MASQ in nat PREROUTING and leaves with mark 0x4000; in KUBE-POSTROUTING the RETURN rule does not match, the XOR clears the bit and MASQUERADE translates. The conntrack entry's own mark stays 0: MARK sets the packet mark only.",
      expect: [
        fromC1.succeeds(),
        // Written as --or-mark / --xor-mark and compared numerically with the saved --set-xmark form.
        rule('host', 'nat KUBE-MARK-MASQ', '-j MARK --or-mark 0x4000').delta(
          { packets: 1, bytes: 84 },
          "the MARK --or-mark rule (saved as --set-xmark 0x4000/0x4000) counts c1's flow",
        ),
        rule('host', 'nat KUBE-POSTROUTING', '-j MARK --xor-mark 0x4000').delta(
          { packets: 1, bytes: 84 },
          'the MARK --xor-mark rule (saved as --set-xmark 0x4000/0x0) counts it',
        ),
        rule('host', 'nat KUBE-POSTROUTING', '-j MASQUERADE --random-fully').delta(
          { packets: 1, bytes: 84 },
          'MASQUERADE counts it',
        ),
        icmpFrom('10.55.66.2').through(
          [
            'nat PREROUTING: KUBE-MARK-MASQ',
            'nat KUBE-MARK-MASQ: MARK',
            'nat POSTROUTING: KUBE-POSTROUTING',
            'nat KUBE-POSTROUTING: MARK',
            'nat KUBE-POSTROUTING: MASQUERADE',
          ],
          {
            notThrough: ['nat KUBE-POSTROUTING: RETURN'],
            description:
              "c1's echo request: PREROUTING → KUBE-MARK-MASQ (MARK), then POSTROUTING → KUBE-POSTROUTING: MARK (xor), MASQUERADE; no RETURN",
          },
        ),
        conntrack('host', {
          proto: 'icmp',
          orig: { src: '10.55.66.2', dst: '198.51.100.8' },
          reply: { src: '198.51.100.8', dst: '10.0.2.15' },
          mark: 0,
        }).count(1, "conntrack: c1's flow translated to 10.0.2.15, with mark=0"),
      ],
    },
    {
      title: 'c2 is not marked: KUBE-POSTROUTING returns early and the echo request leaves untranslated',
      teaches:
        'Without the 0x4000 bit, the RETURN rule ends KUBE-POSTROUTING before MASQUERADE. The request leaves with source 10.55.66.3, which the outside host cannot answer.',
      expect: [
        fromC2.fails(),
        // At least: the host's own IGMP reports on hwchiu0 (40 bytes) are unmarked too (docs/labs.md#l9 saw "2 124").
        rule('host', 'nat KUBE-POSTROUTING', '-m mark ! --mark 0x4000/0x4000 -j RETURN').delta(
          { packets: { min: 1 } },
          "the RETURN rule counts c2's flow (and any other unmarked new flow)",
        ),
        rule('host', 'nat KUBE-POSTROUTING', '-j MASQUERADE --random-fully').delta(
          { packets: 0 },
          'MASQUERADE counts nothing',
        ),
        icmpFrom('10.55.66.3').through(['nat POSTROUTING: KUBE-POSTROUTING', 'nat KUBE-POSTROUTING: RETURN'], {
          notThrough: ['nat PREROUTING: KUBE-MARK-MASQ', 'nat KUBE-POSTROUTING: MASQUERADE'],
          description: "c2's echo request: no KUBE-MARK-MASQ, and KUBE-POSTROUTING returns before MASQUERADE",
        }),
        conntrack('host', {
          proto: 'icmp',
          orig: { src: '10.55.66.3', dst: '198.51.100.8' },
          reply: { src: '198.51.100.8', dst: '10.55.66.3' },
        }).count(1, "conntrack: c2's flow [UNREPLIED], its reply tuple still names 10.55.66.3"),
      ],
    },
    {
      title: 'CONNMARK --save-mark copies the packet mark into conntrack',
      teaches:
        'Inserted before the XOR, CONNMARK --save-mark stores the packet mark (0x4000) in the conntrack entry: conntrack now shows mark=16384. (Inserted after the XOR it would save 0.)',
      run: [cmd('host', 'iptables -t nat -I KUBE-POSTROUTING 2 -j CONNMARK --save-mark')],
      expect: [
        fromC1.succeeds(),
        conntrack('host', { proto: 'icmp', orig: { src: '10.55.66.2', dst: '198.51.100.8' }, mark: MASQ_MARK }).count(
          1,
          "c1's new flow carries mark=16384 (0x4000)",
        ),
        icmpFrom('10.55.66.2').through(
          ['nat KUBE-POSTROUTING: CONNMARK', 'nat KUBE-POSTROUTING: MARK', 'nat KUBE-POSTROUTING: MASQUERADE'],
          { description: "c1's echo request meets CONNMARK before the XOR" },
        ),
      ],
    },
    {
      title: 'KUBE-MARK-DROP and KUBE-FIREWALL: a second bit marks packets to drop',
      teaches:
        'kube-proxy marks packets to drop with 0x8000 in nat PREROUTING and drops them in filter FORWARD through KUBE-FIREWALL, which matches the bit.',
      run: [
        cmd('host', 'iptables -t nat -N KUBE-MARK-DROP'),
        cmd('host', 'iptables -t nat -A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000'),
        cmd('host', 'iptables -t filter -N KUBE-FIREWALL'),
        cmd('host', 'iptables -t filter -A KUBE-FIREWALL -m mark --mark 0x8000/0x8000 -j DROP'),
        cmd('host', 'iptables -t filter -I FORWARD -j KUBE-FIREWALL'),
        cmd('host', 'iptables -t nat -I PREROUTING -s 10.55.66.3/32 -j KUBE-MARK-DROP'),
      ],
      expect: [
        fromC2.fails(),
        rule('host', 'filter KUBE-FIREWALL', '-m mark --mark 0x8000/0x8000 -j DROP').delta(
          { packets: 1, bytes: 84 },
          "the KUBE-FIREWALL DROP rule counts c2's echo request (1 packet, 84 bytes)",
        ),
        policy('host', 'filter FORWARD').delta({ packets: 0 }, 'nothing reaches the FORWARD policy'),
        icmpFrom('10.55.66.3').through(
          [
            'nat PREROUTING: KUBE-MARK-DROP',
            'nat KUBE-MARK-DROP: MARK',
            'nat PREROUTING: policy ACCEPT',
            'filter FORWARD: KUBE-FIREWALL',
            'filter KUBE-FIREWALL: DROP',
          ],
          {
            exact: true,
            description:
              "c2's echo request: marked in nat PREROUTING (the chain then accepts it), dropped in KUBE-FIREWALL, never reaches POSTROUTING",
          },
        ),
      ],
    },
  ],
});

runIfMain(import.meta.url);
