/** SQL dialect quirks that decide what a double-quoted token is. */
export type Dialect = 'postgres' | 'mysql';

/** Longest shape shown, '…' included. */
const maxLength = 200;
/** Longest statement read a second and third time to keep more of its shape (see shapeQuery). */
const refineLimit = 1 << 16;

const TAB = 9;
const LF = 10;
const CR = 13;
const SPACE = 32;
const DQUOTE = 34;
const HASH = 35;
const DOLLAR = 36;
const AMP = 38;
const QUOTE = 39;
const OPEN = 40;
const CLOSE = 41;
const STAR = 42;
const PLUS = 43;
const COMMA = 44;
const DASH = 45;
const DOT = 46;
const SLASH = 47;
const QUESTION = 63;
const BACKSLASH = 92;
const BACKTICK = 96;

// What a shown token is to the folding of `(?, ?, ?)` into `(?)`.
const OTHER = 0;
const LIST_OPEN = 1;
const VALUE = 2;
const LIST_COMMA = 3;
const LIST_CLOSE = 4;

// How a quoted token reads backslashes.
const IDENTIFIER = 0; // not at all, whatever the server's settings
const PLAIN = 1; // not, unless the server is set to (Postgres' standard_conforming_strings off)
const ESCAPES = 2; // as escapes, unless the server is set not to (MySQL's NO_BACKSLASH_ESCAPES)
const ALWAYS_ESCAPES = 3; // as escapes, whatever the settings (Postgres' E'…')

const isSpace = (c: number): boolean => c === SPACE || (c >= TAB && c <= CR);
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isLetter = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
// Both dialects take any non-ASCII character in an unquoted identifier.
const isWordStart = (c: number): boolean => isLetter(c) || c === 95 || c >= 128;
const isWordPart = (c: number): boolean => isWordStart(c) || isDigit(c) || c === DOLLAR;
// A dollar quote's tag: an identifier without `$`.
const isTagPart = (c: number): boolean => isWordStart(c) || isDigit(c);

// The characters that may start a quoted token or a comment.
const postgresStarts = /['"$/-]/g;
const mysqlStarts = /['"`/#-]/g;

/** The shape as far as one pass over the statement got, and what the pass met on the way. */
class Shape {
  out = '';
  /** More than maxLength characters: the rest of the output no longer matters. */
  full = false;
  /** Whitespace or a comment since the last token. */
  space = false;
  /** 0, after `(` (1), or inside `(?` … whose `, ?` are held back in `pending` (2). */
  list = 0;
  pending = '';
  expectValue = false;
  /** Where the first string whose end depends on how the server reads backslashes starts, or -1. */
  ambiguousAt = -1;
  /** Set by quotedEnd for the token being read. */
  ambiguous = false;
  /** The pass stopped at a quote or comment that never ends. */
  unterminated = false;

  emit(token: string, kind: number): void {
    if (this.full) return;
    const spaced = this.space && this.out !== '';
    this.space = false;
    if (this.list === 2) {
      if (kind === (this.expectValue ? VALUE : LIST_COMMA)) {
        // Past maxLength, what is held back would only be cut off.
        if (this.pending.length <= maxLength) this.pending += spaced ? ' ' + token : token;
        this.expectValue = !this.expectValue;
        return;
      }
      this.list = 0;
      if (kind === LIST_CLOSE && !this.expectValue) {
        // `(?, ?, ?)`: the values held back are dropped.
        this.pending = '';
      } else {
        this.flush();
      }
    }
    this.commit(spaced ? ' ' + token : token);
    if (kind === LIST_OPEN) this.list = 1;
    else if (kind === VALUE && this.list === 1) {
      this.list = 2;
      this.expectValue = false;
    } else this.list = 0;
  }

  flush(): void {
    const pending = this.pending;
    this.pending = '';
    if (pending !== '') this.commit(pending);
  }

  private commit(text: string): void {
    this.out += text;
    if (this.out.length > maxLength) {
      this.full = true;
      this.out = this.out.slice(0, maxLength + 1);
    }
  }
}

/**
 * Where a quoted token that opened before `from` ends (after its closing quote), or -1
 * when it never does. A doubled quote is one quote character. Where the server's setting
 * decides whether a backslash escapes the quote after it, `shape` is marked ambiguous.
 */
function quotedEnd(sql: string, from: number, quote: number, backslash: number, shape: Shape): number {
  let backslashes = 0;
  for (let j = from; j < sql.length; j++) {
    const c = sql.charCodeAt(j);
    if (c === BACKSLASH && backslash !== IDENTIFIER) {
      if (backslash !== PLAIN) {
        if (backslash === ESCAPES && sql.charCodeAt(j + 1) === quote) shape.ambiguous = true;
        j++;
      } else backslashes++;
      continue;
    }
    if (c === quote) {
      if (backslashes % 2 === 1) shape.ambiguous = true;
      if (sql.charCodeAt(j + 1) !== quote) return j + 1;
      j++;
    }
    backslashes = 0;
  }
  return -1;
}

/** Where a block comment whose body starts at `from` ends, or -1; Postgres nests them. */
function blockCommentEnd(sql: string, from: number, nested: boolean): number {
  if (!nested) {
    const end = sql.indexOf('*/', from);
    return end < 0 ? -1 : end + 2;
  }
  let depth = 1;
  for (let j = from; j < sql.length - 1; j++) {
    const c = sql.charCodeAt(j);
    if (c === SLASH && sql.charCodeAt(j + 1) === STAR) {
      depth++;
      j++;
    } else if (c === STAR && sql.charCodeAt(j + 1) === SLASH) {
      j++;
      if (--depth === 0) return j + 1;
    }
  }
  return -1;
}

/** Whether the word sql[start, end) right before a quote makes one string of both: E'…', N'…', _utf8'…'. */
function isStringPrefix(sql: string, start: number, end: number, mysql: boolean): boolean {
  const c = sql.charCodeAt(start);
  if (mysql && c === 95) return end - start > 1;
  if (end - start !== 1) return false;
  // b, n, x in both; e only in Postgres.
  const lower = c | 32;
  return lower === 98 || lower === 110 || lower === 120 || (!mysql && lower === 101);
}

// More items of a list of values, read as the tokens below read them: `, ?`, `, $1`, `, 1e-5`,
// `, 'text'` (without backslashes or doubled quotes, which the tokens below then read).
// Sticky and one pass per stretch of items: linear, however long the list.
const postgresItems = /(?:[\t-\r ]*,[\t-\r ]*(?:\?|\$\d+|'[^'\\]*'(?!')|\.?\d(?:[eE][+-]\d|[\w.])*))+/y;
const mysqlItems = /(?:[\t-\r ]*,[\t-\r ]*(?:\?|'[^'\\]*'(?!')|"[^"\\]*"(?!")|\.?\d(?:[eE][+-]\d|[\w.])*))+/y;

