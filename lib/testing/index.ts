import { Detector, watchingDetectors } from '../detector.js';
import { PoolwatchTypeError, codes, describe } from '../errors.js';
import { formatReportGroups, groupReports, groupHeadline } from '../report-group.js';
import type { LeakReport } from '../report.js';
import { escapeLine } from '../escape.js';

/** Options of {@link expectNoLeaks}. */
export interface ExpectNoLeaksOptions {
  /** The test's name, shown in the message. */
  name?: string;
  /** ANSI colours in the message. Default: only when stderr is a terminal and `NO_COLOR` is unset. */
  color?: boolean;
}

/**
 * Thrown by {@link expectNoLeaks}: its message is the formatted report of every lease
 * left open, grouped by call site.
 */
export class LeakError extends Error {
  override readonly name = 'LeakError';
  readonly code = codes.leak;
  readonly #reports: readonly LeakReport[];

  constructor(message: string, reports: readonly LeakReport[]) {
    super(message);
    this.#reports = reports;
  }

  /** One report per open lease, oldest first. A getter, so runners that print an error's own fields show the message alone. */
  get reports(): readonly LeakReport[] {
    return this.#reports;
  }
}

// Per detector, the last lease id a check has looked at: a lease left open by one test
// is reported by that test's check and not blamed again on every test after it.
const checkpoints = new WeakMap<Detector, number>();

function defaultColor(): boolean {
  return process.stderr.isTTY === true && process.env.NO_COLOR === undefined;
}

function isOptions(value: unknown): value is ExpectNoLeaksOptions {
  return typeof value === 'object' && value !== null && !(value instanceof Detector) && !Array.isArray(value);
}

/**
 * Throws a {@link LeakError} (code `POOLWATCH_LEAK`) when a lease opened since the last
 * check is still open, in `detector` or, without one, in every detector watching a pool.
 * Meant for `afterEach` or `t.teardown`: the first check covers every lease since the
 * detector began; each later one only leases opened since the check before it.
 */
export function expectNoLeaks(detector?: Detector | ExpectNoLeaksOptions, options?: ExpectNoLeaksOptions): void {
  if (options === undefined && isOptions(detector)) {
    options = detector;
    detector = undefined;
  }
  if (detector !== undefined && !(detector instanceof Detector)) {
    throw new PoolwatchTypeError(codes.invalidOption, `Expected the detector of expectNoLeaks() to be a Detector (from createDetector() or detectorOf(pool)), got ${describe(detector)}.`);
  }
  const { name, color = defaultColor() } = options ?? {};
  const detectors = detector === undefined ? watchingDetectors() : [detector];
  const reports: LeakReport[] = [];
  for (const each of detectors) {
    reports.push(...each.openReports(checkpoints.get(each) ?? 0));
    checkpoints.set(each, each.lastLeaseId);
  }
  if (reports.length === 0) return;
  let message: string;
  try {
    message = leakMessage(reports, name, color);
  } catch {
    // Whatever in a report could not be shown, the test still fails with a LeakError.
    message = `${reports.length === 1 ? '1 connection' : `${reports.length} connections`} still leased after the test`;
  }
  throw new LeakError(message, reports);
}

function leakMessage(reports: readonly LeakReport[], name: string | undefined, color: boolean): string {
  const groups = groupReports(reports);
  const count = reports.length === 1 ? '1 connection' : `${reports.length} connections`;
  // A test's name is text poolwatch did not choose: one line, escaped.
  const after = name === undefined ? 'after the test' : `after test "${escapeLine(name)}"`;
  const sites = groups.length === 1 ? groupHeadline(groups[0]!) : `${groups.length} call sites`;
  const headline = `${count} still leased ${after} (${sites})`;
  return `${headline}\n\n${formatReportGroups(reports, { color })}`;
}
