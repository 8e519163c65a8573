import { existsSync } from 'node:fs';
import { relative, isAbsolute, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { escapeLine } from './escape.js';

/** Holds a captured stack; `stack` is formatted by V8 only when first read. */
export class Trace {
  declare readonly stack: string;
  constructor(
    /** How many frames the capture was allowed: a stack of that many frames may have been cut short. */
    readonly depth: number,
  ) {}
}

// Deep enough to see past a pool library's and an ORM's frames to the app's own line.
export const fullDepth = 32;

/** Captures up to `depth` frames of the caller's stack above `above` (which, and whose callers' frames, are left out). */
export function captureTrace(above: Function, depth = fullDepth): Trace {
  const trace = new Trace(depth);
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

const framePattern = /^\s*at (?:(.*?) \()?(.+?):(\d+):(\d+)\)?$/;
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

/** Finds the app's acquiring line in a captured stack. */
export function originOf(trace: Trace, isLibrary: (file: string) => boolean): Origin {
  const lines = trace.stack.split('\n');
  const frames: Frame[] = [];
  let captured = 0;
  let app: Frame | undefined;
  let appDepth = 0;
  for (const text of lines) {
    if (!text.trimStart().startsWith('at ')) continue;
    captured++;
    const frame = parseFrame(text);
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