/**
 * One pass over `sql`. `escapes`: whether plain strings read backslashes as escapes. From
 * `stopAt` on, everything is one `?`. With `endsOnly`, nothing is shown: the pass only finds
 * out whether the statement ends inside a quote or comment.
 */
function scan(sql: string, mysql: boolean, escapes: boolean, stopAt: number, endsOnly: boolean): Shape {
  const shape = new Shape();
  const plain = escapes ? ESCAPES : PLAIN;
  shape.full = endsOnly;
  const n = sql.length;
  let i = 0;
  while (i < n) {
    if (shape.full) {
      if (!endsOnly) break;
      // Only where quotes and comments start and end matters: on to the next character that
      // may start one, or to the start of the word right before it (E'…', a$b, 1e-5).
      const starts = mysql ? mysqlStarts : postgresStarts;
      starts.lastIndex = i;
      if (!starts.test(sql)) break;
      let k = starts.lastIndex - 1;
      while (k > i && isWordPart(sql.charCodeAt(k - 1))) k--;
      i = k;
    }
    if (i >= stopAt) {
      shape.emit('?', VALUE);
      break;
    }
    if (shape.list === 2 && !shape.expectValue && shape.pending.length > maxLength) {
      // Deep in a long list of values, which either folds into `(?)` or fills the shape.
      const items = mysql ? mysqlItems : postgresItems;
      items.lastIndex = i;
      if (items.test(sql)) {
        i = items.lastIndex;
        shape.space = false;
        continue;
      }
    }
    const start = i;
    const c = sql.charCodeAt(i);
    const next = sql.charCodeAt(i + 1);
    if (isSpace(c)) {
      shape.space = true;
      i++;
      continue;
    }
    if ((c === DASH && next === DASH) || (mysql && c === HASH)) {
      while (i < n && sql.charCodeAt(i) !== LF && sql.charCodeAt(i) !== CR) i++;
      shape.space = true;
      continue;
    }
    let end: number;
    // Unless found otherwise, the token is a value, shown as `?`.
    let kind = VALUE;
    let comment = false;
    if (c === SLASH && next === STAR) {
      end = blockCommentEnd(sql, i + 2, !mysql);
      comment = true;
    } else if (c === QUOTE) {
      end = quotedEnd(sql, i + 1, QUOTE, plain, shape);
    } else if (c === DQUOTE) {
      // A MySQL string, hidden; a Postgres identifier, shown.
      end = quotedEnd(sql, i + 1, DQUOTE, mysql ? plain : IDENTIFIER, shape);
      if (!mysql) kind = OTHER;
    } else if (c === BACKTICK && mysql) {
      end = quotedEnd(sql, i + 1, BACKTICK, IDENTIFIER, shape);
      kind = OTHER;
    } else if (isWordStart(c)) {
      end = i + 1;
      while (end < n && isWordPart(sql.charCodeAt(end))) end++;
      const after = sql.charCodeAt(end);
      if ((after === QUOTE || (mysql && after === DQUOTE)) && isStringPrefix(sql, start, end, mysql)) {
        end = quotedEnd(sql, end + 1, after, !mysql && (c | 32) === 101 ? ALWAYS_ESCAPES : plain, shape);
      } else if (!mysql && (c | 32) === 117 && end === i + 1 && after === AMP && sql.charCodeAt(end + 1) === QUOTE) {
        end = quotedEnd(sql, end + 2, QUOTE, plain, shape); // U&'…'
      } else {
        kind = OTHER;
      }
    } else if (isDigit(c) || (c === DOT && isDigit(next))) {
      // A number, with whatever letters cling to it (0x1F, 1e-5, 12abc): never part of an identifier.
      end = i + 1;
      while (end < n) {
        const d = sql.charCodeAt(end);
        if (isDigit(d) || isLetter(d) || d === 95 || d === DOT) end++;
        else if ((d === PLUS || d === DASH) && (sql.charCodeAt(end - 1) | 32) === 101 && isDigit(sql.charCodeAt(end + 1))) end++;
        else break;
      }
    } else if (c === DOLLAR && !mysql && isDigit(next)) {
      end = i + 1;
      while (end < n && isDigit(sql.charCodeAt(end))) end++;
    } else if (c === DOLLAR && !mysql && (next === DOLLAR || isWordStart(next))) {
      let tagEnd = i + 1;
      while (tagEnd < n && isTagPart(sql.charCodeAt(tagEnd))) tagEnd++;
      if (sql.charCodeAt(tagEnd) === DOLLAR) {
        const delimiter = sql.slice(start, tagEnd + 1);
        const close = sql.indexOf(delimiter, tagEnd + 1);
        end = close < 0 ? -1 : close + delimiter.length;
      } else {
        end = i + 1;
        kind = OTHER;
      }
    } else {
      end = i + 1;
      kind = c === OPEN ? LIST_OPEN : c === CLOSE ? LIST_CLOSE : c === COMMA ? LIST_COMMA : c === QUESTION ? VALUE : OTHER;
    }
    if (shape.ambiguous) {
      shape.ambiguous = false;
      if (shape.ambiguousAt < 0) shape.ambiguousAt = start;
    }
    if (end < 0) {
      // Never closed: what follows could all be the value, so none of it is shown.
      shape.emit('?', VALUE);
      shape.unterminated = true;
      break;
    }
    if (comment) shape.space = true;
    else if (kind === VALUE) shape.emit('?', VALUE);
    else if (!shape.full) shape.emit(sql.slice(start, end), kind);
    i = end;
  }
  shape.flush();
  return shape;
}

