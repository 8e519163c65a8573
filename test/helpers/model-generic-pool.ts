/**
 * generic-pool for the model-based tests (test/helpers/model.ts): an in-memory resource
 * that knows whether it is lent, so the pool's own `borrowed` is checked against it too.
 */
import { createPool, type Pool } from 'generic-pool';
import type { ModelDriver } from './model.js';
import { siteOf } from './site.js';

export interface Resource {
  readonly id: number;
}

function acquire(pool: Pool<Resource>, form: 'promise' | 'callback'): Promise<Resource> {
  if (form === 'promise') return pool.acquire(); // ACQUIRE-PROMISE
  // generic-pool has no callback form: the nearest an app writes is a then() callback.
  return new Promise((resolve, reject) => void pool.acquire().then(resolve, reject)); // ACQUIRE-CALLBACK
}

export function genericPoolDriver(): ModelDriver<Pool<Resource>, Resource> {
  let ids = 0;
  return {
    name: 'generic-pool',
    max: 3,
    sites: { promise: siteOf(__filename, '// ACQUIRE-PROMISE'), callback: siteOf(__filename, '// ACQUIRE-CALLBACK') },
    create: async () => createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max: 3, min: 0 }),
    close: async (pool) => {
      await pool.drain();
      await pool.clear();
    },
    leased: (pool) => pool.borrowed,
    state: (pool) => ({ size: pool.size, available: pool.available, borrowed: pool.borrowed, pending: pool.pending }),
    acquire: (pool, form) => acquire(pool, form),
    // use(): the pool lends a resource for the length of one function, as a pool's query() does.
    poolQuery: (pool, form, _sql, v) => (form === 'promise' ? pool.use(async () => v) : new Promise((resolve, reject) => void pool.use(async () => v).then(resolve, reject))),
    // Ids differ between the runs; what the program sees is whether it got one.
    giveBack: async (pool, resource, how) => (how === 'plain' ? pool.release(resource) : pool.destroy(resource)),
    withShortTimeout: async (pool, take) => {
      const config = (pool as unknown as { _config: { acquireTimeoutMillis: number | null } })._config;
      const before = config.acquireTimeoutMillis;
      config.acquireTimeoutMillis = 20;
      try {
        return await take();
      } finally {
        config.acquireTimeoutMillis = before;
      }
    },
  };
}
