// Re-exports the one CommonJS build, as esm/index.mjs does: scopes opened here are the
// ones `import 'poolwatch'` reports on.
import { createRequire } from 'node:module';

// require(), not a default import: a bundler-style loader (vitest inlining a linked package)
// reads the build's `__esModule` flag as "use exports.default", which does not exist.
const http = createRequire(import.meta.url)('../dist/integrations/http.js');

export const { requestScope, expressScope, fastifyScope, koaScope } = http;
