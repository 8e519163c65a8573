import type { Labels } from './options.js';

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
  } catch {
    return '[unserialisable]';
  }
}

/**
 * A plain copy of `labels` that any JSON.stringify, format() or log line can take: long
 * values clipped, BigInts and cycles written as text, a getter that throws shown as
 * `[unreadable]`, at most 32 labels. Made only when a report or view is made.
 */
export function safeLabels(labels: Labels): Labels {
  const out: Record<string, unknown> = {};
  let keys: string[];
  try {
    keys = Object.keys(labels);
  } catch {
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
    } catch {
      out[key] = '[unreadable]';
      continue;
    }
    // Defined as own data: a label named `__proto__` stays a label.
    Object.defineProperty(out, clip(key), { value: safeValue(value), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** `labels` as a payload carries them: the same object when already frozen, else a frozen copy a listener cannot write through. */
export function frozenLabels(labels: Labels): Labels {
  return Object.isFrozen(labels) ? labels : Object.freeze({ ...labels });
}
