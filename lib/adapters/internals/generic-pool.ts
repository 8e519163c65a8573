import type { Internals } from './probe.js';

/** generic-pool's request for a connection: the deferred its `acquire()` promise belongs to. */
export interface ResourceRequest {
  resolve(value: unknown): void;
  reject(reason: unknown): void;
}

/** What poolwatch reads of a generic-pool 3 `Pool` beyond its documented API. */
export interface GenericPoolInternals {
  /** The queue `acquire()` puts each request in; poolwatch sees the handover in its `resolve`. */
  readonly _waitingClientsQueue?: { enqueue?(request: ResourceRequest, priority?: number): void };
  /** The options as the pool resolved them; `acquireTimeoutMillis` is null when it has no timeout. */
  readonly _config?: { readonly acquireTimeoutMillis?: number | null };
}

export const genericPoolInternals: Internals<GenericPoolInternals> = {
  library: 'generic-pool',
  checked: '>=3.5.0 <4',
  offers: ['misuse', 'capacity', 'idle', 'acquireTimeout', 'exhaustion', 'handover'],
  shapes: [
    { name: 'pool._waitingClientsQueue.enqueue()', serves: ['handover'], present: (p) => typeof p._waitingClientsQueue?.enqueue === 'function' },
    { name: 'pool._config', serves: ['acquireTimeout'], present: (p) => typeof p._config === 'object' && p._config !== null },
  ],
};

/** How long the pool lets an acquire wait (ms); undefined when it has no limit. */
export function acquireTimeoutOf(pool: GenericPoolInternals): number | undefined {
  return pool._config?.acquireTimeoutMillis ?? undefined;
}
