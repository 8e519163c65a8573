// The package as users get it: `npm pack` the built tree, install the tarball into a
// fresh project outside the repo, and use it from there with plain `node` (no tap, no
// TypeScript loader), through ESM `import` and CJS `require`, and type-check a
// TypeScript consumer of each kind with the repo's own compiler.
//
// `npm test` builds dist/ before tap starts; this file packs what that build produced.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

// npm is slow; this file alone gets a generous budget (the tap default is 30 s).
t.setTimeout(10 * 60_000);

// tap runs test files from the project root.
const repo = process.cwd();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment of the outer `npm test` and of tap, less what would make a child
 * something other than a plain user's process: npm's lifecycle variables (its
 * local prefix would point a nested npm at this repo), tap's loaders and coverage.
 */
function plainEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    if (
      /^npm_(?!config_)/i.test(key) ||
      /^npm_config_(local_prefix|prefix|global_prefix|global|user_agent|npm_version)$/i.test(key) ||
      /^(NODE_OPTIONS|NODE_V8_COVERAGE|NODE_CHANNEL_FD|NODE_CHANNEL_SERIALIZATION_MODE)$/i.test(key) ||
      /^(TAP|_TAPJS|TS_NODE_)/i.test(key)
    ) {
      delete env[key];
    }
  }
  return env;
}

function run(file: string, args: readonly string[], cwd: string): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, { cwd, env: plainEnv(), maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      done({ code, stdout, stderr: stderr || (error !== null && code === null ? String(error) : '') });
    });
  });
}

async function runOk(file: string, args: readonly string[], cwd: string): Promise<Run> {
  const result = await run(file, args, cwd);
  if (result.code !== 0) {
    throw new Error(`\`${[file, ...args].join(' ')}\` in ${cwd} exited ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
  }
  return result;
}

/** Runs a script of the consumer project with this very node binary and no loaders. */
async function node(project: string, script: string): Promise<unknown> {
  const { stdout, stderr } = await runOk(process.execPath, [script], project);
  const last = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last);
  } catch {
    throw new Error(`${script} exited 0 but printed no JSON result\n--- stdout\n${stdout}\n--- stderr\n${stderr}`);
  }
}

interface Consumer {
  /** The consumer project's directory (a real path, so stack paths match it). */
  dir: string;
  /** Entries of the packed tarball, without the leading `package/`. */
  entries: string[];
}

let installing: Promise<Consumer> | undefined;

/** Packs the repo and installs the tarball into a new project in the OS temp dir, once per file. */
function consumer(): Promise<Consumer> {
  installing ??= (async () => {
    if (!existsSync(join(repo, 'dist', 'index.js'))) {
      throw new Error(`${repo}/dist/index.js is missing: run this file through \`npm test\`, which builds first`);
    }
    const root = await realpath(await mkdtemp(join(tmpdir(), 'poolwatch-package-')));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    const packs = join(root, 'packs');
    const dir = join(root, 'consumer');
    await runOk('mkdir', ['-p', packs, dir], root);

    const packed = await runOk('npm', ['pack', '--json', '--pack-destination', packs, '--loglevel=error'], repo);
    const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }];
    const tarball = join(packs, filename);

    const listing = await runOk('tar', ['-tzf', tarball], root);
    const entries = listing.stdout
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => line.replace(/^package\//, ''));

    await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'poolwatch-consumer', version: '1.0.0', private: true }, null, 2));
    await runOk(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', '--loglevel=error', tarball, 'generic-pool', '@opentelemetry/api', 'prom-client'],
      dir,
    );
    return { dir, entries };
  })();
  return installing;
}

// The consumer's leak scenario, the same code for ESM and CJS but for how poolwatch is loaded.
function leakScript(load: string): string {
  return `${load}
const { createPool } = require_('generic-pool');

const factory = { create: async () => ({ query: async () => [] }), destroy: async () => {} };

async function main() {
  const pool = createPool(factory, { max: 1 });
  let reported;
  const leaked = new Promise((resolve) => { reported = resolve; });
  const returned = watch(pool, { name: 'consumer', leakThresholdMs: 20, stacks: 'always', onLeak: reported });
  const watchedBy = detectorOf(pool);

  let forgotten;
  async function getUser() {
    const conn = await pool.acquire(); // the leaking acquire
    await conn.query('SELECT 1');
    forgotten = conn;
    return null; // never released
  }
  await getUser();

  const giveUp = setTimeout(() => { console.error('no leak was reported within 10 s'); process.exit(2); }, 10_000);
  const report = await leaked;
  clearTimeout(giveUp);
  await pool.release(forgotten); // so that drain() below can finish

  const other = createPool(factory, { max: 1 });
  const detector = createDetector({ leakThresholdMs: 60_000 });
  detector.watch(other, { name: 'other' });
  const result = {
    returnedSamePool: returned === pool,
    watchedBy: watchedBy === undefined ? 'none' : watchedBy.constructor.name,
    isError: report instanceof Error,
    kind: report.kind,
    pool: report.pool,
    callSite: report.callSite,
    message: report.message,
    formatted: report.format(),
    otherWatchedByItsDetector: detectorOf(other) === detector,
    unwatched: unwatch(pool),
    watchedAfterUnwatch: detectorOf(pool) !== undefined,
  };
  detector.close();
  for (const p of [pool, other]) { await p.drain(); await p.clear(); }
  console.log(JSON.stringify(result));
}
main().catch((error) => { console.error(error); process.exit(1); });
`;
}

