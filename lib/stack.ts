import { existsSync } from 'node:fs';
import { findSourceMap } from 'node:module';
import { relative, isAbsolute, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { escapeLine } from './escape.js';

/** Holds a captured stack; `stack` is formatted by V8 only when first read. */
export class Trace {
  declare readonly stack: string;
  constructor(
    /** How many frames the capture was allowed: a stack of that many frames may have been cut short. */
    readonly depth: number,
    /**
     * The wrapper the capture was taken above: which way the app came to the pool (its
     * `query()`, its `connect()`, an ORM's `transaction()`), each learning its own depth.
     */
    readonly above: Function,
  ) {}
}

// Deep enough to see past a pool library's and an ORM's frames to the app's own line.
export const fullDepth = 32;

/** Captures up to `depth` frames of the caller's stack above `above` (which, and whose callers' frames, are left out). */
export function captureTrace(above: Function, depth = fullDepth): Trace {
  const trace = new Trace(depth, above);
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = depth;
  Error.captureStackTrace(trace, above);
  Error.stackTraceLimit = limit;
  return trace;
}

/** One frame of a stack: the text as V8 wrote it, and where it points when it points at a file. */
export interface Frame {
  readonly text: string;
  /** The function name as V8 gave it, e.g. `async getUser`; empty for top-level code. */
  readonly fn: string;
  readonly file: string | undefined;
  readonly line: number;
  readonly column: number;
}

/** Where an acquire came from: the app's line, and the frames worth showing. */
export interface Origin {
  /** `path:line:column`, relative to cwd when under it. */
  readonly callSite: string | undefined;
  readonly site: Frame | undefined;
  /** Frames with poolwatch, the pool library and Node's internals removed, app frames first. */
  readonly frames: readonly Frame[];
  /**
   * How many frames of the captured stack, counted from its top, reach the app's own
   * line (outside node_modules): what a capture needs to name it. 0 when no such frame
   * was captured.
   */
  readonly appDepth: number;
  /** How many frames the captured stack had, all kinds counted. */
  readonly captured: number;
}

// `at fn (location)`, `at location`, and `at async location`: the frame of an ES module's
// top-level await, which names no function.
const framePattern = /^\s*at (?:(.*?) \(|async (?=.+:\d+:\d+$))?(.+?):(\d+):(\d+)\)?$/;
// poolwatch's own files: this module sits at the top of the compiled tree.
const ownRoot = __dirname + sep;

function toPath(location: string): string {
  return location.startsWith('file://') ? fileURLToPath(location) : location;
}

function parseFrame(text: string): Frame {
  const match = framePattern.exec(text);
  // What is shown (text, fn) is escaped: a function or file name can carry terminal escapes. The file stays as it is, to be read.
  if (match === null) return { text: escapeLine(text.trim()), fn: '', file: undefined, line: 0, column: 0 };
  const [, fn = '', location, line, column] = match;
  return { text: escapeLine(text.trim()), fn: escapeLine(fn), file: toPath(location!), line: Number(line), column: Number(column) };
}

function isInternal(frame: Frame): boolean {
  const file = frame.file;
  return file === undefined || file.startsWith('node:') || file.startsWith('internal/') || !isAbsolute(file);
}

/** Shows a file path relative to cwd when it is under it, as one line of text (control characters escaped). */
export function displayPath(file: string): string {
  const cwd = process.cwd() + sep;
  return escapeLine(file.startsWith(cwd) ? relative(cwd, file) : file);
}

/** Matches frames of the given npm packages, e.g. `['generic-pool']`. */
export function libraryMatcher(libraries: readonly string[]): (file: string) => boolean {
  const needles = libraries.flatMap((name) => [`/node_modules/${name}/`, `\\node_modules\\${name.replace('/', '\\')}\\`]);
  return (file) => needles.some((needle) => file.includes(needle));
}

const inNodeModules = /[/\\]node_modules[/\\]/;

// Whether a frame's file is on disk, by path, remembered (a stack names few distinct files).
const onDisk = new Map<string, boolean>();
const maxRemembered = 10_000;

/**
 * Whether `file` can be the app's own line. With --enable-source-maps a library's frame
 * shows the path its source map names, and some (TypeORM's) name a path outside
 * node_modules that does not exist: that is no line of the app.
 */
function isAppFile(file: string): boolean {
  if (inNodeModules.test(file)) return false;
  let found = onDisk.get(file);
  if (found === undefined) {
    found = existsSync(file);
    if (onDisk.size < maxRemembered) onDisk.set(file, found);
  }
  return found;
}

/** Where a frame pointed before anyone mapped it: V8's own position. */
interface Position {
  readonly file: string | undefined;
  readonly line: number;
  readonly column: number;
}

/**
 * A trace's stack text, as the process formats stacks (a test runner's formatter maps
 * the files it transformed; Node's own, with source maps on, maps the rest). When a
 * formatter is installed, Node's mapping does not run: the frames' own positions are
 * noted too, so that those the formatter left as they were can still be mapped through
 * the source maps Node holds (`mapFrame`). The formatter is wrapped only for this read.
 */
function readStack(trace: Trace): { text: string; positions: readonly Position[] | undefined } {
  const formatter = Error.prepareStackTrace;
  // V8 formats a stack once, at its first read: a trace read before (a probe's) keeps what was noted then.
  if (typeof formatter !== 'function' || read.has(trace)) return { text: trace.stack, positions: read.get(trace) ?? undefined };
  let positions: Position[] | null = null;
  const noting = function (this: unknown, error: Error, sites: NodeJS.CallSite[]): unknown {
    if (error === (trace as unknown)) {
      try {
        positions = sites.map((site) => ({ file: site.getFileName() ?? undefined, line: site.getLineNumber() ?? 0, column: site.getColumnNumber() ?? 0 }));
      } catch {
        positions = null;
      }
    }
    return formatter.call(this, error, sites);
  };
  Error.prepareStackTrace = noting;
  let text: string;
  try {
    text = trace.stack;
  } finally {
    // Unless the formatter put another in its place meanwhile.
    if (Error.prepareStackTrace === noting) Error.prepareStackTrace = formatter;
  }
  read.set(trace, positions);
  return { text, positions: positions ?? undefined };
}

// Traces read under a formatter, and their frames' own positions (null: none were noted).
const read = new WeakMap<Trace, readonly Position[] | null>();

/**
 * `frame` mapped to its source through the source map Node holds for its file (loaded
 * with source maps on), when the stack's formatter left it at V8's own position.
 */
function mapFrame(frame: Frame, position: Position | undefined): Frame {
  if (position === undefined || frame.file === undefined || toPath(position.file ?? '') !== frame.file || position.line !== frame.line || position.column !== frame.column) return frame;
  try {
    const entry = findSourceMap(frame.file)?.findEntry(frame.line - 1, frame.column - 1) as { originalSource?: string; originalLine?: number; originalColumn?: number } | undefined;
    if (typeof entry?.originalSource !== 'string' || typeof entry.originalLine !== 'number' || typeof entry.originalColumn !== 'number') return frame;
    const file = toPath(entry.originalSource);
    if (!isAbsolute(file)) return frame;
    const line = entry.originalLine + 1;
    const column = entry.originalColumn + 1;
    return { text: `at ${frame.fn === '' ? '' : `${frame.fn} (`}${file}:${line}:${column}${frame.fn === '' ? '' : ')'}`, fn: frame.fn, file, line, column };
  } catch {
    return frame;
  }
}

/** Finds the app's acquiring line in a captured stack. */
export function originOf(trace: Trace, isLibrary: (file: string) => boolean): Origin {
  const { text: stack, positions } = readStack(trace);
  const lines = stack.split('\n');
  const frames: Frame[] = [];
  let captured = 0;
  let app: Frame | undefined;
  let appDepth = 0;
  for (const text of lines) {
    if (!text.trimStart().startsWith('at ')) continue;
    captured++;
    const frame = mapFrame(parseFrame(text), positions?.[captured - 1]);
    if (isInternal(frame) || frame.file!.startsWith(ownRoot) || isLibrary(frame.file!)) continue;
    frames.push(frame);
    // Prefer the app's own code over a framework or ORM it called through.
    if (app === undefined && isAppFile(frame.file!)) {
      app = frame;
      appDepth = captured;
    }
  }
  const site = app ?? frames[0];
  const callSite = site && `${displayPath(site.file!)}:${site.line}:${site.column}`;
  return { callSite, site, frames, appDepth, captured };
}

/** A frame as people read it: `at fn (path:line:column)`, the path relative to cwd when under it. */
export function formatFrame(frame: Frame): string {
  if (frame.file === undefined) return frame.text;
  const location = `${displayPath(frame.file)}:${frame.line}:${frame.column}`;
  return frame.fn === '' ? `at ${location}` : `at ${frame.fn} (${location})`;
}

export const noOrigin: Origin = Object.freeze({ callSite: undefined, site: undefined, frames: Object.freeze([]), appDepth: 0, captured: 0 });
