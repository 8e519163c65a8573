import type { Labels } from './options.js';

/** The slice of `@opentelemetry/api` poolwatch reads. */
interface OtelApi {
  trace: { getActiveSpan(): { spanContext(): { traceId: string; spanId: string } } | undefined };
}

// Loaded on first use: undefined not tried yet, null not installed (an optional peer dependency).
let api: OtelApi | null | undefined;

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
 */
export function traceLabels(): Labels | undefined {
  if (api === undefined) api = load();
  if (api === null) return undefined;
  const span = api.trace.getActiveSpan();
  if (span === undefined) return undefined;
  const { traceId, spanId } = span.spanContext();
  return { traceId, spanId };
}
