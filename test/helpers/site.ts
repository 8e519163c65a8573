import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

/** `path:line` (relative to cwd) of the line in `file` carrying `marker`, as a report's callSite begins. */
export function siteOf(file: string, marker: string): string {
  const lines = readFileSync(file, 'utf8').split('\n');
  const index = lines.findIndex((line) => line.includes(marker) && !line.includes('siteOf('));
  if (index === -1) throw new Error(`no line with ${marker} in ${file}`);
  return `${relative(process.cwd(), file)}:${index + 1}:`;
}
