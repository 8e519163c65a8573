// The one way poolwatch takes what a user's callback returns: a leaf, for events.ts and channels.ts alike.
/**
 * When `result` is a promise (or any thenable), hands its rejection to `handle` instead of
 * leaving it unhandled: what a user's async callback rejects with is surfaced like what a
 * sync one throws. A thenable whose `then` throws is handled the same way.
 */
export function onRejected(result: unknown, handle: (error: unknown) => void): void {
  if ((typeof result !== 'object' && typeof result !== 'function') || result === null) return;
  try {
    const then = (result as PromiseLike<unknown>).then;
    if (typeof then === 'function') then.call(result, undefined, handle);
  } catch (error) {
    handle(error);
  }
}
