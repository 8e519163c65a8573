/**
 * Under the preload, an app that holds a pg connection to LISTEN for its life, as
 * graphile-worker does, is not reported for it, while a connection it leaks beside it is,
 * at the app's line. The app is test/fixtures/register/listener.mjs, run on a real
 * PostgreSQL with no poolwatch code of its own.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startPostgres } from '../helpers/postgres.js';
import { siteOf } from '../helpers/site.js';

// The preload is loaded by name: the package's own build (npm test builds first).
const root = join(__dirname, '..', '..');
const fixture = join(root, 'test', 'fixtures', 'register', 'listener.mjs');
const clean: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('POOLWATCH_') && !key.startsWith('PG') && key !== 'NODE_OPTIONS'));

t.test('a connection held to LISTEN is not a leak under the preload; one leaked beside it is, at its line', async (t) => {
  const db = await startPostgres(t);
  const child = spawn(process.execPath, ['--import', 'poolwatch/register', fixture], {
    cwd: root,
    env: { ...clean, POOLWATCH_LEAK_THRESHOLD_MS: '300', PGHOST: db.host, PGPORT: String(db.port), PGUSER: db.user, PGPASSWORD: db.password, PGDATABASE: db.database },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => void child.kill());
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.equal(code, 0, 'the app ends by itself', { stderr });
  t.equal(stdout, 'notified on jobs:insert\napp done\n', "the app's own work, as without poolwatch");
  const reports = [...stderr.matchAll(/^poolwatch: Connection leak in pool "pg": lease #(\d+) held for \d+ ms \(threshold 300 ms\), acquired at (\S+)$/gm)];
  t.equal(reports.length, 1, 'one report: the leaked connection, not the listener', { stderr });
  t.ok(reports[0]?.[2]?.startsWith(siteOf(fixture, '// LEAK')), `it names the acquiring line: ${reports[0]?.[2]}`);
  t.notMatch(stderr, /POOLWATCH_DEGRADED/, 'nothing lacking');
});
