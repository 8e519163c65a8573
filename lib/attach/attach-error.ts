/** Why `poolwatch attach` or `status` could not attach: a stable code, and one line for people. */
export type AttachErrorCode =
  /** No process has that pid. */
  | 'POOLWATCH_ATTACH_NO_PROCESS'
  /** The process belongs to another user. */
  | 'POOLWATCH_ATTACH_NOT_PERMITTED'
  /** The process is not a Node.js process (or cannot open its inspector on a signal). */
  | 'POOLWATCH_ATTACH_NOT_NODE'
  /** The inspector's port is taken by another process. */
  | 'POOLWATCH_ATTACH_PORT_TAKEN'
  /** A debugger is connected to the target's inspector already. */
  | 'POOLWATCH_ATTACH_INSPECTED'
  /** The inspector would open, or opened, on an address other machines reach: nothing was attached. */
  | 'POOLWATCH_ATTACH_NOT_LOOPBACK'
  /** No inspector is open and no signal may open one (--no-signal, or --disable-sigusr1). */
  | 'POOLWATCH_ATTACH_NO_INSPECTOR'
  /** SIGUSR1 was taken by a listener of the app's own: no inspector opened. */
  | 'POOLWATCH_ATTACH_SIGUSR1_TAKEN'
  /** Ctrl-C (or SIGTERM) before the attach was complete: what was done is undone. */
  | 'POOLWATCH_ATTACH_INTERRUPTED'
  /** The target did not answer over its inspector, or could not load poolwatch. */
  | 'POOLWATCH_ATTACH_TARGET_FAILED';

export class AttachError extends Error {
  override readonly name = 'AttachError';
  constructor(
    readonly code: AttachErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
