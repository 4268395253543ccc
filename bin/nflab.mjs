#!/usr/bin/env node
// Entry point: TypeScript sources run through tsx, so labs stay plain .ts files.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv.slice(2));
