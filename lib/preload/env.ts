import type { DetectorOptions, StackPolicy } from '../options.js';

/** How the preload writes what it finds: `text` for people, `json` for log pipelines, `off`. */
export type LogFormat = 'text' | 'json' | 'off';

/** The preload's settings, read from the environment. */
export interface PreloadSettings {
  readonly detector: DetectorOptions;
  readonly log: LogFormat;
  /** POOLWATCH_REPORT: where to write the HTML report at exit. */
  readonly report: string | undefined;
}

/**
 * What the environment says, or the one line that says which variable is wrong (with the
 * log format to say it in, when POOLWATCH_LOG itself is readable).
 */
export type ReadSettings = { readonly settings: PreloadSettings } | { readonly problem: string; readonly log: LogFormat };

// Where the preload leaves its detector settings: on the global object, so that the default
// detector of every copy of poolwatch in the process (the preload's, an app's own) is made
// with them, whoever asks for it first: the preload at its first pool, or the app.
const sharedKey = Symbol.for('poolwatch.preload.detector');

/** Makes `options` what `defaultDetector()` is made with, in every copy of poolwatch loaded in this process. */
export function shareDetectorSettings(options: DetectorOptions): void {
  (globalThis as { [sharedKey]?: DetectorOptions })[sharedKey] = Object.freeze({ ...options });
}

/** The detector settings the preload read, when it runs in this process. */
export function sharedDetectorSettings(): DetectorOptions | undefined {
  const shared = (globalThis as { [sharedKey]?: unknown })[sharedKey];
  return typeof shared === 'object' && shared !== null ? (shared as DetectorOptions) : undefined;
}

const stackPolicies: readonly StackPolicy[] = ['always', 'auto', 'never'];
const logFormats: readonly LogFormat[] = ['text', 'json', 'off'];

// A value is echoed only when it is short and plain: a variable set by mistake to a
// connection string or a password must not reach the log.
function shown(value: string): string {
  return /^[\w.+-]{1,24}$/.test(value) ? `"${value}"` : `a value of ${value.length} characters`;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T | string {
  const lower = value.trim().toLowerCase();
  return (allowed as readonly string[]).includes(lower)
    ? (lower as T)
    : `${name} must be ${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}, got ${shown(value)}`;
}

/**
 * Reads POOLWATCH_LEAK_THRESHOLD_MS, POOLWATCH_STACKS, POOLWATCH_LOG and POOLWATCH_REPORT. An unset or
 * empty variable takes the default; a bad one is a problem that names it.
 */
export function readSettings(env: NodeJS.ProcessEnv): ReadSettings {
  const detector: { leakThresholdMs?: number; stacks?: StackPolicy } = {};
  let log: LogFormat = 'text';

  // First: a problem with any other variable is said in the format asked for.
  const format = env.POOLWATCH_LOG;
  if (format?.trim()) {
    const chosen = oneOf('POOLWATCH_LOG', format, logFormats);
    if (!logFormats.includes(chosen as LogFormat)) return { problem: chosen, log };
    log = chosen as LogFormat;
  }

  const threshold = env.POOLWATCH_LEAK_THRESHOLD_MS?.trim();
  if (threshold) {
    const ms = threshold === 'Infinity' ? Infinity : /^\d+(\.\d+)?$/.test(threshold) ? Number(threshold) : NaN;
    if (!(ms > 0)) {
      return { problem: `POOLWATCH_LEAK_THRESHOLD_MS must be a positive number of milliseconds (or Infinity), got ${shown(env.POOLWATCH_LEAK_THRESHOLD_MS!)}`, log };
    }
    detector.leakThresholdMs = ms;
  }

  const stacks = env.POOLWATCH_STACKS;
  if (stacks?.trim()) {
    const policy = oneOf('POOLWATCH_STACKS', stacks, stackPolicies);
    if (!stackPolicies.includes(policy as StackPolicy)) return { problem: policy, log };
    detector.stacks = policy as StackPolicy;
  }

  // A path: anything but blank. Where it cannot be written is said at exit, when it is tried.
  const report = env.POOLWATCH_REPORT?.trim() || undefined;

  return { settings: { detector, log, report } };
}
