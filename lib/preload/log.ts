import { subscribe } from 'node:diagnostics_channel';
import { channelNames } from '../channels.js';
import type { LeakReleasedEvent, MisuseEvent } from '../events.js';
import type { ExhaustedEvent } from '../exhaustion.js';
import type { LeaseInfo } from '../lease.js';
import { formatDuration, type LeakReport } from '../report.js';
import type { LogFormat } from './env.js';

// Repeats are shown at the 2nd, 4th, 8th… occurrence: a call site that leaks on every
// request costs a log line per doubling, not one per request.
const isShownRepeat = (n: number) => n > 1 && (n & (n - 1)) === 0;

// The most keys remembered for counting repeats; past it, new keys are not counted (each shows once).
const maxKeys = 10_000;

/** Text on stderr, ending its line; never a throw. */
export function write(text: string): void {
  try {
    process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
  } catch {
    // A closed stderr must not break the app.
  }
}

/** Counts occurrences per key, with a bound on how many keys it remembers. */
class Counter {
  readonly #counts = new Map<string, number>();
  next(key: string): number {
    const n = (this.#counts.get(key) ?? 0) + 1;
    if (n > 1 || this.#counts.size < maxKeys) this.#counts.set(key, n);
    return n;
  }
}

function textSink(): Record<keyof typeof channelNames, ((message: unknown) => void) | undefined> {
  const misuse = new Counter();
  const late = new Counter();
  const slow = new Counter();
  return {
    acquire: undefined,
    release: undefined,
    destroy: undefined,
    leak(message) {
      const report = message as LeakReport;
      // The detector counts leaks per pool and call site.
      const n = report.occurrence;
      if (n === 1) write(report.format());
      else if (isShownRepeat(n)) {
        write(
          `poolwatch: ${n} leaks so far in pool "${report.pool}" from ${report.callSite ?? 'an unknown line'} (the first is shown above); ` +
            `the latest, lease #${report.leaseId}, held ${formatDuration(report.heldMs)}`,
        );
      }
    },
    'leak-released'(message) {
      const event = message as LeakReleasedEvent;
      const n = late.next(`${event.pool}\0${event.report.callSite}`);
      if (n === 1 || isShownRepeat(n)) {
        const repeat = n === 1 ? '' : ` (${n} so far from this line)`;
        write(`poolwatch: leaked lease #${event.leaseId} of pool "${event.pool}" came back after ${formatDuration(event.heldMs)}${repeat}: acquired at ${event.report.callSite ?? 'an unknown line'}`);
      }
    },
    misuse(message) {
      const event = message as MisuseEvent;
      const n = misuse.next(`${event.pool}\0${event.kind}\0${event.callSite}`);
      if (n === 1 || isShownRepeat(n)) write(`poolwatch: ${event.message}${n === 1 ? '' : ` (${n} times so far from this line)`}`);
    },
    // The detector already limits these per pool.
    exhausted(message) {
      write((message as ExhaustedEvent).message);
    },
    slow(message) {
      const lease = message as LeaseInfo;
      const n = slow.next(`${lease.pool}\0${lease.callSite}`);
      if (n !== 1 && !isShownRepeat(n)) return;
      const since = lease.activitySince === undefined ? '' : ` for ${formatDuration(Math.max(0, lease.acquiredAt + lease.heldMs - lease.activitySince))}`;
      const repeat = n === 1 ? '' : ` (${n} so far from this line)`;
      write(
        `poolwatch: slow, not leaked: lease #${lease.leaseId} of pool "${lease.pool}", held ${formatDuration(lease.heldMs)}, has been running a query${since}${repeat}; ` +
          `acquired at ${lease.callSite ?? 'an unknown line'}${lease.lastQuery === undefined ? '' : `; query: ${lease.lastQuery}`}`,
      );
    },
  };
}

function jsonSink(): Record<keyof typeof channelNames, ((message: unknown) => void) | undefined> {
  const line = (event: string) => (message: unknown) => {
    try {
      // A leak report is an Error: its toJSON() says which fields it has.
      const fields = typeof (message as { toJSON?: unknown }).toJSON === 'function' ? (message as { toJSON(): object }).toJSON() : (message as object);
      write(JSON.stringify({ poolwatch: event, time: new Date().toISOString(), ...fields }));
    } catch {
      // A payload that cannot be serialised is skipped, never thrown into the pool.
    }
  };
  return { acquire: undefined, release: undefined, destroy: undefined, leak: line('leak'), 'leak-released': line('leak-released'), misuse: line('misuse'), exhausted: line('exhausted'), slow: line('slow') };
}

/**
 * Writes what every detector in the process reports to stderr, as `format` says. It
 * listens on poolwatch's diagnostics channels, so pools an app watches with its own
 * detector are logged too. Acquire and release are never subscribed: they stay free.
 */
export function startLog(format: LogFormat): void {
  if (format === 'off') return;
  const sink = format === 'json' ? jsonSink() : textSink();
  for (const event of Object.keys(channelNames) as (keyof typeof channelNames)[]) {
    const listener = sink[event];
    if (listener !== undefined) subscribe(channelNames[event], listener);
  }
}
