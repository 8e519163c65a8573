// The `poolwatch/http` entry: request scopes for node:http and web frameworks. Kept out
// of the main entry so that apps without a server never load it; no framework is
// imported here, only their shapes.
export { requestScope } from './request-scope.js';
export { expressScope } from './express.js';
export { fastifyScope } from './fastify.js';
export { koaScope } from './koa.js';
export type { RequestScopeOptions, RequestListener } from './request-scope.js';
export type { ExpressMiddleware, ExpressRequestLike } from './express.js';
export type { FastifyScopeOptions, FastifyRequestLike } from './fastify.js';
export type { KoaMiddleware, KoaContextLike } from './koa.js';
