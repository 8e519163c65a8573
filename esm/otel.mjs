// Re-exports the one CommonJS build, as esm/index.mjs does: the detector it is given and
// the one `import 'poolwatch'` returns are the same implementation.
import { createRequire } from 'node:module';

// require(), not a default import: a bundler-style loader (vitest inlining a linked package)
// reads the build's `__esModule` flag as "use exports.default", which does not exist.
const otel = createRequire(import.meta.url)('../dist/integrations/otel.js');

export const { registerOtelMetrics } = otel;
