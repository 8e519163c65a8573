import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// POOLWATCH_REPORT is written however a service ends, its usual ends included: SIGTERM
// from its supervisor, Ctrl-C (SIGINT), SIGHUP when its terminal goes. How the process
// ends stays the app's: the oracle is the same service run without poolwatch.
const root = join(__dirname, '..', '..');
const fixture = (name: string) => join(root, 'test', 'fixtures', 'register', name);
const clean: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('POOLWATCH_') && key !== 'NODE_OPTIONS'));

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the service, sends `signal` once it says it started, and resolves when it has ended. */
function stop(args: string[], signal: NodeJS.Signals, env: NodeJS.ProcessEnv): Promise<Ended> {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let sent = false;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (!sent && stdout.includes('app started\n')) {
      sent = true;
      child.kill(signal);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.on('close', (code, ended) => resolve({ code, signal: ended, stdout, stderr })));
}

function reportPath(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'poolwatch-signal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'report.html');
}

function checkReport(t: Test, path: string, ended: Ended, file: string): void {
  t.ok(existsSync(path), `the report is written; stderr:\n${ended.stderr}`);
  if (!existsSync(path)) return;
  t.match(readFileSync(path, 'utf8'), `test/fixtures/register/${file}:`, 'with the leaked lease, by call site');
  t.equal(ended.stderr, `poolwatch: report written to ${path}\n`);
}

for (const { signal, args, file } of [
  { signal: 'SIGTERM', args: ['--import', 'poolwatch/register'], file: 'service.mjs' },
  { signal: 'SIGINT', args: ['--import', 'poolwatch/register'], file: 'service.mjs' },
  { signal: 'SIGHUP', args: ['--import', 'poolwatch/register'], file: 'service.mjs' },
  { signal: 'SIGTERM', args: ['-r', 'poolwatch/register'], file: 'service.mjs' },
] as const) {
  t.test(`a service with no ${signal} handler of its own (${args.join(' ')}): POOLWATCH_REPORT is written, and it still ends by ${signal}`, async (t) => {
    const raw = await stop([fixture(file)], signal, {});
    t.same({ code: raw.code, signal: raw.signal }, { code: null, signal }, 'without poolwatch it ends by the signal');
    const path = reportPath(t);
    const watched = await stop([...args, fixture(file)], signal, { POOLWATCH_REPORT: path });
    t.same({ code: watched.code, signal: watched.signal }, { code: raw.code, signal: raw.signal }, 'the same end under the preload');
    t.equal(watched.stdout, raw.stdout);
    checkReport(t, path, watched, file);
  });
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`a service whose own ${signal} handler exits: its handler runs, its exit code stays, and the report is written`, async (t) => {
    const raw = await stop([fixture('service.mjs')], signal, { APP_HANDLER: 'exit', APP_SIGNAL: signal });
    t.same({ code: raw.code, signal: raw.signal, stdout: raw.stdout }, { code: 3, signal: null, stdout: `app started\napp got ${signal}\n` });
    const path = reportPath(t);
    const watched = await stop(['--import', 'poolwatch/register', fixture('service.mjs')], signal, { APP_HANDLER: 'exit', APP_SIGNAL: signal, POOLWATCH_REPORT: path });
    t.same({ code: watched.code, signal: watched.signal, stdout: watched.stdout }, { code: raw.code, signal: raw.signal, stdout: raw.stdout });
    checkReport(t, path, watched, 'service.mjs');
  });
}

t.test('a service whose own SIGTERM handler carries on is not ended by poolwatch; the report is written when it ends', async (t) => {
  const raw = await stop([fixture('service.mjs')], 'SIGTERM', { APP_HANDLER: 'carry-on' });
  t.same({ code: raw.code, signal: raw.signal, stdout: raw.stdout }, { code: 0, signal: null, stdout: 'app started\napp got SIGTERM\napp still running\n' });
  const path = reportPath(t);
  const watched = await stop(['--import', 'poolwatch/register', fixture('service.mjs')], 'SIGTERM', { APP_HANDLER: 'carry-on', POOLWATCH_REPORT: path });
  t.same({ code: watched.code, signal: watched.signal, stdout: watched.stdout }, { code: raw.code, signal: raw.signal, stdout: raw.stdout });
  checkReport(t, path, watched, 'service.mjs');
});
