// Re-exports the one CommonJS build, as esm/index.mjs does: the detector it is given and
// the one `import 'poolwatch'` returns are the same implementation.
import otel from '../dist/integrations/otel.js';

export const { registerOtelMetrics } = otel;
