// Lets a lab file run on its own (`./labs/01-bridge-forward-drop.ts`), like the articles' scripts.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function runIfMain(moduleUrl: string): void {
  const self = fileURLToPath(moduleUrl);
  const invoked = process.argv[1];
  if (!invoked) return;
  let same = false;
  try {
    same = realpathSync(invoked) === realpathSync(self);
  } catch {
    return;
  }
  if (!same) return;
  // Same options as `nflab run <file>`; the CLI is loaded only when the file is the program.
  void import('./main.ts').then(({ main }) => main(['run', self, ...process.argv.slice(2)]));
}
