// A whole lab validated before anything is created: its shape, its fields and topology
// (src/lab/validate.ts), its kube-proxy Services, and every step's commands, traffic and checks
// (each by its kind). Exit 2 names every problem at once.
import { LabError } from '../errors.ts';
import type { Lab } from '../lab/types.ts';
import { printable, shapeProblems } from '../lab/shape.ts';
import {
  Problems,
  hasNode,
  isObject,
  labName,
  show,
  throwProblems,
  validateLabFields,
  validateStep,
  validateTopology,
} from '../lab/validate.ts';
import { validateCheck } from '../check/validate-check.ts';
import { kindModule } from '../check/registry.ts';
import { checkKubeProxySpec } from '../k8s/lab-rules.ts';
import { buildableProblems } from '../lab/buildable.ts';
import { unknownFieldProblems } from '../lab/strict-shape.ts';
import { boundProblems } from './bounds.ts';

/** Throws LabError (exit 2) naming every problem; returns the lab typed when it is valid. */
export function validateLab(input: unknown, origin = 'lab'): Lab {
  if (!isObject(input)) throw new LabError(`${origin}: a lab must be an object (export default defineLab({...}))`);
  const lab = input as unknown as Lab;
  const name = labName(lab);
  // Types, cycles and control characters first: the checks below rely on them.
  const shape = shapeProblems(lab as unknown as Record<string, unknown>, (kind) => kindModule(kind)?.fields ?? {});
  if (shape.length === 0) shape.push(...unknownFieldProblems(lab as unknown as Record<string, unknown>));
  if (shape.length > 0)
    throw new LabError(`invalid lab:\n  ${shape.map((s) => printable(`${name}: ${s}`)).join('\n  ')}`);

  const p = new Problems();
  validateLabFields(lab, name, p);
  const ifaces = validateTopology(lab, name, p);
  // What the kernel would refuse or build otherwise than written, on a topology whose fields are valid.
  if (p.list.length === 0) for (const problem of buildableProblems(lab)) p.add(name, problem);
  if (lab.kubeProxy !== undefined) validateKubeProxy(lab, name, p);
  if (!Array.isArray(lab.steps) || lab.steps.length === 0) p.add(name, 'field "steps" must be a non-empty array');
  else
    lab.steps.forEach((step, i) =>
      validateStep(
        step,
        `${name}: step ${i + 1}${typeof step?.title === 'string' ? ` "${step.title}"` : ''}`,
        lab,
        p,
        (check, where) => validateCheck(check, where, lab, ifaces, p),
      ),
    );
  // Limits, and each step's traffic against its limit (the traffic is well formed by now).
  if (p.list.length === 0) for (const problem of boundProblems(lab)) p.add(name, problem);
  throwProblems(p);
  return lab;
}

function validateKubeProxy(lab: Lab, name: string, p: Problems) {
  const spec = lab.kubeProxy!;
  const where = `${name}: field "kubeProxy"`;
  if (!isObject(spec) || !Array.isArray(spec.services) || !isObject(spec.options)) {
    p.add(where, 'must be { node, services: Service[], options: ProxyOptions }');
    return;
  }
  if (!hasNode(lab, spec.node)) p.add(where, `field "node" names unknown node ${show(spec.node)}`);
  try {
    checkKubeProxySpec(spec);
  } catch (err) {
    p.add(where, String((err as Error)?.message ?? err).split('\n')[0]!);
  }
}
