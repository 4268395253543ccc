// What a lab file imports: `import { defineLab, cmd, ping, ... } from 'nflab'`.
export * from './lab/define.ts';
export type * from './lab/types.ts';
export { runIfMain } from './cli/run-if-main.ts';
