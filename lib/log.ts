import createDebug, { type Debugger } from 'debug';
import { escapeLine } from './escape.js';

// debug.enable() stores the namespaces it was given here: an untyped but long-standing field.
const settings = createDebug as unknown as { namespaces?: string };

/**
 * Whether `log` is enabled, for the acquire/release path, where debug's own `enabled`
 * getter costs ~10 ns a call. The answer changes only when debug.enable() sets new
 * namespaces, so it is asked again only then.
 */
export function enabledCheck(log: Debugger): () => boolean {
  let seen: string | undefined | null = null;
  let enabled = false;
  return () => {
    if (settings.namespaces !== seen) {
      seen = settings.namespaces;
      enabled = log.enabled;
    }
    return enabled;
  };
}

/**
 * A debug logger for `namespace` whose string arguments are escaped as one line each
 * (escape.ts): a pool name, a path or a query in a debug line cannot forge another line or
 * reach the terminal as an escape sequence. debug's own prefix and colours are untouched.
 */
export function debugLogger(namespace: string): Debugger {
  const logger = createDebug(namespace);
  // debug calls `logger.log` (else its own `createDebug.log`) with the format and the %s/%d arguments still apart.
  logger.log = function (this: unknown, ...args: unknown[]) {
    for (let i = 1; i < args.length; i++) if (typeof args[i] === 'string') args[i] = escapeLine(args[i] as string);
    return (createDebug as unknown as { log: (...args: unknown[]) => unknown }).log.apply(this, args);
  };
  return logger;
}
