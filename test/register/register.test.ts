import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { siteOf } from '../helpers/site.js';

// The fixtures import 'poolwatch' by name, and the preload is loaded by name: the
// package's own build (npm test builds first).
const root = join(__dirname, '..', '..');
const fixture = (name: string) => join(root, 'test', 'fixtures', 'register', name);

// Settings from the machine's own environment must not change what these tests see.
const clean: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('POOLWATCH_') && key !== 'NODE_OPTIONS'));

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once stderr matches `pattern`; rejects if the process ends first. */
  waitFor(pattern: RegExp): Promise<void>;
  /** Resolves with the exit code once the process has ended. */
  exited: Promise<number | null>;
}

function start(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor: (pattern) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pattern.test(err)) {
            child.stderr!.off('data', check);
            resolve();
          }
        };
        child.stderr!.on('data', check);
        check();
        void exited.then(() => reject(new Error(`the process ended before stderr matched ${pattern}; stderr:\n${err}\nstdout:\n${out}`)));
      }),
  };
}

/** Runs to the end (for apps that end by themselves). */
async function finish(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = start(args, env);
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

const leakLine = /^poolwatch: Connection leak in pool "generic-pool": lease #1 held for \d+ ms \(threshold 50 ms\), acquired at (\S+)$/m;

for (const { name, args, env } of [
  { name: 'an ES module app, node --import poolwatch/register', args: ['--import', 'poolwatch/register', fixture('leak.mjs')], env: {} },
  { name: 'a CommonJS app, node -r poolwatch/register', args: ['-r', 'poolwatch/register', fixture('leak.cjs')], env: {} },
  { name: 'a CommonJS app, NODE_OPTIONS=--import poolwatch/register', args: [fixture('leak.cjs')], env: { NODE_OPTIONS: '--import poolwatch/register' } },
  { name: 'an ES module app, NODE_OPTIONS=-r poolwatch/register', args: [fixture('leak.mjs')], env: { NODE_OPTIONS: '-r poolwatch/register' } },
]) {
  t.test(`${name}: a leak is reported on stderr at the app's line, stdout untouched`, async (t) => {
    const file = args.at(-1)!;
    const run = start(args, { ...env, POOLWATCH_LEAK_THRESHOLD_MS: '50' });
    t.teardown(() => void run.child.kill());
    await run.waitFor(/^  waited /m);
    const [, site] = leakLine.exec(run.stderr()) ?? [];
    t.ok(site?.startsWith(siteOf(file, '// LEAK')), `the report names the acquiring line; stderr:\n${run.stderr()}`);
    // The report's code frame shows the app's own source line.
    t.match(run.stderr(), /> +\d+ \|   await pool\.acquire\(\); \/\/ LEAK/);
    t.equal(run.stdout(), 'app started\n', 'the app\'s stdout is its own');
  });
}

t.test('an app ends by itself with its own exit code while the preload watches a leaked lease', async (t) => {
  const ended = await finish(['--import', 'poolwatch/register', fixture('ends.mjs')], { APP_EXIT_CODE: '7' });
  t.equal(ended.code, 7);
  t.equal(ended.stdout, 'app done\n');
  t.equal(ended.stderr, '', 'nothing to say before the threshold');
});

t.test('POOLWATCH_REPORT writes the HTML report at exit: the pool and who holds it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'poolwatch-report-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'at-exit.html');
  const ended = await finish(['--import', 'poolwatch/register', fixture('ends.mjs')], { POOLWATCH_REPORT: path, APP_EXIT_CODE: '5' });
  t.equal(ended.code, 5, "the app's own exit code");
  t.equal(ended.stderr, `poolwatch: report written to ${path}\n`);
  const html = readFileSync(path, 'utf8');
  t.match(html, 'generic-pool', 'the pool');
  t.match(html, 'test/fixtures/register/ends.mjs:6:', 'its leaked lease, by call site');
});

