// `nflab export`: a lab as one standalone bash script, for machines without Node. It builds the
// same topology with the same commands as the engine (src/topology/plan.ts, src/engine/sandbox.ts),
// runs the same steps in order, checks in shell what can be checked there, prints PASS/FAIL per
// check with the check's description, and always tears down. Every lab word is quoted with
// quoteWord; only the script's own variables (${NS[node]}, $WORK) are left to bash.
import { readFileSync } from 'node:fs';
import type { Check, Command, DriverKind, Lab, Step, Traffic } from '../lab/types.ts';
import { quoteWord as q, shellQuote } from '../exec/quote.ts';
import { resolveLab, type ResolvedLab } from '../resolve/resolve-lab.ts';
import { planLines } from '../resolve/plan-display.ts';
import { quotedHeredoc } from './heredoc.ts';
import { describeCheck, moduleOf } from '../check/registry.ts';
import { NotInStep, type ExportIds } from '../check/kind.ts';
import { distinctRequests, requestKey } from '../check/observations.ts';
import { stepRequests, stepTraffic } from '../check/step-needs.ts';
import { pingArgv, tcpArgv, trafficKey, udpArgv } from '../traffic/run.ts';
import { reachTargets } from '../traffic/reach.ts';

const LIBRARY = readFileSync(new URL('./library.sh', import.meta.url), 'utf8');
/** Same marker and loop as src/traffic/run.ts: many connections in one shell inside the node. */
const MARK = '@@nflab-connection-end rc=';
const TOOLS = [
  'ip',
  'bridge',
  'iptables',
  'iptables-save',
  'tcpdump',
  'conntrack',
  'ping',
  'socat',
  'sysctl',
  'awk',
  'sed',
  'grep',
  'paste',
  'mktemp',
];

export interface ExportOptions {
  /** How container nodes are realised: namespaces, or Docker containers (docker run/exec). */
  driver: DriverKind;
}

export function exportBash(lab: Lab, options: ExportOptions): string {
  const g = new Generator(resolveLab(lab, { driver: options.driver }));
  return [g.header(options.driver), LIBRARY, g.build(), ...lab.steps.map((s, i) => g.step(s, i)), g.footer()].join(
    '\n',
  );
}

/** The pieces of an exported script, for exporters that split a lab into several scripts (a
 * scenario platform's set-up and per-step verification): the same generator, the same library. */
export function exportPieces(lab: Lab, driver: DriverKind = 'netns') {
  const g = new Generator(resolveLab(lab, { driver }));
  return {
    library: LIBRARY,
    build: () => g.build(),
    commands: (index: number) => g.step(lab.steps[index]!, index, 'commands'),
    checks: (index: number) => g.step(lab.steps[index]!, index, 'checks'),
    footer: () => g.footer(),
    nodes: () => g.nodes(),
  };
}

export class Generator {
  private readonly lab: Lab;
  constructor(private readonly r: ResolvedLab) {
    this.lab = r.lab;
  }

  private kindOf(node: string): DriverKind {
    return this.r.driverOf(node);
  }

  /** The command line that runs argv inside a node of this script's run. */
  exec(node: string, argv: string[], stdin = false): string {
    return this.kindOf(node) === 'docker'
      ? `docker exec ${stdin ? '-i ' : ''}"\${CT[${node}]}" ${shellQuote(argv)}`
      : `ip netns exec "\${NS[${node}]}" ${shellQuote(argv)}`;
  }

  /** A lab command with its standard input, its output into `into`. */
  command(c: Command, into: string): string[] {
    const line = this.exec(c.node, c.argv, c.stdin !== undefined);
    if (c.stdin === undefined) return [`${line} < /dev/null ${into}`];
    if (c.stdin.endsWith('\n')) return quotedHeredoc(`${line} ${into}`, c.stdin.slice(0, -1).split('\n'));
    return [`printf '%s' ${q(c.stdin)} | ${line} ${into}`];
  }

  show(text: string): string {
    return `show ${q(text)}`;
  }

