// poolwatch's own warnings (a capability a pool lacks, an option it cannot honour, a
// listener that threw) take one path, so that whoever writes poolwatch's output can write
// them its way: the preload's POOLWATCH_LOG=json writes them as JSON lines. Nobody taking
// them, they are Node's process warnings, as they have always been.

/** One of poolwatch's warnings, as a taker receives it. */
export interface PoolwatchWarning {
  /** `POOLWATCH_DEGRADED`, `POOLWATCH_LISTENER_ERROR`, …: what kind of warning it is. */
  readonly code: string;
  /** The warning's text, starting `poolwatch: `. */
  readonly message: string;
  /** The error behind it (a `ListenerError` and its `cause`), when there is one. */
  readonly error: Error | undefined;
}

/** Receives poolwatch's warnings instead of `process.emitWarning()`. */
export type WarningTaker = (warning: PoolwatchWarning) => void;

// On the global object: every copy of poolwatch in the process (an app's own beside the
// preload's) hands its warnings to the one taker.
const takerKey = Symbol.for('poolwatch.warnings');
type Host = { [takerKey]?: WarningTaker };

/** Makes `taker` receive every warning poolwatch gives from now on; undefined gives them back to Node. */
export function takeWarnings(taker: WarningTaker | undefined): void {
  (globalThis as Host)[takerKey] = taker;
}

/** Gives a warning: `message` (with `code`), or `error` (a `ListenerError`), which carries both. */
export function warn(warning: string | (Error & { readonly code: string }), code?: string): void {
  const taker = (globalThis as Host)[takerKey];
  if (typeof taker === 'function') {
    try {
      taker(typeof warning === 'string' ? { code: code ?? 'POOLWATCH_WARNING', message: warning, error: undefined } : { code: warning.code, message: warning.message, error: warning });
      return;
    } catch {
      // A taker that fails: the warning still goes out, as a process warning.
    }
  }
  if (typeof warning === 'string') process.emitWarning(warning, { code });
  else process.emitWarning(warning);
}
