import type { Labels } from './options.js';

/** The slice of `@opentelemetry/api` poolwatch reads. */
interface OtelApi {
  trace: { getActiveSpan(): { spanContext(): { traceId: string; spanId: string } } | undefined };
}

// Loaded on first use: undefined not tried yet, null not installed (an optional peer dependency).
let api: OtelApi | null | undefined;

// Where every copy of @opentelemetry/api 1.x registers its globals (the key is part of the
// API's cross-copy contract). Until a context manager is registered there, the API's no-op
// one makes every active span undefined.
const registryKey = Symbol.for('opentelemetry.js.api.1');
type Registry = { context?: unknown };
// The registry object, once some copy of the API has made one: it is never removed, only
// its entries. Until then the global object is looked at most once a second (a symbol
// lookup there costs ~15 ns), so an SDK started after the first acquire shows within a second.
let registry: Registry | undefined;
let lookAgainAt = -Infinity;
const lookEveryMs = 1000;

function load(): OtelApi | null {
  try {
    return require('@opentelemetry/api') as OtelApi;
  } catch {
    return null;
  }
}

/**
 * The active OpenTelemetry span's ids as labels (`traceId`, `spanId`), so a report links
 * to its trace; undefined when `@opentelemetry/api` is not installed or no span is active.
 * `at`: the acquire's monotonic time.
 */
export function traceLabels(at: number): Labels | undefined {
  if (registry === undefined) {
    // A clock set back (a test's fake timers) looks again at once.
    if (at < lookAgainAt && at >= lookAgainAt - lookEveryMs) return undefined;
    lookAgainAt = at + lookEveryMs;
    registry = (globalThis as { [registryKey]?: Registry })[registryKey];
    if (registry === undefined) return undefined;
  }
  // Read on every acquire: without a context manager, asking the API costs ~100 ns to learn nothing.
  if (registry.context === undefined) return undefined;
  if (api === undefined) api = load();
  if (api === null) return undefined;
  const span = api.trace.getActiveSpan();
  if (span === undefined) return undefined;
  const { traceId, spanId } = span.spanContext();
  return { traceId, spanId };
}