  header(driver: DriverKind): string {
    const lab = this.lab;
    const comment = (s: string) => s.split('\n').map((l) => `# ${l}`.trimEnd());
    return [
      '#!/usr/bin/env bash',
      ...comment(`Lab ${lab.id}: ${lab.title}`),
      '#',
      ...comment(wrap(lab.summary, 96)),
      '#',
      ...comment(`Source: ${lab.source.title}${lab.source.url ? ` <${lab.source.url}>` : ''}`),
      '#',
      `# Exported by \`nflab export ${lab.id}${driver === 'docker' ? ' --nodes docker' : ''}\`: the same topology, steps and checks as \`nflab run ${lab.id}\`,`,
      '# for a machine without Node. Run it as root:  sudo bash THIS-FILE',
      `# Every node is a new ${driver === 'docker' ? 'network namespace or Docker container' : 'network namespace'} named $PREFIX-<node> (set NFLAB_PREFIX, default`,
      '# nfx-<random>); all of them are removed when the script ends, however it ends.',
      '# Prints PASS/FAIL per check; exit status 0 when every check passes, 1 otherwise, 3 when this',
      '# machine cannot run it.',
      '',
    ].join('\n');
  }

  /** The build plan (src/resolve/build-plan.ts), phase by phase, in the engine's order. */
  build(): string {
    const { lab, plan } = this.r;
    const docker = plan.create.some((c) => c.realisation === 'docker');
    const out: string[] = ['', `# ---- lab ${lab.id}: build the topology ----`, ''];
    out.push(`nflab_preflight ${[...TOOLS, ...(docker ? ['docker', 'nsenter'] : [])].join(' ')}`);
    out.push(`echo ${q(`== Lab ${lab.id}: ${lab.title}`)}`);
    out.push(`echo "   nodes are named $PREFIX-<node>; a person would type:"`);
    out.push(...this.listing(planLines(this.r).map((l) => l.text)), '');
    // 1 create nodes
    for (const { node, realisation } of plan.create)
      out.push(realisation === 'docker' ? `make_container ${q(node)}` : `make_ns ${q(node)}`);
    // 2 probe features, before anything is configured (a lab's sysctls may need the feature)
    for (const { feature, node, probe } of plan.probes) {
      const skip = `{ echo ${q(`SKIP  lab ${lab.id}: ${probe.missing}`)}; exit 0; }`;
      out.push(
        `${this.exec(node, probe.argv)} < /dev/null > /dev/null 2>&1; rc=$?; [ "$rc" = ${probe.okStatus} ] || ${skip}   # ${feature}`,
      );
      if (probe.cleanup) out.push(`${this.exec(node, probe.cleanup)} < /dev/null > /dev/null 2>&1`);
    }
    // 3 create veths: both ends inside their nodes, the first under a temporary name. The names
    // the script makes ($VTMP…, its namespaces) come through printf's arguments, the lab's as quoted words.
    if (plan.veths.length > 0) {
      const ref = (node: string) => (this.kindOf(node) === 'docker' ? `"\${PID[${node}]}"` : `"\${NS[${node}]}"`);
      out.push(
        '{',
        ...plan.veths.map(
          (v, i) =>
            `  printf 'link add %s netns %s type veth peer name %s netns %s\\n' "\${VTMP}${i}" ${ref(v.a.node)} ${q(shellQuote([v.b.name]))} ${ref(v.b.node)}`,
        ),
        `} | ip -batch - > "$WORK/cmd.out" 2>&1 || die "could not create the veth pairs: $(cat "$WORK/cmd.out")"`,
      );
    }
    // 4 configure nodes: sysctls, then the batch (temporary names renamed first)
    for (const config of plan.configure) {
      const { node, sysctls } = config;
      if (sysctls.length > 0)
        out.push(
          `${this.exec(node, ['sysctl', '-q', '-w', ...sysctls])} < /dev/null > "$WORK/cmd.out" 2>&1 || die ${q(`node ${node}: sysctl failed: `)}"$(cat "$WORK/cmd.out")"`,
        );
      out.push(
        '{',
        ...config.renames.map(
          ({ index, name }) => `  printf 'link set %s name %s\\n' "\${VTMP}${index}" ${q(shellQuote([name]))}`,
        ),
        ...quotedHeredoc(
          '  cat',
          config.ip.map((argv) => shellQuote(argv)),
        ),
        `} | ${this.exec(node, ['ip', '-batch', '-'], true)} > "$WORK/cmd.out" 2>&1 || die ${q(`node ${node}: ip -batch failed: `)}"$(cat "$WORK/cmd.out")"`,
      );
    }
    // 5 wait for links
    const ends = new Map<string, string[]>();
    for (const e of plan.waitLinks) ends.set(e.node, [...(ends.get(e.node) ?? []), `${e.iface}:${e.bridged ? 1 : 0}`]);
    for (const [node, list] of ends) out.push(`wait_links ${q(node)} ${list.map(q).join(' ')}`);
    // 6 setup commands
    for (const c of plan.setup) {
      // The status goes through a variable: shellcheck (SC2181) flags `[ $? = 0 ]`, and a here-document
      // command cannot sit inside `if !` as one line.
      out.push(
        ...this.command(c, '> "$WORK/cmd.out" 2>&1'),
        `rc=$?; [ "$rc" = 0 ] || die ${q(`setup command failed: ${this.r.display(c)}: `)}"$(cat "$WORK/cmd.out")"`,
      );
    }
    // 7 responders
    for (const { node, port, argv } of plan.responders) {
      out.push(
        this.kindOf(node) === 'docker'
          ? `docker exec -d "\${CT[${node}]}" ${shellQuote(argv)}`
          : // disown: bash would report the responder as "Killed" when teardown ends it.
            `${this.exec(node, argv)} < /dev/null > /dev/null 2>&1 & disown $!`,
      );
      out.push(`wait_listen ${q(node)} ${port}`);
    }
    out.push(`echo '   built.'`);
    return out.join('\n');
  }

