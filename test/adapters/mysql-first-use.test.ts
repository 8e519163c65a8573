/**
 * The neighbours of pg's first-use case: a mysql2 or mariadb pool first used by a one-shot
 * query, by execute(), or by getConnection(), in callback and promise forms. The first
 * connection's shape is probed as it is handed over: nothing must be found lacking, and
 * every lease after shows what its connection does, on a real MariaDB.
 */
import t, { type Test } from 'tap';
import mysql from 'mysql2';
import { createPool as createMariadbPool, type Pool as MariadbPool } from 'mariadb';
import { createDetector, type Detector, type LeakReport } from '../../lib/index.js';
import { fakeClock } from '../helpers/clock.js';
import { mariadbConfig } from '../helpers/mariadb.js';
import { captureWarnings } from '../helpers/warnings.js';

const degraded = (warnings: Error[]) => warnings.filter((w) => (w as Error & { code?: string }).code === 'POOLWATCH_DEGRADED').map((w) => w.message);

function watching(t: Test): { detector: Detector; leaks: LeakReport[]; clock: ReturnType<typeof fakeClock>; warnings: Error[] } {
  const warnings = captureWarnings(t);
  const clock = fakeClock(t);
  const detector = createDetector({ leakThresholdMs: 1_000 });
  t.teardown(() => detector.close());
  const leaks: LeakReport[] = [];
  detector.on('leak', (report) => leaks.push(report));
  return { detector, leaks, clock, warnings };
}

async function nothingLost(t: Test, detector: Detector, pool: string, warnings: Error[]): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  t.same(degraded(warnings), [], 'no POOLWATCH_DEGRADED warning');
  t.match(detector.stats()[pool], { capabilities: { can: { activity: true }, degraded: [] } }, 'activity is still followed');
}

t.test('mysql2: every first use leaves activity followed, and a transaction held open is reported as one', async (t) => {
  const db = mariadbConfig(t);
  if (db === undefined) return;
  const orders: ReadonlyArray<readonly [string, (pool: mysql.Pool) => Promise<unknown>]> = [
    ['pool.query() callback', (pool) => new Promise((resolve, reject) => pool.query('SELECT 1', (error, rows) => (error ? reject(error) : resolve(rows))))],
    ['pool.execute() callback', (pool) => new Promise((resolve, reject) => pool.execute('SELECT ?', [1], (error, rows) => (error ? reject(error) : resolve(rows))))],
    ['several pool.query() at once', (pool) => Promise.all([pool.promise().query('SELECT 1'), pool.promise().query('SELECT 2'), pool.promise().execute('SELECT SLEEP(0.01)')])],
    ['getConnection() callback', (pool) => new Promise<void>((resolve, reject) => pool.getConnection((error, conn) => (error ? reject(error) : (conn.release(), resolve()))))],
    ['promise().getConnection()', async (pool) => (await pool.promise().getConnection()).release()],
  ];
  for (const [name, first] of orders) {
    t.test(`first use by ${name}`, async (t) => {
      const { detector, leaks, clock, warnings } = watching(t);
      const pool = mysql.createPool({ ...db, connectionLimit: 2 });
      t.teardown(() => new Promise<void>((resolve) => pool.end(() => resolve())));
      detector.watch(pool, { name: 'mysql2' });
      await first(pool);
      await nothingLost(t, detector, 'mysql2', warnings);
      const conn = await pool.promise().getConnection();
      t.same(detector.leases().map((lease) => lease.activity), ['idle']);
      await conn.query('START TRANSACTION');
      await conn.query('SELECT 1');
      t.same(detector.leases().map((lease) => lease.activity), ['idle-in-transaction']);
      await clock.tickAsync(1_000);
      t.match(leaks, [{ kind: 'threshold', activity: 'idle-in-transaction' }]);
      await conn.query('ROLLBACK');
      conn.release();
    });
  }
});

t.test('mariadb: every first use leaves activity followed, and a transaction held open is reported as one', async (t) => {
  const db = mariadbConfig(t);
  if (db === undefined) return;
  const orders: ReadonlyArray<readonly [string, (pool: MariadbPool) => Promise<unknown>]> = [
    ['pool.query()', (pool) => pool.query('SELECT 1')],
    ['pool.execute()', (pool) => pool.execute('SELECT ?', [1])],
    ['several pool.query() at once', (pool) => Promise.all([pool.query('SELECT 1'), pool.query('SELECT 2'), pool.query('SELECT SLEEP(0.01)')])],
    ['getConnection()', async (pool) => (await pool.getConnection()).release()],
  ];
  for (const [name, first] of orders) {
    t.test(`first use by ${name}`, async (t) => {
      const { detector, leaks, clock, warnings } = watching(t);
      // A connect timeout the fake clock cannot run out while the pool opens a connection.
      const pool = createMariadbPool({ ...db, connectionLimit: 2, connectTimeout: 60_000 });
      t.teardown(() => pool.end());
      detector.watch(pool, { name: 'mariadb' });
      await first(pool);
      await nothingLost(t, detector, 'mariadb', warnings);
      const conn = await pool.getConnection();
      t.same(detector.leases().map((lease) => lease.activity), ['idle']);
      await conn.beginTransaction();
      await conn.query('SELECT 1');
      t.same(detector.leases().map((lease) => lease.activity), ['idle-in-transaction']);
      await clock.tickAsync(1_000);
      t.match(leaks, [{ kind: 'threshold', activity: 'idle-in-transaction' }]);
      await conn.rollback();
      await conn.release();
    });
  }
});