const esmLoad = `import { watch, createDetector, detectorOf, unwatch } from 'poolwatch';
import { createRequire } from 'node:module';
const require_ = createRequire(import.meta.url);`;

const cjsLoad = `'use strict';
const { watch, createDetector, detectorOf, unwatch } = require('poolwatch');
const require_ = require;`;

async function leakFrom(t: Test, file: string, load: string): Promise<void> {
  const { dir } = await consumer();
  const source = leakScript(load);
  await writeFile(join(dir, file), source);
  const line = source.split('\n').findIndex((text) => text.includes('// the leaking acquire')) + 1;

  const result = (await node(dir, file)) as Record<string, unknown>;
  t.equal(result.returnedSamePool, true, 'watch() returns the pool it was given');
  t.equal(result.watchedBy, 'Detector', 'detectorOf() gives the Detector watching the pool');
  t.equal(result.isError, true, 'the leak report is an Error');
  t.equal(result.kind, 'threshold', 'the leak is of kind threshold');
  t.equal(result.pool, 'consumer', 'the report names the pool');
  t.equal(result.otherWatchedByItsDetector, true, 'a createDetector() detector watches its pool');
  t.equal(result.unwatched, true, 'unwatch() says the pool was watched');
  t.equal(result.watchedAfterUnwatch, false, 'detectorOf() is undefined after unwatch()');

  const callSite = String(result.callSite);
  const [, path, callLine, column] = /^(.*):(\d+):(\d+)$/.exec(callSite) ?? [];
  t.equal(path, file, `the call site is the consumer's own file, relative to its cwd (${callSite})`);
  t.equal(Number(callLine), line, 'the call site is the line that called pool.acquire()');
  t.ok(Number(column) > 0, 'the call site has a column');
  t.match(String(result.message), `acquired at ${callSite}`, 'the message names the call site');
  t.match(String(result.formatted), 'const conn = await pool.acquire(); // the leaking acquire', 'format() shows the source line');
  t.notMatch(String(result.formatted), /node_modules[/\\]poolwatch/, "format() shows none of poolwatch's own frames");
}

t.comment(`node ${process.version} at ${process.execPath}`);

