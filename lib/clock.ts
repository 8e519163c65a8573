/** Monotonic milliseconds. Read through the global so fake timers (sinon, tap's clock) govern it. */
export function now(): number {
  return performance.now();
}

/** Converts a monotonic reading to epoch milliseconds. */
export function toEpoch(mono: number): number {
  return Math.round(Date.now() - performance.now() + mono);
}
