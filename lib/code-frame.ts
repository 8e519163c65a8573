import { readFileSync } from 'node:fs';
import { escapeLine } from './escape.js';

const cache = new Map<string, readonly string[] | null>();

function sourceLines(file: string): readonly string[] | null {
  let lines = cache.get(file);
  if (lines === undefined) {
    try {
      lines = readFileSync(file, 'utf8').split(/\r?\n/);
    } catch {
      lines = null;
    }
    // Reports are rare; a handful of files is all a process ever shows.
    if (cache.size > 64) cache.clear();
    cache.set(file, lines);
  }
  return lines;
}

/**
 * The source around `line` (1-based) with a marker under `column`, or undefined when
 * the file cannot be read.
 */
export function codeFrame(file: string, line: number, column: number, around = 2): string | undefined {
  const lines = sourceLines(file);
  if (lines === null || line < 1 || line > lines.length) return undefined;
  const first = Math.max(1, line - around);
  const last = Math.min(lines.length, line + around);
  const width = String(last).length;
  const out: string[] = [];
  for (let n = first; n <= last; n++) {
    // A source line can hold raw escapes (a string literal with ESC or a bidi override): shown escaped, the marker moved to match.
    const raw = lines[n - 1]!.replace(/\t/g, '  ');
    const text = escapeLine(raw);
    const gutter = String(n).padStart(width);
    out.push(`${n === line ? '>' : ' '} ${gutter} | ${text}`.trimEnd());
    if (n === line && column > 0) out.push(`  ${' '.repeat(width)} | ${' '.repeat(escapeLine(raw.slice(0, column - 1)).length)}^`);
  }
  return out.join('\n');
}
