// `npm run test:unit`: the tests that need neither root nor a kernel (parsers, renderers,
// validation, the resolved lab and its plan, every check kind's judge on recorded observations,
// export rendering). A private runtime directory: the engine's journal never touches /run/nflab.
// (The rest of the ava settings are those of package.json's "ava" key, which runs every test.)
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default {
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  files: ['test/unit/**/*.test.ts'],
  workerThreads: false,
  timeout: '2m',
  environmentVariables: { NFLAB_RUNTIME_DIR: join(tmpdir(), 'nflab-unit-runtime') },
};
