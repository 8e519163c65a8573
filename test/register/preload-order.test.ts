import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The preload's settings reach the default detector in whatever order the app and the
// preload meet it. The fixtures import 'poolwatch' by name and the preload is loaded by
// name: the package's own build (npm test builds first).
const root = join(__dirname, '..', '..');
const fixture = (name: string) => join(root, 'test', 'fixtures', 'register', name);
const clean: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('POOLWATCH_') && key !== 'NODE_OPTIONS'));

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** A second copy of poolwatch's build (its entry file), as an app with its own poolwatch has: its own module registry. */
function secondCopy(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'poolwatch-copy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'poolwatch', main: './dist/index.js' }));
  return join(dir, 'dist', 'index.js');
}

// 300 ms, and no stacks: a detector made with the defaults (30 s, 'auto') reports neither.
const settings = { POOLWATCH_LEAK_THRESHOLD_MS: '300', POOLWATCH_STACKS: 'never', POOLWATCH_LOG: 'off' };
const applied = { thresholdMs: 300, callSite: null };

for (const { name, args, order } of [
  { name: 'an ES module app (--import) subscribes to defaultDetector() before its first pool', args: ['--import', 'poolwatch/register', fixture('default-first.mjs')], order: 'subscribe' },
  { name: 'a CommonJS app (-r) subscribes to defaultDetector() before its first pool', args: ['-r', 'poolwatch/register', fixture('default-first.cjs')], order: 'subscribe' },
  { name: 'an ES module app under the CommonJS preload (-r) subscribes before its first pool', args: ['-r', 'poolwatch/register', fixture('default-first.mjs')], order: 'subscribe' },
  { name: 'an ES module app (--import) first lease()s from a pool the preload did not make', args: ['--import', 'poolwatch/register', fixture('default-first.mjs')], order: 'lease' },
  { name: 'a CommonJS app (-r) first lease()s from a pool the preload did not make', args: ['-r', 'poolwatch/register', fixture('default-first.cjs')], order: 'lease' },
]) {
  t.test(`${name}: the leak is reported with POOLWATCH_LEAK_THRESHOLD_MS and POOLWATCH_STACKS`, async (t) => {
    const ended = await run(args, { ...settings, ORDER: order });
    t.same(JSON.parse(ended.stdout), applied, `stderr:\n${ended.stderr}`);
    t.equal(ended.code, 0);
  });
}

for (const file of ['default-first.mjs', 'default-first.cjs']) {
  t.test(`an app with its own copy of poolwatch (${file}) gets the preload's settings in that copy's defaultDetector()`, async (t) => {
    const copy = secondCopy(t);
    // The copy's dependencies (debug, ...) are the project's.
    const ended = await run(['--import', 'poolwatch/register', fixture(file)], { ...settings, ORDER: 'lease', POOLWATCH_COPY: copy, NODE_PATH: join(root, 'node_modules') });
    t.same(JSON.parse(ended.stdout), applied, `stderr:\n${ended.stderr}`);
    t.equal(ended.code, 0);
  });
}

t.test('POOLWATCH_LOG=json and POOLWATCH_REPORT see the leak of an app that subscribed before its first pool', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'poolwatch-order-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'report.html');
  const ended = await run(['--import', 'poolwatch/register', fixture('default-first.mjs')], { ...settings, POOLWATCH_LOG: 'json', POOLWATCH_REPORT: path, ORDER: 'subscribe' });
  t.same(JSON.parse(ended.stdout), applied);
  const leak = ended.stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .find((line) => line.poolwatch === 'leak');
  t.equal(leak?.thresholdMs, 300, `stderr:\n${ended.stderr}`);
  t.match(readFileSync(path, 'utf8'), 'generic-pool', 'the report has the pool');
});
