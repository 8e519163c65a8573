/**
 * The pool's own part of an error message. When a pool runs dry poolwatch appends who
 * holds it (`\npoolwatch: pool "…" …`); comparisons with an unwatched pool use the rest.
 */
export function poolsOwnMessage(message: string): string {
  const at = message.indexOf('\npoolwatch: pool "');
  return at === -1 ? message : message.slice(0, at);
}
