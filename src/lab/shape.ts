// The shape of a lab before its meaning: every container field has the right type (an array where
// the model has an array, an object where it has an object), there is no reference cycle, nothing
// is nested absurdly deep, and no name or word carries control characters. validate.ts checks the
// meaning and may then rely on the shape; problems here are reported with the field's path.

const MAX_DEPTH = 24;
/** Text people read, where a line break is legitimate; every other string is a name or a word. */
const FREE_TEXT = new Set([
  'title',
  'summary',
  'teaches',
  'description',
  'display',
  'stdin',
  'url',
  'spec',
  'reason',
  'ask',
  'answer',
  'hint',
]);
/** Control characters (C0 but tab and newline, DEL, C1) and bidirectional overrides, which make a
 * terminal show something else than what is there. */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const CONTROL_OR_NEWLINE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

export type FieldKind =
  | 'steps'
  | 'array'
  | 'object'
  | 'string'
  | 'array-of-strings'
  | 'array-of-objects'
  | 'object-of-objects'
  | 'object-of-arrays'
  | 'string-or-object';

/** Fields whose type the engine relies on, by where they appear. */
const LAB_FIELDS: Record<string, FieldKind> = {
  requires: 'array-of-strings',
  source: 'object',
  topology: 'object',
  steps: 'steps',
  kubeProxy: 'object',
};
const TOPOLOGY_FIELDS: Record<string, FieldKind> = {
  nodes: 'object-of-objects',
  bridges: 'object-of-objects',
  links: 'array-of-objects',
  setup: 'array-of-objects',
};
const NODE_FIELDS: Record<string, FieldKind> = {
  addresses: 'object-of-arrays',
  routes: 'array-of-objects',
  sysctls: 'object',
  listen: 'array',
  neighbors: 'array-of-objects',
};
const ROUTE_FIELDS: Record<string, FieldKind> = { extra: 'array-of-strings' };
const LINK_FIELDS: Record<string, FieldKind> = { a: 'object', b: 'object' };
const END_FIELDS: Record<string, FieldKind> = { addresses: 'array' };
const BRIDGE_FIELDS: Record<string, FieldKind> = { addresses: 'array' };
const STEP_FIELDS: Record<string, FieldKind> = {
  questions: 'array-of-objects',
  run: 'array-of-objects',
  send: 'array-of-objects',
  expect: 'array-of-objects',
};
const COMMAND_FIELDS: Record<string, FieldKind> = { argv: 'array-of-strings', display: 'string', stdin: 'string' };
/** `checkFields`: the container fields of a check kind (each kind's module declares its own). */
export function shapeProblems(
  lab: Record<string, unknown>,
  checkFields: (kind: unknown) => Record<string, FieldKind>,
): string[] {
  const problems: string[] = [];
  const add = (path: string, what: string) => problems.push(path ? `${printable(path)}: ${what}` : what);
  general(lab, '', new Set(), 0, add);
  if (problems.length > 0) return problems; // a cycle or runaway depth: the walk below would not end
  fields(lab, '', LAB_FIELDS, add);
  const topo = lab.topology;
  if (isObject(topo)) {
    fields(topo, 'topology.', TOPOLOGY_FIELDS, add);
    eachObject(topo.nodes, (node, key) =>
      fields(node, `topology.nodes.${key}.`, NODE_FIELDS, add, () =>
        eachObject(node.routes, (route, i) => fields(route, `topology.nodes.${key}.routes[${i}].`, ROUTE_FIELDS, add)),
      ),
    );
    eachObject(topo.bridges, (bridge, key) => fields(bridge, `topology.bridges.${key}.`, BRIDGE_FIELDS, add));
    eachObject(topo.links, (link, i) =>
      fields(link, `topology.links[${i}].`, LINK_FIELDS, add, () => {
        for (const side of ['a', 'b'])
          if (isObject(link[side]))
            fields(link[side] as Record<string, unknown>, `topology.links[${i}].${side}.`, END_FIELDS, add);
      }),
    );
    eachObject(topo.setup, (command, i) => fields(command, `topology.setup[${i}].`, COMMAND_FIELDS, add));
  }
  eachObject(lab.steps, (step, s) =>
    fields(step, `steps[${s}].`, STEP_FIELDS, add, () => {
      eachObject(step.run, (command, i) => fields(command, `steps[${s}].run[${i}].`, COMMAND_FIELDS, add));
      eachObject(step.expect, (check, i) =>
        fields(check, `steps[${s}].expect[${i}].`, checkFields(check.kind), add, () => {
          if (isObject(check.command)) fields(check.command, `steps[${s}].expect[${i}].command.`, COMMAND_FIELDS, add);
        }),
      );
    }),
  );
  return problems;
}