  /** Every node of the lab, as the script creates them. */
  nodes(): string[] {
    return this.r.plan.create.map((c) => c.node);
  }

  /** Lines printed as they are: through a heredoc whose end marker cannot occur in them. */
  listing(lines: string[]): string[] {
    return quotedHeredoc('indent', lines);
  }

  /** A step: its commands, then its traffic, observations and checks; or only one of the two
   * (a scenario platform applies the commands and verifies the rest apart). */
  step(step: Step, index: number, part: 'all' | 'commands' | 'checks' = 'all'): string {
    const checks = step.expect ?? [];
    const requests = stepRequests(step);
    const out: string[] = ['', `# ---- step ${index + 1} ----`, `step ${index + 1} ${q(step.title)}`];
    if (step.teaches && part === 'all') out.push(`echo ${q(`   ${step.teaches}`)}`);
    if (part !== 'checks') {
      for (const c of step.run ?? []) {
        const display = this.r.display(c);
        out.push(
          this.show(display),
          ...this.command(c, '> "$WORK/cmd.out" 2>&1'),
          `cmd_done $? ${c.expectFailure ? 1 : 0} ${q(display)}`,
        );
      }
    }
    if (part === 'commands') return out.join('\n');
    const counterRequests = distinctRequests(requests, 'counters');
    const save = (when: string) =>
      counterRequests.map((r) => `save_counters ${q(r.node)} ${when}${r.family ? ` ${r.family}` : ''}`);
    out.push(...save('before'));
    // Baselines, as nflab takes them: the step's own conntrack entries and xt_recent writes are what is new.
    for (const r of distinctRequests(requests, 'conntrack')) out.push(`read_conntrack ${q(r.node)} before`);
    for (const r of distinctRequests(requests, 'recent')) out.push(`read_recent ${q(r.node)} ${q(r.list)} before`);
    const captures = new Map(
      distinctRequests(requests, 'capture').map((r, i) => [requestKey(r), { ...r, id: `cap${i + 1}` }]),
    );
    for (const { node, iface, id } of captures.values()) {
      out.push(
        `echo ${q(`   (watching ${node}:${iface}: ${this.r.show(node, ['tcpdump', '-nn', '-i', iface])})`)}`,
        `cap_start ${id} ${q(node)} ${q(iface)}`,
      );
    }
    const traffic = new Map<string, string>();
    for (const t of stepTraffic(step)) {
      const id = `t${traffic.size + 1}`;
      traffic.set(trafficKey(t), id);
      out.push(...this.traffic(t, id));
    }
    const reach = new Map<string, string>();
    for (const r of distinctRequests(requests, 'reach')) {
      const c = r.check;
      const id = `r${reach.size + 1}`;
      reach.set(requestKey(r), id);
      const targets = [...reachTargets(c)];
      const [from, tos] = targets[0] ?? ['?', ['?']];
      out.push(
        this.show(
          `${this.r.show(from, ['ping', '-c', '1', '-W', String(c.wait ?? 1), tos[0] ?? '?'])}   # one of ${targets.reduce((n, [, t]) => n + t.length, 0)} pings`,
        ),
      );
      out.push(
        `reach_run ${id} ${q(String(c.wait ?? 1))} ${c.parallel === undefined ? 'auto' : q(String(c.parallel))} ${targets.map(([node, tos]) => `${q(node)} ${tos.map(q).join(' ')}`).join(" ';' ")}`,
      );
    }
    for (const { iface, id } of captures.values()) out.push(`cap_stop ${id} ${q(iface)}`);
    out.push(...save('after'));
    for (const r of distinctRequests(requests, 'conntrack')) out.push(`read_conntrack ${q(r.node)}`);
    for (const r of distinctRequests(requests, 'recent')) out.push(`read_recent ${q(r.node)} ${q(r.list)}`);
    const outputs = new Map<string, string>();
    for (const r of distinctRequests(requests, 'output')) {
      const id = `o${outputs.size + 1}`;
      outputs.set(requestKey(r), id);
      out.push(
        `echo ${q(`   (looking: ${this.r.display(r.command)})`)}`,
        ...this.command(r.command, `> "$WORK/${id}.out" 2>&1`),
        `indent < "$WORK/${id}.out"`,
      );
    }
    out.push('echo');
    const ids: ExportIds = {
      traffic: (t) => {
        const id = traffic.get(trafficKey(t));
        if (!id) throw new NotInStep(trafficKey(t));
        return id;
      },
      capture: (node, iface) => captures.get(requestKey({ type: 'capture', node, iface }))!.id,
      output: (command) => outputs.get(requestKey({ type: 'output', command }))!,
      reach: (check) => reach.get(requestKey({ type: 'reach', check }))!,
    };
    for (const c of checks) out.push(this.check(c, ids));
    return out.join('\n');
  }

