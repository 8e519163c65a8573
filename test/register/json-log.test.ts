import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// With POOLWATCH_LOG=json, everything poolwatch writes is one JSON object a line: its leaks,
// its own warnings and the preload's own lines, so a log pipeline never gets a line it
// cannot parse. In text mode its warnings stay Node's process warnings.
const root = join(__dirname, '..', '..');
const fixture = (name: string) => join(root, 'test', 'fixtures', 'register', name);
const clean: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('POOLWATCH_') && !key.startsWith('NODE_')));

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

type Line = Record<string, unknown>;

/** Every stderr line, parsed: a line that is not JSON fails the test, naming it. */
function jsonLines(t: Test, stderr: string): Line[] {
  return stderr
    .split('\n')
    .filter((line) => line !== '')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Line];
      } catch {
        t.fail(`a stderr line that is not JSON: ${line}`);
        return [];
      }
    });
}

const warningCodes = ['POOLWATCH_DEGRADED', 'POOLWATCH_DESTROY_UNSUPPORTED', 'POOLWATCH_LISTENER_ERROR', 'POOLWATCH_LISTENER_ERROR', 'POOLWATCH_RECLAIM_UNSUPPORTED'];

t.test("POOLWATCH_LOG=json: each of poolwatch's warnings, its leak and the report's line are JSON lines", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'poolwatch-json-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'report.html');
  const ended = await run(['--import', 'poolwatch/register', fixture('warnings.mjs')], { POOLWATCH_LOG: 'json', POOLWATCH_LEAK_THRESHOLD_MS: '50', POOLWATCH_REPORT: path });
  t.equal(ended.code, 0, ended.stderr);
  t.equal(ended.stdout, 'app started\n');
  const lines = jsonLines(t, ended.stderr);
  const warnings = lines.filter((line) => line.poolwatch === 'warning');
  t.same(warnings.map((line) => line.code).sort(), warningCodes, `stderr:\n${ended.stderr}`);
  for (const warning of warnings) {
    t.type(warning.time, 'string');
    t.type(warning.message, 'string');
  }
  t.match(warnings.find((line) => line.code === 'POOLWATCH_DEGRADED')?.message, /^pool "lacking" is generic-pool/, 'the message without the "poolwatch: " prefix the JSON says already');
  t.same(
    lines.filter((line) => line.poolwatch === 'leak').map((line) => line.pool),
    ['generic-pool'],
  );
  t.same(
    lines.filter((line) => line.poolwatch === 'report').map((line) => line.path),
    [path],
  );
});

t.test("POOLWATCH_LOG=json with --no-warnings: poolwatch's warnings stay off, as Node's are; its leaks are still logged", async (t) => {
  const ended = await run(['--no-warnings', '--import', 'poolwatch/register', fixture('warnings.mjs')], { POOLWATCH_LOG: 'json', POOLWATCH_LEAK_THRESHOLD_MS: '50' });
  t.equal(ended.code, 0, ended.stderr);
  t.same(
    jsonLines(t, ended.stderr).map((line) => line.poolwatch),
    ['leak'],
  );
});

for (const flag of [['--disable-warning=POOLWATCH_DEGRADED'], ['--disable-warning', 'POOLWATCH_DEGRADED']]) {
  t.test(`POOLWATCH_LOG=json with ${flag.join(' ')}: that warning stays off, the others are JSON lines`, async (t) => {
    const ended = await run([...flag, '--import', 'poolwatch/register', fixture('warnings.mjs')], { POOLWATCH_LOG: 'json', POOLWATCH_LEAK_THRESHOLD_MS: '50' });
    t.equal(ended.code, 0, ended.stderr);
    const codes = jsonLines(t, ended.stderr).flatMap((line) => (line.poolwatch === 'warning' ? [line.code] : []));
    t.same(
      codes.sort(),
      warningCodes.filter((code) => code !== 'POOLWATCH_DEGRADED'),
    );
  });
}

t.test('POOLWATCH_LOG=json: a bad setting is one JSON line naming it, and the app runs unwatched', async (t) => {
  const ended = await run(['--import', 'poolwatch/register', fixture('ends.mjs')], { POOLWATCH_LOG: 'json', POOLWATCH_STACKS: 'sometimes' });
  t.equal(ended.code, 0);
  const lines = jsonLines(t, ended.stderr);
  t.equal(lines.length, 1, ended.stderr);
  t.match(lines[0], { poolwatch: 'warning', code: 'POOLWATCH_INVALID_OPTION', message: /^POOLWATCH_STACKS must be always, auto or never, got "sometimes"; poolwatch is off/ });
});

t.test("POOLWATCH_LOG=text: poolwatch's warnings are Node's process warnings, as without the preload", async (t) => {
  const ended = await run(['--import', 'poolwatch/register', fixture('warnings.mjs')], { POOLWATCH_LEAK_THRESHOLD_MS: '50' });
  t.equal(ended.code, 0, ended.stderr);
  const codes = [...ended.stderr.matchAll(/^\(node:\d+\) \[(POOLWATCH_\w+)\] /gm)].map(([, code]) => code);
  t.same(codes.sort(), warningCodes, ended.stderr);
});
