import { formatDuration, formatLabels, type FormatOptions, type LeakReport } from './report.js';
import { escapeLine } from './escape.js';

/** Leak reports of one pool from one call site: what a person fixes once. */
export interface ReportGroup {
  readonly pool: string;
  /** `path:line:column` shared by the group; undefined for leases whose stack was not captured. */
  readonly callSite: string | undefined;
  /** Oldest first. */
  readonly reports: readonly LeakReport[];
  /** How long the oldest lease of the group had been held. */
  readonly oldestHeldMs: number;
}

/** Options of {@link formatReportGroups}. */
export interface GroupFormatOptions extends FormatOptions {
  /** Highlight the headline, the acquiring line and the caret with ANSI colours. Default `false`. */
  color?: boolean;
}

/**
 * Groups reports by pool and call site. Groups come in the order of their oldest lease,
 * reports inside a group oldest first.
 */
export function groupReports(reports: readonly LeakReport[]): ReportGroup[] {
  const byKey = new Map<string, LeakReport[]>();
  const sorted = [...reports].sort((a, b) => a.acquiredAt - b.acquiredAt || a.leaseId - b.leaseId);
  for (const report of sorted) {
    // A NUL cannot appear in a pool name or a path, so the key cannot collide.
    const key = `${report.pool}\0${report.callSite ?? ''}`;
    const group = byKey.get(key);
    if (group === undefined) byKey.set(key, [report]);
    else group.push(report);
  }
  return [...byKey.values()].map((group) => ({
    pool: group[0]!.pool,
    callSite: group[0]!.callSite,
    reports: group,
    oldestHeldMs: Math.max(...group.map((report) => report.heldMs)),
  }));
}

/** `test/x.test.ts:42` from `test/x.test.ts:42:11`: people look for the line. */
function fileAndLine(callSite: string): string {
  return callSite.replace(/:\d+$/, '');
}

/** The one-line heading of a group: `3 leases from test/x.test.ts:42 in pool "main", oldest held 31.0 s`. */
export function groupHeadline(group: ReportGroup): string {
  const count = group.reports.length;
  const what = count === 1 ? '1 lease' : `${count} leases`;
  const where = group.callSite === undefined ? 'from an unknown line (no stack captured)' : `from ${fileAndLine(group.callSite)}`;
  const held = count === 1 ? `held ${formatDuration(group.oldestHeldMs)}` : `oldest held ${formatDuration(group.oldestHeldMs)}`;
  return escapeLine(`${what} ${where} in pool "${group.pool}", ${held}`);
}

const ansi = {
  bold: (text: string) => `\u001b[1m${text}\u001b[22m`,
  red: (text: string) => `\u001b[31m${text}\u001b[39m`,
  dim: (text: string) => `\u001b[2m${text}\u001b[22m`,
};

function paint(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      if (/^>\s+\d+ \|/.test(line.trimStart())) return ansi.red(ansi.bold(line));
      if (/^\s+\| +\^$/.test(line)) return ansi.red(line);
      if (/^\s+(at |… |context: |waited )/.test(line)) return ansi.dim(line);
      return line;
    })
    .join('\n');
}

/**
 * One group as text: its headline, the oldest lease's full report (code frame, frames,
 * context), then one line for each other lease of the group (id, held time, context).
 */
export function formatGroup(group: ReportGroup, options: GroupFormatOptions = {}): string {
  const { color = false, ...formatOptions } = options;
  const [oldest, ...others] = group.reports;
  const headline = groupHeadline(group);
  const out = [color ? ansi.bold(ansi.red(headline)) : headline];
  const body = oldest!.format(formatOptions).replace(/^/gm, '  ');
  out.push(color ? paint(body) : body);
  for (const report of others) {
    const line = `    also lease #${report.leaseId}, held ${formatDuration(report.heldMs)}; context: ${formatLabels(report.context)}`;
    out.push(color ? ansi.dim(line) : line);
  }
  return out.join('\n');
}

/** Every group of `reports`, formatted and separated by a blank line; `''` when there are none. */
export function formatReportGroups(reports: readonly LeakReport[], options: GroupFormatOptions = {}): string {
  return groupReports(reports)
    .map((group) => formatGroup(group, options))
    .join('\n\n');
}
