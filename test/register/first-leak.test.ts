// The first leak of an app run under the preload names the app's line, whatever the app
// did with the pool before it: the report is the only one many apps ever get.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { mariadbConfig } from '../helpers/mariadb.js';
import { siteOf } from '../helpers/site.js';

// The preload is loaded by name: the package's own build (npm test builds first).
const root = join(__dirname, '..', '..');
const fixture = (name: string) => join(root, 'test', 'fixtures', 'first-leak', name);
const clean: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('POOLWATCH_') && key !== 'NODE_OPTIONS'));
const reportLine = /^poolwatch: Connection leak in pool .*$/m;

/** Runs `file` under the preload until its first leak report's first line; the process is then ended. */
function firstReport(t: Test, file: string, env: NodeJS.ProcessEnv): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'poolwatch/register', file], {
    cwd: root,
    env: { ...clean, POOLWATCH_LEAK_THRESHOLD_MS: '200', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.teardown(() => void child.kill('SIGKILL'));
  let stderr = '';
  return new Promise((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      const match = reportLine.exec(stderr);
      if (match !== null && stderr.length > match.index + match[0].length) {
        child.kill('SIGKILL');
        resolve(match[0]);
      }
    });
    child.on('close', (code, signal) => reject(new Error(`${file} ended (${code ?? signal}) before a leak report; stderr:\n${stderr}`)));
  });
}

t.test('MariaDB', async (t) => {
  const db = mariadbConfig(t);
  if (db === undefined) return;
  const url = `mysql://${encodeURIComponent(db.user)}:${encodeURIComponent(db.password)}@${db.host}:${db.port}/${db.database}`;
  for (const stacks of ['auto', 'always']) {
    await t.test(`Sequelize: a transaction awaited at an ES module's top level after queries names its line (stacks ${stacks})`, async (t) => {
      const file = fixture('sequelize-top-level.mjs');
      const line = await firstReport(t, file, { DATABASE_URL: url, POOLWATCH_STACKS: stacks });
      // The preload watches the Sequelize instance: its lease is named by transaction().
      t.match(line, `acquired by transaction() at ${siteOf(file, '// LEAK')}`);
    });
  }
  await t.test('knex (CommonJS): a promise-form transaction after callback-form ones names its line', async (t) => {
    const file = fixture('knex-promise-form.cjs');
    const line = await firstReport(t, file, { DATABASE_URL: url, KNEX_CLIENT: 'mysql2' });
    t.match(line, `acquired at ${siteOf(file, '// LEAK')}`);
  });
  await t.test("Objection: a startTransaction() after transaction(cb) ones names its line", async (t) => {
    // Its table goes with the test; the server outlives it.
    t.teardown(async () => {
      const mysql = await import('mysql2/promise');
      const connection = await mysql.createConnection(db);
      await connection.query('DROP TABLE IF EXISTS first_leak_objection_orders');
      await connection.end();
    });
    const file = fixture('objection-start-transaction.mjs');
    const line = await firstReport(t, file, { DATABASE_URL: url, KNEX_CLIENT: 'mysql2' });
    t.match(line, `acquired at ${siteOf(file, '// LEAK')}`);
  });
});
