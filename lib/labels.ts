import { ListenerError } from './errors.js';
import { escapeLine } from './escape.js';
import type { Labels } from './options.js';
import { warn } from './warn.js';

// What a report, `leases()`, `snapshot()` or an event carries of a lease's labels: enough
// to tell requests apart, never a payload. A 5 MB label would otherwise be a 5 MB report.
const maxLabels = 32;
const maxValueChars = 256;

function clip(text: string): string {
  return text.length <= maxValueChars ? text : `${text.slice(0, maxValueChars)}… (${text.length} characters)`;
}

// JSON.stringify throws on a BigInt or a cycle; these become text instead.
function jsonSafe(): (this: unknown, key: string, value: unknown) => unknown {
  const ancestors: unknown[] = [];
  return function (this: unknown, _key: string, value: unknown) {
    if (typeof value === 'bigint') return `${value}n`;
    if (typeof value !== 'object' || value === null) return value;
    // `this` is the object holding `value`: drop the ancestors that are not above it.
    while (ancestors.length > 0 && ancestors[ancestors.length - 1] !== this) ancestors.pop();
    if (ancestors.includes(value)) return '[circular]';
    ancestors.push(value);
    return value;
  };
}

// A label poolwatch cannot read (a getter, a toJSON or a Proxy trap that throws) is said
// once per process, with what it threw: after that it is just shown as unreadable.
let saidUnreadable = false;

function unreadable(error: unknown): void {
  if (saidUnreadable) return;
  saidUnreadable = true;
  let why: string;
  try {
    why = escapeLine(String((error as Error)?.message ?? error));
  } catch {
    why = 'an error whose message cannot be read';
  }
  try {
    warn(new ListenerError(`poolwatch: a label could not be read (${why}); what cannot be read is shown as [unreadable] or [unserialisable]`, error));
  } catch {
    // Never a throw from reading labels.
  }
}

function safeValue(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
      return clip(value);
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'boolean':
    case 'undefined':
      return value;
    case 'bigint':
      return `${value}n`;
    case 'symbol':
      return clip(value.toString());
    case 'function':
      return '[function]';
  }
  if (value === null) return null;
  try {
    const json = JSON.stringify(value, jsonSafe());
    if (json === undefined) return clip(String(value));
    return json.length <= maxValueChars ? JSON.parse(json) : clip(json);
  } catch (error) {
    unreadable(error);
    return '[unserialisable]';
  }
}

// Labels poolwatch made itself with safeLabels and froze: read as they are, never copied again.
const sealed = new WeakSet<object>();

/** No labels: frozen, and taken as they are wherever labels are copied. */
export const noLabels: Labels = seal({});

function seal(labels: Record<string, unknown>): Labels {
  Object.freeze(labels);
  sealed.add(labels);
  return labels;
}

/**
 * A plain copy of `labels` that any JSON.stringify, format() or log line can take, read
 * once and defensively: long values clipped, BigInts and cycles written as text, a
 * getter that throws shown as `[unreadable]`, a value whose toJSON throws as
 * `[unserialisable]`, labels whose keys cannot be listed (a Proxy) as
 * `{ labels: '[unreadable]' }`, at most 32 labels. Never throws; the first label it cannot
 * read is said once, as a process warning. Made only when a scope opens or a report or
 * view is made.
 */
export function safeLabels(labels: Labels): Labels {
  if (sealed.has(labels)) return labels;
  const out: Record<string, unknown> = {};
  let keys: string[];
  try {
    keys = Object.keys(labels);
  } catch (error) {
    unreadable(error);
    return { labels: '[unreadable]' };
  }
  for (let i = 0; i < keys.length; i++) {
    if (i === maxLabels) {
      out['…'] = `${keys.length - maxLabels} more labels`;
      break;
    }
    const key = keys[i]!;
    let value: unknown;
    try {
      value = (labels as Record<string, unknown>)[key];
    } catch (error) {
      unreadable(error);
      value = '[unreadable]';
    }
    // Defined as own data: a label named `__proto__` stays a label.
    Object.defineProperty(out, clip(key), { value: safeValue(value), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * `labels` as a payload, a report or a scope carries them: the same object when poolwatch
 * made it so already, else a frozen {@link safeLabels} copy a listener cannot write
 * through and JSON.stringify always takes.
 */
export function frozenLabels(labels: Labels): Labels {
  return sealed.has(labels) ? labels : seal(safeLabels(labels) as Record<string, unknown>);
}
