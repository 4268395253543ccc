// Writes a Killercoda scenario of a lab into a directory (scripts executable).
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Lab } from '../lab/types.ts';
import { killercodaScenario } from './killercoda.ts';

/** Returns the paths written, index.json first. */
export function writeKillercoda(lab: Lab, dir: string): string[] {
  return killercodaScenario(lab).map((f) => {
    const path = join(dir, f.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, f.content);
    if (f.executable) chmodSync(path, 0o755);
    return path;
  });
}
