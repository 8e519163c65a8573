import createDebug, { type Debugger } from 'debug';

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
