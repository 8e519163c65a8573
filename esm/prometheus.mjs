// Re-exports the one CommonJS build, as esm/index.mjs does: the detector it is given and
// the one `import 'poolwatch'` returns are the same implementation.
import prometheus from '../dist/integrations/prometheus.js';

export const { registerPrometheusMetrics } = prometheus;