  traffic(t: Traffic, id: string): string[] {
    if (t.kind === 'ping') {
      const argv = pingArgv(t);
      return [
        this.show(this.r.show(t.from, argv)),
        `${this.exec(t.from, argv)} < /dev/null > "$WORK/${id}.out" 2> "$WORK/${id}.err"`,
        `cat "$WORK/${id}.out" "$WORK/${id}.err" | indent`,
      ];
    }
    if (t.kind === 'udp') {
      // Datagrams expect no answer: each is one socat run, as the engine sends them.
      const argv = udpArgv(t);
      const n = t.count ?? 1;
      return [
        this.show(`${this.r.show(t.from, argv)}${n > 1 ? `   # ${n} times` : ''}`),
        `for _ in $(seq 1 ${n}); do ${this.exec(t.from, argv)} < /dev/null 2>&1; done | indent`,
      ];
    }
    const argv = tcpArgv(t);
    const n = t.connections ?? 1;
    const shown = this.r.show(t.from, argv);
    if (n === 1) {
      return [
        this.show(shown),
        `${this.exec(t.from, argv)} < /dev/null > "$WORK/${id}.raw" 2>&1`,
        `echo "${MARK}$?" >> "$WORK/${id}.raw"`,
        `tcp_done ${id} ${q(t.to)}`,
      ];
    }
    const script = `i=0; while [ $i -lt ${n} ]; do "$@" </dev/null 2>&1; echo "${MARK}$?"; i=$((i+1)); done`;
    return [
      this.show(`${shown}   # ${n} connections, one after another`),
      `${this.exec(t.from, ['sh', '-c', script, 'sh', ...argv])} < /dev/null > "$WORK/${id}.raw" 2>&1`,
      `tcp_done ${id} ${q(t.to)}`,
    ];
  }

  check(c: Check, ids: ExportIds): string {
    const desc = q(describeCheck(c));
    try {
      return moduleOf(c).exportLine(c as never, desc, ids);
    } catch (err) {
      if (!(err instanceof NotInStep)) throw err;
      return `skip_check ${desc} ${q(`its traffic (${err.message}) is not sent by this step`)}`;
    }
  }

  footer(): string {
    return ['', '# ---- result ----', 'if nflab_summary; then exit 0; else exit 1; fi', ''].join('\n');
  }
}

function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join('\n');
}
