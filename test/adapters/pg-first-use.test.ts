/**
 * A pg pool's first use, in each order apps and the libraries over pg make it: pool.query()
 * (promise, callback, several at once), connect() (promise, callback), knex, Sequelize,
 * TypeORM and Kysely. pg-pool hands a new client over from inside its first ReadyForQuery,
 * before pg marks it ready: poolwatch must follow it all the same, warn of nothing, and
 * show afterwards what every lease's connection does, on a real PostgreSQL.
 */
import t, { type Test } from 'tap';
import pg from 'pg';
import knex from 'knex';
import { Sequelize, Transaction } from 'sequelize';
import { DataSource } from 'typeorm';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { createDetector, type Detector, type LeakReport } from '../../lib/index.js';
import { fakeClock } from '../helpers/clock.js';
import { endPool as end, startPostgres, type PostgresConfig } from '../helpers/postgres.js';
import { captureWarnings } from '../helpers/warnings.js';
import { pgVersions } from '../helpers/versions.js';

const degraded = (warnings: Error[]) => warnings.filter((w) => (w as Error & { code?: string }).code === 'POOLWATCH_DEGRADED').map((w) => w.message);


/** A detector with a 1 s threshold on a fake clock, and the leaks it reports. */
function watching(t: Test): { detector: Detector; leaks: LeakReport[]; clock: ReturnType<typeof fakeClock>; warnings: Error[] } {
  const warnings = captureWarnings(t);
  const clock = fakeClock(t);
  const detector = createDetector({ leakThresholdMs: 1_000 });
  t.teardown(() => detector.close());
  const leaks: LeakReport[] = [];
  detector.on('leak', (report) => leaks.push(report));
  return { detector, leaks, clock, warnings };
}

/** What a pool's first use must leave: every capability, no warning. */
async function nothingLost(t: Test, detector: Detector, pool: string, warnings: Error[]): Promise<void> {
  // Warnings arrive on the next tick.
  await new Promise((resolve) => setImmediate(resolve));
  t.same(degraded(warnings), [], 'no POOLWATCH_DEGRADED warning');
  t.match(detector.stats()[pool], { capabilities: { can: { activity: true }, degraded: [] } }, 'activity is still followed');
  t.ok(detector.stats()[pool]!.activity !== undefined, 'stats() counts leases by activity');
}

