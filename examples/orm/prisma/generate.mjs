// Generates the Prisma 7 client of schema.prisma into ./generated as plain .mjs, offline.
//
//   node examples/orm/prisma/generate.mjs
//
// 1. `prisma generate` with the `prisma-client` generator. It needs no engine binary (the
//    schema is read by the WASM in prisma/build, and the client uses the WASM query
//    compiler from @prisma/client/runtime), but the CLI checks for a schema-engine binary
//    before every `generate` and downloads it from binaries.prisma.sh if it is missing:
//    offline, or with npm's install scripts off, that fails with
//      Error: request to https://binaries.prisma.sh/all_commits/<hash>/<platform>/schema-engine.gz.sha256 failed
//    PRISMA_SCHEMA_ENGINE_BINARY, set to any existing file, satisfies that check; `generate`
//    never runs it. (Do not reuse this environment for `prisma migrate` or `db push`.)
// 2. The generator writes TypeScript only (.mts); Node 20 cannot run it, so the project's
//    tsc compiles it to .mjs with ./tsconfig.json.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

function run(script, args, env) {
  const result = spawnSync(process.execPath, [script, ...args], { cwd: here, stdio: 'inherit', env });
  if (result.status !== 0) {
    console.error(`generate.mjs: ${script} ${args.join(' ')} failed (${result.status ?? result.signal})`);
    process.exit(1);
  }
}

rmSync(join(here, 'generated-ts'), { recursive: true, force: true });
rmSync(join(here, 'generated'), { recursive: true, force: true });
run(require.resolve('prisma/build/index.js'), ['generate', '--schema', join(here, 'schema.prisma')], {
  ...process.env,
  PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath,
  CHECKPOINT_DISABLE: '1',
  PRISMA_HIDE_UPDATE_MESSAGE: '1',
});
run(require.resolve('typescript/bin/tsc'), ['-p', join(here, 'tsconfig.json')], process.env);
