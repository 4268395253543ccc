// The one interface every check kind implements: one module per kind in src/check/kinds/, listed
// in src/check/registry.ts. Everything nflab does with a check (validate it, describe it, say what
// it needs observed, judge it, write its line in an exported script, show how a person watches
// and looks) comes from its kind's module, so run, check, show, export and handouts cannot drift.
import type { Check, Command, Lab, Traffic } from '../lab/types.ts';
import type { FieldKind } from '../lab/shape.ts';
import type { Observations, ObservationRequest } from './observations.ts';
import type { ReachCheck } from '../traffic/reach.ts';
import type { CheckAbout } from '../report/types.ts';

/** A check of one kind. */
export type CheckOf<K extends Check['kind']> = Extract<Check, { kind: K }>;

/** A verdict: met or not, both sides as data (never rendered strings), and why when it is not obvious. */
export interface Verdict<O = unknown> {
  met: boolean;
  expected: unknown;
  observed: O | string;
  reason?: string;
}

/** What validation gives a kind: the lab, the check's place, and the shared field validators. */
export interface CheckValidation {
  lab: Lab;
  /** Interfaces of each node (lo, link ends, bridges, addressed interfaces). */
  ifaces: Map<string, Set<string>>;
  /** Reports a problem of this check (prefixed with its step and index). */
  add(what: string): void;
  /** False (and a problem named after `field`) when `node` is not a node of the lab. */
  knownNode(node: unknown, field?: string): boolean;
  traffic(t: unknown, field?: string): void;
  tcpTraffic(t: unknown, field?: string): void;
  count(count: unknown, field?: string): void;
  command(command: unknown): void;
  /** A value as an error message shows it. */
  show(value: unknown): string;
}

/** What an exported script gives a kind: the shell ids of the observations its step made. */
export interface ExportIds {
  /** Throws NotInStep when the step does not send this traffic. */
  traffic(t: Traffic): string;
  capture(node: string, iface: string): string;
  output(command: Command): string;
  reach(check: ReachCheck): string;
}

/** The traffic a check refers to is not sent by its step (an exported script skips the check). */
export class NotInStep extends Error {}

/** How a command on a node is shown to a person, for the run's drivers. */
export type Show = (node: string, argv: string[]) => string;

export interface CheckKind<K extends Check['kind'] = Check['kind'], O = unknown> {
  readonly kind: K;
  /** The builder a lab author writes it with, for error messages (`ping(...).succeeds()`). */
  readonly builder: string;
  /** Types of the check's container fields (objects, arrays), checked before validate() runs. */
  readonly fields: Record<string, FieldKind>;
  validate(check: CheckOf<K>, v: CheckValidation): void;
  /** The default one-line description, in the words a student would use. */
  describe(check: CheckOf<K>): string;
  /** Traffic the check sends or refers to (the step sends each distinct one once). */
  traffic?(check: CheckOf<K>): Traffic[];
  /** True when the check's verdict cannot change once the kernel shows that none of its traffic's
   * packets will be answered (dropped by a rule or a policy, not routable, reset): the engine may
   * then stop waiting (src/engine/evidence.ts). */
  acceptsNoReplyEvidence?(check: CheckOf<K>): boolean;
  /** What must be observed, besides its traffic. */
  needs(check: CheckOf<K>): ObservationRequest[];
  judge(check: CheckOf<K>, obs: Observations): Verdict<O>;
  /** What a check of this kind is about by default (a lab may override it with `about`):
   * behaviour, or the reference answer's own rule or text. */
  about(check: CheckOf<K>): CheckAbout;
  /** Why a check that is not met is not, in words, from what the step observed (a hop and its
   * verdict, the counter that moved instead, the interfaces a capture saw the packet on). */
  hint(check: CheckOf<K>, verdict: Verdict<O>, obs: Observations): string | undefined;
  /** Its line in an exported bash script (a function of src/export/library.sh); `desc` is quoted. */
  exportLine(check: CheckOf<K>, desc: string, ids: ExportIds): string;
  /** Commands a person starts before the traffic to watch what this check observes. */
  watch?(check: CheckOf<K>, show: Show): string[];
  /** Commands a person runs after the traffic to look at what this check read. */
  look?(check: CheckOf<K>, show: Show): string[];
}

/** Declares a kind's module with its types checked against the interface. */
export function defineKind<K extends Check['kind']>(kind: CheckKind<K>): CheckKind<K> {
  return kind;
}