t.test('a POOLWATCH_REPORT that cannot be written is one line at exit; the exit code stays', async (t) => {
  const ended = await finish(['--import', 'poolwatch/register', fixture('ends.mjs')], { POOLWATCH_REPORT: join(root, 'no-such-dir', 'r.html'), APP_EXIT_CODE: '4' });
  t.equal(ended.code, 4);
  t.match(ended.stderr, /^poolwatch: could not write POOLWATCH_REPORT \(ENOENT/);
});

for (const [variable, value, says] of [
  ['POOLWATCH_LEAK_THRESHOLD_MS', 'soon', /^poolwatch: POOLWATCH_LEAK_THRESHOLD_MS must be a positive number of milliseconds \(or Infinity\), got "soon"; poolwatch is off, nothing is watched\.$/],
  ['POOLWATCH_LEAK_THRESHOLD_MS', '-5', /POOLWATCH_LEAK_THRESHOLD_MS must be a positive number/],
  ['POOLWATCH_STACKS', 'sometimes', /^poolwatch: POOLWATCH_STACKS must be always, auto or never, got "sometimes"; poolwatch is off/],
  ['POOLWATCH_LOG', 'xml', /^poolwatch: POOLWATCH_LOG must be text, json or off, got "xml"; poolwatch is off/],
  // A connection string set by mistake is not echoed.
  ['POOLWATCH_LOG', 'postgres://app:hunter2@db/orders', /^poolwatch: POOLWATCH_LOG must be text, json or off, got a value of 32 characters; poolwatch is off/],
] as const) {
  t.test(`a bad ${variable} is one stderr line naming it; the app starts and ends as it would, unwatched`, async (t) => {
    const ended = await finish(['--import', 'poolwatch/register', fixture('ends.mjs')], { [variable]: value, APP_EXIT_CODE: '3' });
    t.equal(ended.code, 3);
    t.equal(ended.stdout, 'app done\n');
    const lines = ended.stderr.trimEnd().split('\n');
    t.equal(lines.length, 1, `one line; stderr:\n${ended.stderr}`);
    t.match(lines[0], says);
    t.notMatch(ended.stderr, /hunter2/);
  });
}

t.test('with a bad setting nothing is watched', async (t) => {
  const run = start(['--import', 'poolwatch/register', fixture('takeover.mjs')], { POOLWATCH_STACKS: 'sometimes' });
  await run.exited;
  const seen = JSON.parse(run.stdout().split('\n')[0]!) as { preloaded: boolean };
  t.equal(seen.preloaded, false);
});

t.test('POOLWATCH_LOG=text: a line that keeps leaking is one report, then one counted line per doubling', async (t) => {
  const ended = await finish(['--import', 'poolwatch/register', fixture('repeats.mjs')], { POOLWATCH_LEAK_THRESHOLD_MS: '1', LEAKS: '9' });
  t.equal(ended.code, 0);
  const site = siteOf(fixture('repeats.mjs'), '// LEAK');
  const reports = ended.stderr.match(/^poolwatch: Connection leak in pool/gm) ?? [];
  t.equal(reports.length, 1, `one full report; stderr:\n${ended.stderr}`);
  const counted = [...ended.stderr.matchAll(/^poolwatch: (\d+) leaks so far in pool "generic-pool" from (\S+) \(the first is shown above\); the latest, lease #\d+, held \d+ ms$/gm)];
  t.same(
    counted.map(([, n]) => Number(n)),
    [2, 4, 8],
  );
  for (const [, , from] of counted) t.ok(from!.startsWith(site), `${from} is the leaking line`);
  t.match(ended.stderr, /^poolwatch: release\(\) of a connection already given back to pool "generic-pool" at test\/fixtures\/register\/repeats\.mjs:\d+:\d+; it was lease #\d+/m, 'the double release is said');
  t.equal(ended.stdout, '');
});

t.test('POOLWATCH_LOG=json: one JSON line per leak and misuse, and nothing else', async (t) => {
  const ended = await finish(['--import', 'poolwatch/register', fixture('repeats.mjs')], { POOLWATCH_LEAK_THRESHOLD_MS: '1', LEAKS: '3', POOLWATCH_LOG: 'json' });
  t.equal(ended.code, 0);
  const lines = ended.stderr.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  t.same(
    lines.map((line) => line.poolwatch),
    ['misuse', 'leak', 'leak', 'leak'],
  );
  const site = siteOf(fixture('repeats.mjs'), '// LEAK');
  for (const leak of lines.slice(1)) {
    t.equal(leak.kind, 'threshold');
    t.equal(leak.pool, 'generic-pool');
    t.ok(String(leak.callSite).startsWith(site));
    t.type(leak.time, 'string');
  }
  t.equal(lines[0]!.kind, 'double-release');
});

t.test('POOLWATCH_LOG=off: leaks are watched but not written', async (t) => {
  const ended = await finish(['--import', 'poolwatch/register', fixture('repeats.mjs')], { POOLWATCH_LEAK_THRESHOLD_MS: '1', LEAKS: '2', POOLWATCH_LOG: 'off' });
  t.equal(ended.code, 0);
  t.equal(ended.stderr, '');
});

t.test("the app's own watch() of a pool the preload watches takes it over, with the app's options", async (t) => {
  const ended = await finish(['--import', 'poolwatch/register', fixture('takeover.mjs')]);
  t.equal(ended.code, 0, ended.stderr);
  const seen = JSON.parse(ended.stdout.split('\n')[0]!) as { preloaded: boolean; mine: boolean; defaultPools: string[] };
  t.same(seen, { preloaded: true, mine: true, defaultPools: [] });
  // Reported once, by the app's detector under the app's name, and still logged by the preload.
  const reports = ended.stderr.match(/^poolwatch: Connection leak in pool "(\w+)"/gm) ?? [];
  t.same(reports, ['poolwatch: Connection leak in pool "main"']);
});
