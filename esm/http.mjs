// Re-exports the one CommonJS build, as esm/index.mjs does: scopes opened here are the
// ones `import 'poolwatch'` reports on.
import http from '../dist/integrations/http.js';

export const { requestScope, expressScope, fastifyScope, koaScope } = http;
