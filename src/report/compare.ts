// `nflab run --compare FILE`: this run against a recorded one (another kernel, another iptables
// backend, an earlier run), check by check: which verdicts changed, and which observed values.
import { isDeepStrictEqual } from 'node:util';
import type { CheckReport, LabReport } from './types.ts';
import type { RunRecordFile } from './record.ts';

type Side = { status: string; observed?: unknown; reason?: string };

export interface CheckChange {
  lab: string;
  /** 1-based step number and title; 0 for the lab itself (its status: passed, failed, skipped). */
  step: number;
  stepTitle: string;
  check: string;
  kind: string;
  before?: Side;
  after?: Side;
  verdictChanged: boolean;
  observedChanged: boolean;
}

export interface Comparison {
  before: { target: string; kernel?: string; iptables: string };
  after: { target: string; kernel?: string; iptables: string };
  changes: CheckChange[];
  /** Checks compared in both runs. */
  compared: number;
}

/** Checks of a lab by step and description (the nth check of that description, should two share one). */
function checksOf(lab: LabReport): Map<string, { step: number; stepTitle: string; check: CheckReport }> {
  const out = new Map<string, { step: number; stepTitle: string; check: CheckReport }>();
  lab.steps.forEach((s, i) => {
    const seen = new Map<string, number>();
    for (const c of s.checks) {
      const n = (seen.get(c.description) ?? 0) + 1;
      seen.set(c.description, n);
      out.set(`${i + 1}\0${c.description}\0${n}`, { step: i + 1, stepTitle: s.title, check: c });
    }
  });
  return out;
}

/** Values that differ on every run by design are left out of the comparison of observations:
 * ICMP echo ids, MAC addresses, ephemeral ports, TCP sequence numbers and timestamps, conntrack
 * timers, the dates in iptables-save's comments, run ids in namespace names, and how many packets a capture held in all
 * (background traffic such as IPv6 router solicitations). What a check decides on (counts, the
 * addresses, a port a rule chose) stays. */
export function steady(value: unknown): unknown {
  if (typeof value === 'string') {
    return value
      .replace(/\bid[ =]\d+/g, 'id=N')
      .replace(/\b([0-9a-f]{2}:){5}[0-9a-f]{2}\b/gi, 'MAC')
      .replace(/\b(seq|ack) \d+(:\d+)?/g, '$1 N')
      .replace(/TS val \d+ ecr \d+/g, 'TS')
      .replace(/(\d+\.\d+\.\d+\.\d+)\.(3[2-9]\d{3}|[4-6]\d{4})\b/g, '$1.EPHEMERAL')
      .replace(/\b([sd]port)=(3[2-9]\d{3}|[4-6]\d{4})\b/g, '$1=EPHEMERAL')
      .replace(/^(tcp|udp|icmp)(\s+\d+)\s+\d+ /, '$1$2 T ')
      .replace(/^# (Generated|Completed) .*/, '# $1')
      .replace(/\bnfl-[a-z0-9]{6}-/g, 'nfl-RUN-');
  }
  if (Array.isArray(value)) return value.map(steady);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => k !== 'capturedInAll')
        .map(([k, v]) => [k, steady(v)]),
    );
  return value;
}

const side = (c: CheckReport): Side => ({
  status: c.status,
  observed: c.observed,
  ...(c.reason ? { reason: c.reason } : {}),
});

export function compareRuns(before: RunRecordFile, after: RunRecordFile): Comparison {
  const changes: CheckChange[] = [];
  let compared = 0;
  const ids = [...new Set([...before.labs.map((l) => l.id), ...after.labs.map((l) => l.id)])];
  for (const id of ids) {
    const a = before.labs.find((l) => l.id === id);
    const b = after.labs.find((l) => l.id === id);
    if (a?.status !== b?.status) {
      changes.push({
        lab: id,
        step: 0,
        stepTitle: '',
        check: 'lab status',
        kind: 'lab',
        ...(a ? { before: { status: a.status, ...(a.reason ? { reason: a.reason } : {}) } } : {}),
        ...(b ? { after: { status: b.status, ...(b.reason ? { reason: b.reason } : {}) } } : {}),
        verdictChanged: true,
        observedChanged: false,
      });
    }
    const ca = a ? checksOf(a) : new Map();
    const cb = b ? checksOf(b) : new Map();
    // A lab skipped or stopped on one side has no checks there: its status line says it all.
    if (ca.size === 0 || cb.size === 0) continue;
    for (const key of new Set([...ca.keys(), ...cb.keys()])) {
      const x = ca.get(key);
      const y = cb.get(key);
      const where = (x ?? y)!;
      if (x && y) compared++;
      const verdictChanged = x?.check.status !== y?.check.status;
      const observedChanged = !!x && !!y && !isDeepStrictEqual(steady(x.check.observed), steady(y.check.observed));
      if (!verdictChanged && !observedChanged) continue;
      changes.push({
        lab: id,
        step: where.step,
        stepTitle: where.stepTitle,
        check: where.check.description,
        kind: where.check.kind,
        ...(x ? { before: side(x.check) } : {}),
        ...(y ? { after: side(y.check) } : {}),
        verdictChanged,
        observedChanged,
      });
    }
  }
  const who = (r: RunRecordFile) => ({
    target: r.target,
    ...(r.kernel ? { kernel: r.kernel } : {}),
    iptables: r.iptables,
  });
  return { before: who(before), after: who(after), changes, compared };
}

export function verdictsChanged(c: Comparison): number {
  return c.changes.filter((x) => x.verdictChanged).length;
}

export function compact(value: unknown, max = 300): string {
  const s = value === undefined ? '—' : typeof value === 'string' ? value : JSON.stringify(value);
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

const label = (r: Comparison['before']) => `${r.target}, kernel ${r.kernel ?? '?'}, iptables-${r.iptables}`;

export function formatComparison(c: Comparison): string {
  const lines = [
    `compared with the record (${label(c.before)})`,
    `this run (${label(c.after)}): ${c.compared} checks in both`,
  ];
  const verdicts = c.changes.filter((x) => x.verdictChanged);
  const observed = c.changes.filter((x) => !x.verdictChanged);
  lines.push(
    '',
    verdicts.length === 0
      ? 'no verdict changed'
      : `${verdicts.length} verdict${verdicts.length === 1 ? '' : 's'} changed:`,
  );
  for (const x of verdicts) {
    lines.push(`  lab ${x.lab}${x.step ? ` step ${x.step}` : ''}: ${x.check}`);
    lines.push(
      `      was ${x.before?.status ?? 'absent'}${x.before?.reason ? ` (${x.before.reason})` : ''}${x.before?.observed !== undefined ? `: ${compact(x.before.observed)}` : ''}`,
    );
    lines.push(
      `      now ${x.after?.status ?? 'absent'}${x.after?.reason ? ` (${x.after.reason})` : ''}${x.after?.observed !== undefined ? `: ${compact(x.after.observed)}` : ''}`,
    );
  }
  if (observed.length > 0) {
    lines.push(
      '',
      `${observed.length} check${observed.length === 1 ? '' : 's'} with the same verdict observed something else:`,
    );
    for (const x of observed) {
      lines.push(`  lab ${x.lab} step ${x.step}: ${x.check} (${x.after!.status})`);
      lines.push(`      was ${compact(x.before!.observed)}`, `      now ${compact(x.after!.observed)}`);
    }
  }
  return lines.join('\n') + '\n';
}