t.test('pg: every first use leaves activity followed, and a transaction held open is reported as one', async (t) => {
  const db: PostgresConfig = await startPostgres(t);

  // Each pg version's own pool and client: pg 8.0 sets readyForQuery from its own listener, pg 8.23 from its handler.
  const orders: ReadonlyArray<readonly [string, (pool: pg.Pool) => Promise<unknown>]> = [
    ['pool.query() promise', (pool) => pool.query('SELECT 1')],
    ['pool.query() callback', (pool) => new Promise((resolve, reject) => pool.query('SELECT 1', (error, result) => (error ? reject(error) : resolve(result))))],
    ['pool.query() with values and a callback', (pool) => new Promise((resolve, reject) => pool.query('SELECT $1::int', [1], (error, result) => (error ? reject(error) : resolve(result))))],
    ['several pool.query() at once', (pool) => Promise.all([pool.query('SELECT 1'), pool.query('SELECT 2'), pool.query('SELECT pg_sleep(0.01)')])],
    ['connect() promise', async (pool) => (await pool.connect()).release()],
    [
      'connect() callback, querying inside it',
      (pool) =>
        new Promise<void>((resolve, reject) =>
          pool.connect((error, client, done) => {
            if (error) return reject(error);
            client!.query('SELECT 1', (queryError) => {
              done();
              if (queryError) reject(queryError);
              else resolve();
            });
          }),
        ),
    ],
  ];

  for (const { label, pg } of pgVersions()) for (const [name, first] of orders) {
    t.test(`${label}: first use by ${name}`, async (t) => {
      const { detector, leaks, clock, warnings } = watching(t);
      const pool = new pg.Pool({ ...db, max: 3 });
      t.teardown(() => end(pool));
      detector.watch(pool, { name: 'pg' });
      await first(pool);
      await nothingLost(t, detector, 'pg', warnings);

      // Every client the first use opened shows what it does.
      const clients = await Promise.all(Array.from({ length: 3 }, () => pool.connect()));
      t.same(detector.leases().map((lease) => lease.activity), ['idle', 'idle', 'idle']);
      await clients[0]!.query('BEGIN');
      await clients[0]!.query('SELECT 1');
      const running = clients[1]!.query('SELECT pg_sleep(0.05)');
      t.same(detector.leases().map((lease) => lease.activity).sort(), ['idle', 'idle-in-transaction', 'query']);
      await running;
      clients[1]!.release();
      clients[2]!.release();
      await clock.tickAsync(1_000);
      t.equal(leaks.length, 1, 'the transaction held open is reported');
      t.match(leaks[0], { kind: 'threshold', activity: 'idle-in-transaction', lastQuery: 'SELECT ?' });
      t.match(leaks[0]!.message, /idle in an open transaction/);
      await clients[0]!.query('ROLLBACK');
      clients[0]!.release();
    });
  }

  t.test("first use by pool.query(): that lease's own query shows as a query in flight", async (t) => {
    const { detector, warnings } = watching(t);
    const pool = new pg.Pool({ ...db, max: 1 });
    t.teardown(() => end(pool));
    detector.watch(pool, { name: 'pg' });
    const seen: Array<string | undefined> = [];
    // The handover of a new client happens inside pg's first ReadyForQuery: look right after it.
    pool.on('connect', () => void process.nextTick(() => seen.push(...detector.leases().map((lease) => lease.activity))));
    await pool.query('SELECT pg_sleep(0.05)');
    t.same(seen, ['query']);
    await nothingLost(t, detector, 'pg', warnings);
  });

  t.test('first use by knex: its transactions show as such', async (t) => {
    const { detector, leaks, clock, warnings } = watching(t);
    const db2 = knex({ client: 'pg', connection: db, pool: { min: 0, max: 2 } });
    t.teardown(() => db2.destroy());
    detector.watch(db2, { name: 'knex' });
    await db2.raw('SELECT 1');
    await nothingLost(t, detector, 'knex', warnings);
    const trx = await db2.transaction();
    await trx.raw('SELECT 1');
    t.same(detector.leases().map((lease) => lease.activity), ['idle-in-transaction']);
    await clock.tickAsync(1_000);
    t.match(leaks, [{ kind: 'threshold', activity: 'idle-in-transaction' }]);
    await trx.rollback();
  });

  t.test('first use by Sequelize: its transactions show as such', async (t) => {
    const { detector, leaks, clock, warnings } = watching(t);
    const sequelize = new Sequelize({ dialect: 'postgres', host: db.host, port: db.port, username: db.user, password: db.password, database: db.database, logging: false, pool: { max: 2 } });
    t.teardown(() => sequelize.close());
    detector.watch(sequelize, { name: 'sequelize' });
    await sequelize.query('SELECT 1');
    await nothingLost(t, detector, 'sequelize', warnings);
    const trx = await sequelize.transaction({ isolationLevel: Transaction.ISOLATION_LEVELS.READ_COMMITTED });
    await sequelize.query('SELECT 1', { transaction: trx });
    t.same(detector.leases().map((lease) => lease.activity), ['idle-in-transaction']);
    await clock.tickAsync(1_000);
    t.match(leaks, [{ kind: 'threshold', activity: 'idle-in-transaction' }]);
    await trx.rollback();
  });

  // TypeORM makes its pg.Pool itself and connects it by callback at initialize(): watched as the preload watches it, when made.
  t.test('first use by TypeORM (connect callback at initialize): its transactions show as such', async (t) => {
    const { detector, leaks, clock, warnings } = watching(t);
    class Pool extends pg.Pool {
      constructor(options?: pg.PoolConfig) {
        super(options);
        detector.watch(this, { name: 'typeorm' });
      }
    }
    const dataSource = new DataSource({ type: 'postgres', ...db, username: db.user, driver: { ...pg, Pool } });
    await dataSource.initialize();
    t.teardown(() => dataSource.destroy());
    await nothingLost(t, detector, 'typeorm', warnings);
    const runner = dataSource.createQueryRunner();
    await runner.startTransaction();
    await runner.query('SELECT 1');
    t.same(detector.leases().map((lease) => lease.activity), ['idle-in-transaction']);
    await clock.tickAsync(1_000);
    t.match(leaks, [{ kind: 'threshold', activity: 'idle-in-transaction' }]);
    await runner.rollbackTransaction();
    await runner.release();
  });

  t.test('first use by Kysely over a pg.Pool: its transactions show as such', async (t) => {
    const { detector, leaks, clock, warnings } = watching(t);
    const pool = new pg.Pool({ ...db, max: 2 });
    detector.watch(pool, { name: 'kysely' });
    const kysely = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool }) });
    t.teardown(async () => {
      let closing = pool.totalCount;
      const closed = new Promise<void>((resolve) => (closing === 0 ? resolve() : pool.on('remove', () => --closing === 0 && resolve())));
      await kysely.destroy();
      await closed;
    });
    await sql`SELECT 1`.execute(kysely);
    await nothingLost(t, detector, 'kysely', warnings);
    const trx = await kysely.startTransaction().execute();
    await sql`SELECT 1`.execute(trx);
    t.same(detector.leases().map((lease) => lease.activity), ['idle-in-transaction']);
    await clock.tickAsync(1_000);
    t.match(leaks, [{ kind: 'threshold', activity: 'idle-in-transaction' }]);
    await trx.rollback().execute();
  });
});