/**
 * The statement's shape for reports: literals and parameter values replaced by `?`, comments
 * removed, whitespace collapsed, cut at 200 characters (ending with '…' when cut, total length <= 200).
 * Never throws; returns undefined for anything that is not a string or has no statement text.
 */
export function shapeQuery(sql: unknown, dialect: Dialect): string | undefined {
  if (typeof sql !== 'string') return undefined;
  const mysql = dialect === 'mysql';
  // MySQL reads backslashes in strings as escapes and Postgres does not, unless set otherwise.
  let shape = scan(sql, mysql, mysql, Infinity, false);
  if (shape.ambiguousAt >= 0) {
    // Read the other way, a string that holds `\'` ends elsewhere, and so do the quotes after
    // it: values could show as code. The shape stops at that string, unless the other reading
    // leaves a quote open where this one does not (as a lone 'O\'Brien' does).
    const keep =
      sql.length <= refineLimit &&
      scan(sql, mysql, !mysql, Infinity, true).unterminated &&
      !scan(sql, mysql, mysql, Infinity, true).unterminated;
    if (!keep) shape = scan(sql, mysql, mysql, shape.ambiguousAt, false);
  }
  const out = shape.out;
  if (!shape.full) return out === '' ? undefined : out;
  let cut = maxLength - 1;
  const last = out.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--; // never half a surrogate pair
  return out.slice(0, cut).trimEnd() + '…';
}

/**
 * The SQL text of what a driver's query method was given: a string, or an object's `text` (pg)
 * or `sql` (mysql2, mariadb) string; else undefined. Never throws (guard getters with try/catch).
 */
export function sqlOf(query: unknown): string | undefined {
  if (typeof query === 'string') return query;
  if (typeof query !== 'object' || query === null) return undefined;
  try {
    const text: unknown = (query as { text?: unknown }).text;
    if (typeof text === 'string') return text;
  } catch {
    // a getter that throws: `sql` may still be there
  }
  try {
    const sql: unknown = (query as { sql?: unknown }).sql;
    if (typeof sql === 'string') return sql;
  } catch {
    // nothing to show
  }
  return undefined;
}
