import type { LeaseInfo } from '../../lib/index.js';

/** The most frames past its call site a short capture shows (see `framesPastSite`). */
export const shortPastSite = 5;

/**
 * How many frames a lease's stack shows past its call site. A short capture shows at most
 * five (one of context, and up to four spare ones when library frames lie between the pool
 * and the app); a full one shows every frame up to 32 captured.
 */
export function framesPastSite(lease: Pick<LeaseInfo, 'callSite' | 'stack'>): number {
  const lines = lease.stack?.split('\n') ?? [];
  const at = lines.findIndex((line) => lease.callSite !== undefined && line.includes(lease.callSite));
  return at === -1 ? 0 : lines.length - at - 1;
}

/**
 * Under stacks 'auto', runs `once` (which opens one lease and returns it, open) until a
 * lease has a short capture, not a full stack the budget allowed: what a default capture
 * gets after a pool's first acquires. Each lease's call site goes to `seen`, the last the
 * short one; `close` gives each back. Stops after `tries` with none short.
 */
export async function untilShortCapture<T>(
  once: () => Promise<{ lease: LeaseInfo | undefined; value: T }>,
  close: (value: T) => Promise<unknown>,
  tries = 200,
): Promise<{ seen: Array<string | undefined>; short: boolean }> {
  const seen: Array<string | undefined> = [];
  for (let i = 0; i < tries; i++) {
    const { lease, value } = await once();
    seen.push(lease?.callSite);
    await close(value);
    // Cut short of the app's line, or a short capture that reached it.
    if (lease?.callSite === undefined || framesPastSite(lease) <= shortPastSite) return { seen, short: true };
  }
  return { seen, short: false };
}
