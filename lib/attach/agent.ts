/**
 * What `poolwatch attach` loads into the running process it attaches to (with require(),
 * from the CLI's own install). The CLI calls these through the inspector
 * (`Runtime.callFunctionOn`, with this module as `this`); each works on the process's one
 * attach host, whichever copy of poolwatch made it. Never imported by an app.
 */
import { AttachHost, protocol, type BeginOptions, type BeginResult, type EndResult, type FoundSummary } from './host.js';
import type { PoolHolders } from './holders.js';

export { protocol };

function host(name: string): AttachHost {
  const current = AttachHost.current();
  if (current === undefined) throw new Error(`no attach session "${name}" in this process (it expired)`);
  return current;
}

/** Joins (or starts) the attach in this process as session `name`: `name` is the CLI's binding. */
export function begin(name: string, options: BeginOptions): BeginResult {
  return AttachHost.begin(name, options);
}

/** The prototypes whose instances the CLI should find next (`Runtime.queryObjects`); empty when done. */
export function toQuery(name: string): object[] {
  return host(name).toQuery(name);
}

/** Takes the instances the CLI found. */
export function found(name: string, objects: unknown[]): number {
  return host(name).found(name, objects);
}

/** Watches the pools found (for `status`, `watch` is false: lists them only). */
export function adopt(name: string, watch: boolean): FoundSummary[] {
  return host(name).adopt(name, watch);
}

/** Who holds each pool's connections now. */
export function holders(name: string): PoolHolders[] {
  return host(name).holders(name);
}

/** The CLI is still there; false when its session has expired. */
export function ping(name: string): boolean {
  return AttachHost.current()?.ping(name) ?? false;
}

/** How many CLIs are attached now (to tell them from another debugger). */
export function sessions(): number {
  return AttachHost.current()?.sessions ?? 0;
}

/** Ends session `name`. */
export function end(name: string): EndResult {
  return AttachHost.current()?.end(name) ?? { closeInspector: false, kept: false, unwatched: 0, sessionsLeft: 0 };
}

/** Closes this process's inspector, once the reply to this call has gone out. */
export function closeInspector(): void {
  AttachHost.closeInspector();
}