t.test('the packed tarball holds the build, the ESM entry and the docs, and no tests or benchmarks', async (t) => {
  const { entries } = await consumer();
  const has = new Set(entries);
  const pkg = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as {
    main?: string;
    types?: string;
    exports?: Record<string, unknown>;
    typesVersions?: Record<string, unknown>;
  };

  t.ok(has.has('package.json'), 'package.json');
  t.ok(has.has('esm/index.mjs'), 'esm/index.mjs');
  const built = readdirSync(join(repo, 'dist')).filter((name) => name.endsWith('.js') || name.endsWith('.d.ts'));
  t.ok(built.includes('index.js') && built.includes('index.d.ts'), 'the build made dist/index.js and dist/index.d.ts');
  for (const name of built) t.ok(has.has(`dist/${name}`), `dist/${name}`);
  for (const name of built.filter((name) => name.endsWith('.js'))) {
    t.ok(has.has(`dist/${name.replace(/\.js$/, '.d.ts')}`), `dist/${name} has its declarations`);
  }
  for (const doc of ['README.md', 'CHANGELOG.md', 'LICENSE']) {
    if (existsSync(join(repo, doc))) t.ok(has.has(doc), doc);
  }

  // Every file that main, types, the exports map and typesVersions point at is in the tarball.
  const targets = new Set<string>();
  const collect = (value: unknown): void => {
    if (typeof value === 'string') targets.add(value.replace(/^\.\//, ''));
    else if (value !== null && typeof value === 'object') Object.values(value).forEach(collect);
  };
  collect([pkg.main, pkg.types, pkg.exports, pkg.typesVersions]);
  for (const target of targets) t.ok(has.has(target), `${target}, named in package.json, is packed`);

  const unwanted = entries.filter((entry) =>
    /^(test|tests|benchmarks|coverage|node_modules|\.tap|\.ci|\.git)\//.test(entry) || /\.tsbuildinfo$|\.tgz$/.test(entry),
  );
  t.same(unwanted, [], 'no tests, benchmarks, coverage, CI files or build leftovers');
});

t.test('an ESM consumer imports watch, createDetector, detectorOf and unwatch, and a leak names its own line', async (t) => {
  await leakFrom(t, 'consumer.mjs', esmLoad);
});

t.test('a CJS consumer requires the same API, and a leak names its own line', async (t) => {
  await leakFrom(t, 'consumer.cjs', cjsLoad);
});

t.test('ESM import and CJS require in one process share one implementation', async (t) => {
  const { dir } = await consumer();
  await writeFile(
    join(dir, 'shared.mjs'),
    `import * as esm from 'poolwatch';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const cjs = require('poolwatch');
const { createPool } = require('generic-pool');
const factory = { create: async () => ({}), destroy: async () => {} };

const viaCjs = cjs.watch(createPool(factory, { max: 1 }), { name: 'via-cjs' });
const viaEsm = esm.watch(createPool(factory, { max: 1 }), { name: 'via-esm' });
let rewatch = 'no error';
try { esm.watch(viaCjs); } catch (error) { rewatch = error.code ?? error.name; }
const esmNames = Object.keys(esm).sort();
const cjsNames = Object.keys(cjs).sort();
console.log(JSON.stringify({
  esmSeesCjsPool: esm.detectorOf(viaCjs) !== undefined && esm.detectorOf(viaCjs) === cjs.detectorOf(viaCjs),
  cjsSeesEsmPool: cjs.detectorOf(viaEsm) instanceof esm.Detector,
  rewatch,
  esmNames,
  cjsNames,
  sameValues: cjsNames.every((name) => esm[name] === cjs[name]),
  esmUnwatchesCjsPool: esm.unwatch(viaCjs) && cjs.detectorOf(viaCjs) === undefined,
}));
`,
  );
  const result = (await node(dir, 'shared.mjs')) as Record<string, unknown>;
  t.equal(result.esmSeesCjsPool, true, 'detectorOf() from the ESM import sees a pool watched through require()');
  t.equal(result.cjsSeesEsmPool, true, 'detectorOf() from require() sees a pool watched through the ESM import');
  t.not(result.rewatch, 'no error', 'watching through ESM a pool already watched through CJS is refused');
  t.same(result.esmNames, result.cjsNames, 'the ESM entry exports every name the CJS entry exports, and no other');
  t.equal(result.sameValues, true, 'each ESM export is the very CJS value');
  t.equal(result.esmUnwatchesCjsPool, true, 'unwatch() from the ESM import undoes a watch() made through require()');
});

t.test('poolwatch/testing loads through ESM import and CJS require, and expectNoLeaks() throws POOLWATCH_LEAK naming the line', async (t) => {
  const { dir } = await consumer();
  const check = (load: string): string => `${load}
const pool = watch(createPool({ create: async () => ({}), destroy: async () => {} }), { name: 'packed', stacks: 'always' });
pool.acquire().then(() => { // acquired and never released
  let thrown = {};
  try { expectNoLeaks({ name: 'packed test' }); } catch (error) { thrown = error; }
  console.log(JSON.stringify({ code: thrown.code, name: thrown.name, message: String(thrown.message), same: expectNoLeaks === otherExpect }));
});
`;
  await writeFile(
    join(dir, 'testing.mjs'),
    check(`import { watch } from 'poolwatch';
import { expectNoLeaks } from 'poolwatch/testing';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { createPool } = require('generic-pool');
const otherExpect = require('poolwatch/testing').expectNoLeaks;`),
  );
  await writeFile(
    join(dir, 'testing.cjs'),
    check(`const { watch } = require('poolwatch');
const { expectNoLeaks } = require('poolwatch/testing');
const { createPool } = require('generic-pool');
const otherExpect = expectNoLeaks;`),
  );
  for (const file of ['testing.mjs', 'testing.cjs']) {
    const source = await readFile(join(dir, file), 'utf8');
    const line = source.split('\n').findIndex((text) => text.includes('// acquired and never released')) + 1;
    const result = (await node(dir, file)) as Record<string, unknown>;
    t.equal(result.code, 'POOLWATCH_LEAK', `${file}: the error's code`);
    t.equal(result.name, 'LeakError', `${file}: the error's name`);
    t.match(String(result.message), 'still leased after test "packed test"', `${file}: the message names the test`);
    t.match(String(result.message), `acquired at ${file}:${line}:`, `${file}: the message names the acquiring line`);
    t.equal(result.same, true, `${file}: ESM and CJS give the same expectNoLeaks`);
  }
});

t.test('poolwatch/otel and poolwatch/prometheus load through ESM import and CJS require; importing poolwatch itself loads neither peer', async (t) => {
  const { dir } = await consumer();
  const check = (load: string): string => `${load}
const pool = watch(createPool({ create: async () => ({}), destroy: async () => {} }, { max: 2 }), { name: 'packed' });
const registry = new Registry();
const prometheus = registerPrometheusMetrics(detectorOf(pool), { registry });
const otel = registerOtelMetrics(detectorOf(pool));
pool.acquire().then(async (conn) => {
  const text = await registry.metrics();
  prometheus.unregister();
  otel.unregister();
  await pool.release(conn);
  console.log(JSON.stringify({ text, mainLoadedPeers, same: registerOtelMetrics === cjsOtel && registerPrometheusMetrics === cjsPrometheus }));
});
`;
  const peersLoaded = `Object.keys(require.cache).some((path) => /node_modules[\\\\/](prom-client|@opentelemetry)[\\\\/]/.test(path))`;
  await writeFile(
    join(dir, 'metrics.mjs'),
    check(`import { watch, detectorOf } from 'poolwatch';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const mainLoadedPeers = ${peersLoaded};
const { registerOtelMetrics } = await import('poolwatch/otel');
const { registerPrometheusMetrics } = await import('poolwatch/prometheus');
const { Registry } = require('prom-client');
const { createPool } = require('generic-pool');
const cjsOtel = require('poolwatch/otel').registerOtelMetrics;
const cjsPrometheus = require('poolwatch/prometheus').registerPrometheusMetrics;`),
  );
  await writeFile(
    join(dir, 'metrics.cjs'),
    check(`const { watch, detectorOf } = require('poolwatch');
const mainLoadedPeers = ${peersLoaded};
const { registerOtelMetrics } = require('poolwatch/otel');
const { registerPrometheusMetrics } = require('poolwatch/prometheus');
const { Registry } = require('prom-client');
const { createPool } = require('generic-pool');
const cjsOtel = registerOtelMetrics;
const cjsPrometheus = registerPrometheusMetrics;`),
  );
  for (const file of ['metrics.mjs', 'metrics.cjs']) {
    const result = (await node(dir, file)) as Record<string, unknown>;
    t.equal(result.mainLoadedPeers, false, `${file}: 'poolwatch' itself loads neither prom-client nor @opentelemetry`);
    t.match(String(result.text), 'db_client_connection_count{db_client_connection_pool_name="packed",db_client_connection_state="used"} 1', `${file}: the registry shows the leased connection`);
    t.equal(result.same, true, `${file}: ESM and CJS give the same functions`);
  }
});

t.test('poolwatch/http exports the same names through ESM import and CJS require; importing poolwatch itself loads none of it', async (t) => {
  const { dir } = await consumer();
  await writeFile(
    join(dir, 'http.mjs'),
    `import { createRequire } from 'node:module';
import 'poolwatch';
const require = createRequire(import.meta.url);
const mainLoadedHttp = Object.keys(require.cache).some((path) => /[\\\\/]dist[\\\\/]integrations[\\\\/]/.test(path));
const esm = await import('poolwatch/http');
const cjs = require('poolwatch/http');
const esmNames = Object.keys(esm).sort();
const cjsNames = Object.keys(cjs).sort();
console.log(JSON.stringify({ mainLoadedHttp, esmNames, cjsNames, same: cjsNames.every((name) => esm[name] === cjs[name]) }));
`,
  );
  const result = (await node(dir, 'http.mjs')) as Record<string, unknown>;
  t.equal(result.mainLoadedHttp, false, "'poolwatch' itself loads no integration code");
  t.same(result.cjsNames, ['expressScope', 'fastifyScope', 'koaScope', 'requestScope'], 'the CJS entry exports the four request scopes');
  t.same(result.esmNames, result.cjsNames, 'the ESM entry exports every name the CJS entry exports, and no other');
  t.equal(result.same, true, 'each ESM export is the very CJS value');
});

t.test('TypeScript consumers, ESM (.mts) and CJS (.cts), type-check against the packed declarations', async (t) => {
  const { dir } = await consumer();
  const body = `
interface Conn { id: number }
const pool: Pool<Conn> = createPool<Conn>({ create: async () => ({ id: 1 }), destroy: async () => {} }, { max: 1 });
const options: WatchOptions = { name: 'main', leakThresholdMs: 30_000, stacks: 'auto' };
const same: Pool<Conn> = watch(pool, {
  ...options,
  onLeak: (report: LeakReport) => {
    const site: string | undefined = report.callSite;
    const kind: 'threshold' | 'scope-ended' | 'collected' | 'reclaimed' = report.kind;
    const text: string = report.format();
    void [site, kind, text];
  },
});
const watchedBy: Detector | undefined = detectorOf(same);
const detector: Detector = createDetector({ leakThresholdMs: 120_000, stacks: 'always' });
detector.on('leak', (report) => {
  const held: number = report.heldMs;
  void held;
});
const wasWatched: boolean = unwatch(pool);
void [watchedBy, wasWatched];
// @ts-expect-error: leakThresholdMs is a number, so the declarations are not \`any\`
watch(pool, { leakThresholdMs: 'soon' });
`;
  await writeFile(
    join(dir, 'consumer-types.mts'),
    `import { watch, unwatch, createDetector, detectorOf, type Detector, type LeakReport, type WatchOptions } from 'poolwatch';
// @ts-expect-error: the ESM entry has named exports only, as at run time
import poolwatchDefault from 'poolwatch';
import { createPool, type Pool } from 'generic-pool';
${body}
void poolwatchDefault;
export {};
`,
  );
  await writeFile(
    join(dir, 'consumer-types.cts'),
    `import { watch, unwatch, createDetector, detectorOf, type Detector, type LeakReport, type WatchOptions } from 'poolwatch';
import poolwatch = require('poolwatch');
import { createPool, type Pool } from 'generic-pool';
${body}
const viaRequire: typeof watch = poolwatch.watch;
void viaRequire;
export {};
`,
  );
  // The consumer's @types/node is the repo's: a Node project has it, and it needs no download.
  const tsc = join(repo, 'node_modules', '.bin', 'tsc');
  const result = await run(
    process.execPath,
    [tsc, '--module', 'node16', '--strict', '--noEmit', '--typeRoots', join(repo, 'node_modules', '@types'), '--types', 'node', 'consumer-types.mts', 'consumer-types.cts'],
    dir,
  );
  t.equal(result.code, 0, 'tsc --module node16 --strict --noEmit finds no error');
  t.equal(result.stdout.trim(), '', 'tsc prints no diagnostic');
});

// node10 resolution (TypeScript's old `node`, still the default of `module: commonjs`)
// ignores the exports map: it finds a subpath's declarations only through typesVersions.
t.test('a TypeScript consumer with moduleResolution node10 and module commonjs type-checks every subpath', async (t) => {
  const { dir } = await consumer();
  await writeFile(
    join(dir, 'consumer-node10.ts'),
    `import { createDetector, type Detector } from 'poolwatch';
import { expectNoLeaks, LeakError } from 'poolwatch/testing';
import { requestScope, expressScope, fastifyScope, koaScope, type RequestScopeOptions } from 'poolwatch/http';
import { registerOtelMetrics } from 'poolwatch/otel';
import { registerPrometheusMetrics } from 'poolwatch/prometheus';
import { createServer } from 'node:http';

const detector: Detector = createDetector();
expectNoLeaks(detector, { name: 'node10' });
const code: 'POOLWATCH_LEAK' = new LeakError('none', []).code;
const options: RequestScopeOptions = {};
createServer(requestScope((req, res) => { res.end(req.url); }, options));
const middlewares: unknown[] = [expressScope(), koaScope(), fastifyScope];
const unregister: () => void = registerOtelMetrics(detector).unregister;
void [code, middlewares, unregister, registerPrometheusMetrics];
// @ts-expect-error: expectNoLeaks takes no string, so the declarations are not \`any\`
expectNoLeaks('detector');
export {};
`,
  );
  const tsc = join(repo, 'node_modules', '.bin', 'tsc');
  const result = await run(
    process.execPath,
    [tsc, '--module', 'commonjs', '--moduleResolution', 'node10', '--target', 'es2022', '--strict', '--noEmit', '--typeRoots', join(repo, 'node_modules', '@types'), '--types', 'node', 'consumer-node10.ts'],
    dir,
  );
  t.equal(result.code, 0, 'tsc --module commonjs --moduleResolution node10 --strict --noEmit finds no error');
  t.equal(result.stdout.trim(), '', 'tsc prints no diagnostic');
});
