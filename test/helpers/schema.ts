// Validates what nflab printed with --json against the JSON Schema the package ships.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { REPO } from './system.ts';

export const REPORT_SCHEMA = join(REPO, 'schema/report.schema.json');

const ajv = new Ajv2020({ allErrors: true, strict: true });
// ajv-formats is CommonJS: its default export arrives wrapped under ESM.
const addFormats = ((addFormatsModule as any).default ?? addFormatsModule) as (a: Ajv2020) => void;
addFormats(ajv);
const validateReport = ajv.compile(JSON.parse(readFileSync(REPORT_SCHEMA, 'utf8')));

/** The schema's complaints about a value, one line each; empty when it conforms. */
export function schemaErrors(value: unknown): string[] {
  if (validateReport(value)) return [];
  return (validateReport.errors ?? []).map(
    (e) => `${e.instancePath || '/'} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`,
  );
}
