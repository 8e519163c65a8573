import type { ChannelEvent } from './channels.js';
import type { LeakReleasedEvent, MisuseEvent } from './events.js';
import type { ExhaustedEvent } from './exhaustion.js';
import type { LeaseInfo } from './lease.js';
import { formatDuration, type LeakReport } from './report.js';
import { escapeLine, escapeLines } from './escape.js';

/** The events poolwatch's logs show (the preload's POOLWATCH_LOG, and an attach): all but acquire, release and destroy. */
export type ReportedEvent = Exclude<ChannelEvent, 'acquire' | 'release' | 'destroy'>;
export const reportedEvents: readonly ReportedEvent[] = ['leak', 'leak-released', 'misuse', 'exhausted', 'slow'];

// The one text of `POOLWATCH_LOG=text` and of an attach: the same message reads the same
// whichever shows it. Every line is escaped as one line (escape.ts): a one-line event
// stays one line whatever its pool name, path, query or message holds, and a report's
// lines (escaped where they are made) carry no control character.

// Repeats are shown at the 2nd, 4th, 8th… occurrence: a call site that leaks on every
// request costs a log line per doubling, not one per request.
const isShownRepeat = (n: number) => n > 1 && (n & (n - 1)) === 0;
// The most keys remembered for counting repeats; past it, new keys are not counted (each shows once).
const maxKeys = 10_000;

class Counter {
  readonly #counts = new Map<string, number>();
  next(key: string): number {
    const n = (this.#counts.get(key) ?? 0) + 1;
    if (n > 1 || this.#counts.size < maxKeys) this.#counts.set(key, n);
    return n;
  }
}

/** Formats each event as the preload's text log would, or undefined for a repeat it leaves out. */
export type TextFormatter = (event: ReportedEvent, message: unknown) => string | undefined;

/** A formatter with its own repeat counters (one per reader: each sees the first of each line). */
export function textFormatter(): TextFormatter {
  const misuse = new Counter();
  const late = new Counter();
  const slow = new Counter();
  return (event, message) => {
    switch (event) {
      case 'leak': {
        const report = message as LeakReport;
        const n = report.occurrence;
        if (n === 1) return escapeLines(report.format().split('\n'));
        if (!isShownRepeat(n)) return undefined;
        return escapeLine(
          `poolwatch: ${n} leaks so far in pool "${report.pool}" from ${report.callSite ?? 'an unknown line'} (the first is shown above); ` +
          `the latest, lease #${report.leaseId}, held ${formatDuration(report.heldMs)}`
        );
      }
      case 'leak-released': {
        const e = message as LeakReleasedEvent;
        const n = late.next(`${e.pool}\0${e.report.callSite}`);
        if (n !== 1 && !isShownRepeat(n)) return undefined;
        const repeat = n === 1 ? '' : ` (${n} so far from this line)`;
        return escapeLine(`poolwatch: leaked lease #${e.leaseId} of pool "${e.pool}" came back after ${formatDuration(e.heldMs)}${repeat}: acquired at ${e.report.callSite ?? 'an unknown line'}`);
      }
      case 'misuse': {
        const e = message as MisuseEvent;
        const n = misuse.next(`${e.pool}\0${e.kind}\0${e.callSite}`);
        if (n !== 1 && !isShownRepeat(n)) return undefined;
        return escapeLine(`poolwatch: ${e.message}${n === 1 ? '' : ` (${n} times so far from this line)`}`);
      }
      case 'exhausted':
        return escapeLines((message as ExhaustedEvent).message.split('\n'));
      case 'slow': {
        const lease = message as LeaseInfo;
        const n = slow.next(`${lease.pool}\0${lease.callSite}`);
        if (n !== 1 && !isShownRepeat(n)) return undefined;
        const since = lease.activitySince === undefined ? '' : ` for ${formatDuration(Math.max(0, lease.acquiredAt + lease.heldMs - lease.activitySince))}`;
        const repeat = n === 1 ? '' : ` (${n} so far from this line)`;
        return escapeLine(
          `poolwatch: slow, not leaked: lease #${lease.leaseId} of pool "${lease.pool}", held ${formatDuration(lease.heldMs)}, has been running a query${since}${repeat}; ` +
          `acquired at ${lease.callSite ?? 'an unknown line'}${lease.lastQuery === undefined ? '' : `; query: ${lease.lastQuery}`}`
        );
      }
    }
  };
}

/** The fields of `POOLWATCH_LOG=json`'s line for an event (without `poolwatch` and `time`). */
export function jsonFields(message: unknown): object {
  // A leak report is an Error: its toJSON() says which fields it has.
  return typeof (message as { toJSON?: unknown }).toJSON === 'function' ? (message as { toJSON(): object }).toJSON() : (message as object);
}
