// The `floor` yardstick of DESIGN.md's generic-pool budgets, written from its definition,
// not from poolwatch's code: per cycle, a bare tracker reads the clock twice (acquire and
// release), makes one lease object, sets and gets one WeakMap entry by resource, and
// captures the acquiring call site as the default does. Nothing else: no wrapper, no
// counters, stats, events, context, ledger or timer. poolwatch's default is judged
// against it, and 'always' against the same yardstick capturing the full stack.

// The default's call-site capture on this benchmark's loop: the app's line is the first
// frame above the acquire, and the default keeps one frame past it (lib/watched-pool.ts).
export const callSiteDepth = 2;
// What 'always' captures (lib/stack.ts fullDepth).
export const fullDepth = 32;

class FloorLease {
  constructor(at, trace) {
    this.at = at;
    this.trace = trace;
    this.heldMs = 0;
  }
}

// Lazily formatted, as any cheap tracker keeps it: only the capture is paid per cycle.
function capture(depth) {
  const trace = {};
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = depth;
  Error.captureStackTrace(trace, capture);
  Error.stackTraceLimit = limit;
  return trace;
}

/** The generic-pool scenario's acquire+release cycle with the yardstick's work around it. */
export async function floorCycles(pool, n, depth, byResource) {
  for (let i = 0; i < n; i++) {
    const lease = new FloorLease(performance.now(), capture(depth));
    const resource = await pool.acquire();
    byResource.set(resource, lease);
    const held = byResource.get(resource);
    held.heldMs = performance.now() - held.at;
    await pool.release(resource);
  }
}
