// Validation of one check by its kind's module, with the lab's shared field validators.
import type { Check, Command, Lab, Traffic } from '../lab/types.ts';
import {
  Problems,
  hasNode,
  isObject,
  show,
  validateCommand,
  validateCount,
  validateTcpTraffic,
  validateTraffic,
} from '../lab/validate.ts';
import type { CheckValidation } from './kind.ts';
import { CHECK_KINDS, kindModule } from './registry.ts';

export function validateCheck(
  input: unknown,
  where: string,
  lab: Lab,
  ifaces: Map<string, Set<string>>,
  p: Problems,
): void {
  const module = isObject(input) ? kindModule(input.kind) : undefined;
  if (!isObject(input) || typeof input.kind !== 'string') {
    p.add(
      where,
      'a check is made with ping(), tcp(), packets(), rule(), rules(), policy(), conntrack(), recent(), path() or output()',
    );
    return;
  }
  const c = input as unknown as Check;
  if (!module) {
    p.add(where, `unknown check kind ${show(c.kind)} (known: ${CHECK_KINDS.join(', ')})`);
    return;
  }
  if (c.sandboxOnly !== undefined && (typeof c.sandboxOnly !== 'string' || c.sandboxOnly.trim() === ''))
    p.add(
      where,
      `${c.kind} check: field "sandboxOnly" must be the reason, a non-empty string (got ${show(c.sandboxOnly)})`,
    );
  if (c.description !== undefined && typeof c.description !== 'string')
    p.add(where, `${c.kind} check: field "description" must be text (got ${show(c.description)})`);
  if (c.about !== undefined && c.about !== 'behaviour' && c.about !== 'reference')
    p.add(where, `${c.kind} check: field "about" must be behaviour or reference (got ${show(c.about)})`);
  if (c.hint !== undefined && (typeof c.hint !== 'string' || c.hint.trim() === ''))
    p.add(where, `${c.kind} check: field "hint" must be text (got ${show(c.hint)})`);
  const at = (field: string | undefined) => (field ? `${where}: ${field}` : where);
  const v: CheckValidation = {
    lab,
    ifaces,
    add: (what) => p.add(where, what),
    knownNode: (node, field = 'node') => {
      if (typeof node !== 'string' || !hasNode(lab, node)) {
        p.add(where, `${c.kind} check: field "${field}" names unknown node ${show(node)}`);
        return false;
      }
      return true;
    },
    traffic: (t, field) => validateTraffic(t as Traffic, at(field), lab, p),
    tcpTraffic: (t, field) => validateTcpTraffic(t, at(field), lab, p),
    count: (count, field) => validateCount(count, at(field), p),
    command: (command) => validateCommand(command as Command, where, lab, p),
    show,
  };
  module.validate(c as never, v);
}
