/**
 * `node --import poolwatch/register app.mjs`, `node -r poolwatch/register app.js`, or the
 * same in NODE_OPTIONS: watches every pool of a supported library made after this loads,
 * with `defaultDetector()`, set up from POOLWATCH_* environment variables. It never stops
 * the app from starting: any trouble is one line on stderr, and poolwatch stays off.
 */
import Module = require('node:module');
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import { readSettings, shareDetectorSettings } from './preload/env.js';
import { patches, patchNamespace } from './preload/hooks.js';
import { say, sayAs, sayReportWritten, startLog } from './preload/log.js';

// Loaded twice (by -r and --import, or by two copies of poolwatch), it hooks once.
const loaded = Symbol.for('poolwatch.register');

function start(): void {
  const read = readSettings(process.env);
  if ('problem' in read) {
    sayAs(read.log);
    say(`${read.problem}; poolwatch is off, nothing is watched.`, 'POOLWATCH_INVALID_OPTION');
    return;
  }
  // Whoever makes the default detector first (the first pool, or the app's own
  // defaultDetector() or lease()), in this copy of poolwatch or another, makes it with these.
  shareDetectorSettings(read.settings.detector);
  startLog(read.settings.log);
  const report = read.settings.report;
  if (report !== undefined) writeReportAtExit(report);

  const names = Object.keys(patches);
  // CommonJS: every require(), including an ORM's own of its pool library.
  // require-in-the-middle is what OpenTelemetry's instrumentations use for the same; it
  // names a file inside a package as `package/path`, without `.js`.
  const { Hook: RequireHook } = require('require-in-the-middle') as typeof import('require-in-the-middle');
  new RequireHook(names, (exports, name) => {
    const patch = patches[name.split('\\').join('/')];
    return patch === undefined ? exports : (patch(exports) as typeof exports);
  });

  // ES modules, and CommonJS packages an ES module imports (Node loads those without
  // require()): import-in-the-middle's loader, limited to these modules. Not from a
  // worker: Node 20 runs the preload again in the loader's own thread, and hooks
  // registered on the main thread reach the app's workers. Not for a CommonJS app,
  // where require() reaches every pool: Node 20's off-thread loader costs ~60 ms of start.
  if (isMainThread && importsModules()) {
    const entries = names.filter((name) => !name.includes('/lib/'));
    const { Hook: ImportHook } = require('import-in-the-middle') as typeof import('import-in-the-middle');
    if (syncHooks()) {
      // In-thread hooks (module.registerHooks) where Node runs them right: no loader thread.
      (require('import-in-the-middle/register-hooks.mjs') as { register(options: { include: string[] }): void }).register({ include: entries });
    } else if (typeof Module.register === 'function') {
      Module.register('import-in-the-middle/hook.mjs', pathToFileURL(__filename), { data: { include: entries } });
    } else return;
    new ImportHook(entries, (namespace, name) => {
      const patch = patches[name];
      if (patch !== undefined) patchNamespace(namespace, patch);
    });
  }
}

// At exit, however the app ends: its last request, process.exit(), an uncaught error, or a
// signal (SIGTERM from a supervisor, Ctrl-C's SIGINT, SIGHUP when its terminal goes, and the
// other signals that end a process). signal-exit (what nyc and tap use for the same) writes
// it at a signal only when the app has no handler of that signal, then ends the process by
// that same signal, as it would have ended; an app with its own handler still decides, and
// the report is written when it exits. Its callbacks run synchronously, so the report is
// written with writeFileSync. A worker gets no signals: there it is the 'exit' event.
function writeReportAtExit(path: string): void {
  const write = (): void => {
    try {
      // Required only now: the preload loads the detector when the first pool appears, not at start.
      const { defaultDetector } = require('./detector.js') as typeof import('./detector.js');
      const written = defaultDetector().writeReport(path);
      sayReportWritten(written);
    } catch (error) {
      say(`could not write POOLWATCH_REPORT (${(error as Error)?.message ?? String(error)})`, 'POOLWATCH_REPORT_FAILED');
    }
  };
  let onExit: typeof import('signal-exit').onExit | undefined;
  try {
    if (isMainThread) ({ onExit } = require('signal-exit') as typeof import('signal-exit'));
  } catch {
    // Pruned from a deployment: the report is still written at a normal exit.
  }
  if (onExit === undefined) process.once('exit', write);
  else onExit(write);
}

/**
 * Whether the app's entry point is (or may be) an ES module. A CommonJS entry reaches
 * pool libraries through require() alone; `node -e` and the REPL too.
 */
function importsModules(): boolean {
  const main = process.argv[1];
  if (main === undefined || main === '' || process.execArgv.some((arg) => arg === '-e' || arg === '--eval' || arg === '-p' || arg === '--print')) return false;
  if (/\.(mjs|mts)$/.test(main)) return true;
  if (/\.(cjs|cts)$/.test(main)) return false;
  try {
    const file = realpathSync(main);
    for (let dir = dirname(file); ; dir = dirname(dir)) {
      const manifest = join(dir, 'package.json');
      if (existsSync(manifest)) {
        const type = (JSON.parse(readFileSync(manifest, 'utf8')) as { type?: unknown }).type;
        if (type === 'module') return true;
        if (type === 'commonjs') return false;
        break;
      }
      if (dirname(dir) === dir) break;
    }
    // No "type": Node 22+ runs a file with import or export statements as an ES module.
    return /^\s*(import|export)\s/m.test(readFileSync(file, 'utf8'));
  } catch {
    // Unknown: hook ES modules too, at their cost, rather than miss a pool.
    return true;
  }
}

// module.registerHooks() runs import-in-the-middle's loader in-thread from Node 22.22.3,
// 24.11.1 and 25.1 on (its own supportsSyncHooks(), which is an ES module).
function syncHooks(): boolean {
  if (typeof (Module as { registerHooks?: unknown }).registerHooks !== 'function') return false;
  const [major = 0, minor = 0, patch = 0] = process.versions.node.split('.').map(Number);
  if (major >= 26) return true;
  if (major === 25) return minor >= 1;
  if (major === 24) return minor > 11 || (minor === 11 && patch >= 1);
  if (major === 22) return minor > 22 || (minor === 22 && patch >= 3);
  return false;
}

const host = globalThis as { [loaded]?: true };
if (host[loaded] !== true) {
  host[loaded] = true;
  try {
    start();
  } catch (error) {
    say(`could not start (${(error as Error)?.message ?? String(error)}); the app runs unwatched.`, 'POOLWATCH_PRELOAD_FAILED');
  }
}
