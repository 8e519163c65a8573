// What poolwatch writes for people carries text it did not choose: labels, request ids
// from headers, queries, file paths, driver errors. Written raw, a newline in one forges a
// whole log line of its own, and an escape sequence, a BEL or a bidi override rewrites what
// the terminal (or a page) shows. Every line of text output goes through escapeLine.

// C0 controls, DEL, C1 controls (0x9B is a CSI by itself), the bidi embeddings, overrides
// and isolates, the Arabic letter mark and the LRM/RLM marks, and the two Unicode line
// terminators some viewers break lines at.
const unsafe = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const unsafeAll = new RegExp(unsafe.source, 'g');
// The same, for JSON text: C0 controls are JSON.stringify's to escape already.
const unsafeInJson = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return named[c] ?? (code <= 0xff ? `\\x${code.toString(16).toUpperCase().padStart(2, '0')}` : `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`);
}

/**
 * `text` as one line a terminal shows as written: control characters, bidi controls and
 * line separators become visible escapes (`\n`, `\x1B`, `\u202E`). Text without them is
 * returned as it is, so escaping twice changes nothing.
 */
export function escapeLine(text: string): string {
  return unsafe.test(text) ? text.replace(unsafeAll, escapeChar) : text;
}

/** Lines poolwatch composed, each escaped as one line, joined with newlines. */
export function escapeLines(lines: readonly string[]): string {
  return lines.map(escapeLine).join('\n');
}

/**
 * A JSON text with the characters JSON.stringify leaves raw but a terminal acts on (DEL,
 * C1 controls, bidi controls, U+2028/U+2029) written as `\uXXXX`: the same JSON value,
 * safe to print. They can only occur inside strings, where `\uXXXX` means the same.
 */
export function escapeJson(json: string): string {
  return json.replace(unsafeInJson, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