/** Cycles, depth, and control characters in every string (keys included). */
function general(
  value: unknown,
  path: string,
  ancestors: Set<unknown>,
  depth: number,
  add: (path: string, what: string) => void,
): void {
  if (typeof value === 'string') {
    const field =
      path
        .replace(/\[\d+\]$/, '')
        .split('.')
        .pop() ?? '';
    const free = FREE_TEXT.has(field) || path.startsWith('source.');
    if ((free ? CONTROL : CONTROL_OR_NEWLINE).test(value))
      add(
        path || '(lab)',
        `contains a control character (${free ? 'only tab and newline are allowed in text' : 'names and command words are one line of printable characters'})`,
      );
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  if (ancestors.has(value)) {
    add(path, 'refers back to an object that contains it (a cycle)');
    return;
  }
  if (depth > MAX_DEPTH) {
    add(path, `is nested more than ${MAX_DEPTH} levels deep`);
    return;
  }
  ancestors.add(value);
  const entries: [string, unknown][] = Array.isArray(value)
    ? value.map((v, i) => [`[${i}]`, v])
    : Object.entries(value);
  for (const [key, child] of entries) {
    const childPath = key.startsWith('[') ? `${path}${key}` : `${path}${path ? '.' : ''}${key}`;
    if (!key.startsWith('[') && CONTROL_OR_NEWLINE.test(key)) add(childPath, 'the key contains a control character');
    general(child, childPath, ancestors, depth + 1, add);
  }
  ancestors.delete(value);
}

function fields(
  obj: Record<string, unknown>,
  prefix: string,
  spec: Record<string, FieldKind>,
  add: (path: string, what: string) => void,
  then?: () => void,
): void {
  for (const [field, kind] of Object.entries(spec)) {
    const value = obj[field];
    if (value === undefined || !Object.hasOwn(obj, field)) continue;
    const ok = {
      steps: Array.isArray(value) && value.length > 0 && value.every(isObject),
      array: Array.isArray(value),
      object: isObject(value),
      string: typeof value === 'string',
      'array-of-strings': Array.isArray(value) && value.every((v) => typeof v === 'string'),
      'array-of-objects': Array.isArray(value) && value.every(isObject),
      'object-of-objects': isObject(value) && Object.values(value).every(isObject),
      'object-of-arrays': isObject(value) && Object.values(value).every(Array.isArray),
      'string-or-object': typeof value === 'string' || isObject(value),
    }[kind];
    if (!ok) add(prefix.replace(/\.$/, ''), `field "${field}" must be ${KIND_TEXT[kind]} (got ${brief(value)})`);
  }
  then?.();
}

const KIND_TEXT: Record<FieldKind, string> = {
  steps: 'a non-empty array of step objects',
  array: 'an array',
  object: 'an object',
  string: 'a string',
  'array-of-strings': 'an array of strings',
  'array-of-objects': 'an array of objects',
  'object-of-objects': 'an object whose values are objects',
  'object-of-arrays': 'an object whose values are arrays',
  'string-or-object': 'a string or an object',
};

function eachObject(container: unknown, fn: (obj: Record<string, any>, key: string | number) => void): void {
  if (Array.isArray(container))
    container.forEach((v, i) => {
      if (isObject(v)) fn(v, i);
    });
  else if (isObject(container)) for (const [k, v] of Object.entries(container)) if (isObject(v)) fn(v, k);
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A short, printable rendering of a value for an error message (never throws, even on cycles). */
export function brief(v: unknown): string {
  let s: string;
  try {
    s =
      typeof v === 'number' || typeof v === 'bigint' || v === undefined ? String(v) : (JSON.stringify(v) ?? String(v));
  } catch {
    s = Array.isArray(v) ? '[…]' : '{…}';
  }
  s = printable(s);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Control and bidirectional characters as \u escapes, so a message shows what is really there. */
export function printable(s: string): string {
  return s.replace(
    /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
