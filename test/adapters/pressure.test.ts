/**
 * Pools that run dry, on the real servers: the drivers' own "no connection" errors name
 * who holds the pool, and `exhausted` says so once. Real timers: each pool's own short
 * acquire timeout ends the wait; nothing here measures time.
 */
import t, { type Test } from 'tap';
import createKnex from 'knex';
import type mysql2 from 'mysql2';
import type pg from 'pg';
import { createDetector, type ExhaustedEvent } from '../../lib/index.js';
import { startPostgres } from '../helpers/postgres.js';
import { mariadbConfig } from '../helpers/mariadb.js';
import { poolsOwnMessage } from '../helpers/errors.js';
import { mariadbVersions, mysql2Versions, pgVersions } from '../helpers/versions.js';
import { captureWarnings } from '../helpers/warnings.js';

function watched(t: Test, pool: object, name: string) {
  const detector = createDetector({ leakThresholdMs: 600_000, stacks: 'always' });
  detector.watch(pool, { name });
  t.teardown(() => detector.close());
  const events: ExhaustedEvent[] = [];
  detector.on('exhausted', (event) => events.push(event));
  return { detector, events };
}

async function rejection(promise: PromiseLike<unknown>): Promise<Error & { poolwatch?: ExhaustedEvent }> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the acquire to fail');
}

function expectHoldersNamed(t: Test, error: Error & { poolwatch?: ExhaustedEvent }, own: RegExp, pool: string, holders: number, capacity: number | null = holders) {
  t.match(poolsOwnMessage(error.message), own, "the pool's own message comes first, unchanged");
  const size = capacity === null ? `${holders} connections?` : `${holders} of ${capacity} connections`;
  t.match(error.message, new RegExp(`\\npoolwatch: pool "${pool}" gave up waiting for a connection: ${size} leased, \\d+ waiting; the request that gave up had waited .+?\\. Held by:\\n {2}${holders === 1 ? '1 lease' : `${holders} leases`} from test/adapters/pressure\\.test\\.ts:\\d+:\\d+`));
  t.match(error.poolwatch, { reason: 'timeout', pool, open: holders });
}

for (const { label, pg } of pgVersions()) t.test(`${label}: the connect timeout names the holders`, async (t) => {
  const db = await startPostgres(t);
  // Long enough for the holders' own connects on a loaded machine: the timeout covers creating a client too.
  const pool = new pg.Pool({ ...db, max: 2, connectionTimeoutMillis: 1000 });
  // pool.end() resolves before its clients close: stopping the server may still reach one.
  pool.on('error', () => {});
  const { events, detector } = watched(t, pool, 'pg');
  const held: pg.PoolClient[] = [];
  for (let i = 0; i < 2; i++) held.push(await pool.connect()); // HOLDERS
  const error = await rejection(pool.connect());
  expectHoldersNamed(t, error, /^timeout exceeded when trying to connect$/, 'pg', 2);
  t.same(events.map((e) => e.reason), ['saturated', 'timeout']);
  t.match(detector.stats().pg, { timeouts: 1, capacity: 2, peakOpen: 2 });
  for (const client of held) client.release();
  await pool.end();
});

// The newest knex only: older ones do not print the warning checked below (knex 3.3 added it).
t.test('knex: "Timeout acquiring a connection" names the holders', async (t) => {
  const db = await startPostgres(t);
  // knex warns (with console.log unless told otherwise) about every failed acquire: kept here, and checked.
  // Its timeout covers opening a connection too: long enough for the holder's own on a loaded machine.
  const warnings: string[] = [];
  const knex = createKnex({ client: 'pg', connection: db, pool: { min: 0, max: 1 }, acquireConnectionTimeout: 1000, log: { warn: (message: string) => void warnings.push(message) } });
  t.teardown(() => knex.destroy());
  const { detector } = watched(t, knex, 'knex');
  const trx = await knex.transaction(); // HOLDER
  const error = await rejection(knex.raw('select 1'));
  expectHoldersNamed(t, error, /^Knex: Timeout acquiring a connection\. The pool is probably full\./, 'knex', 1);
  t.equal(error.name, 'KnexTimeoutError');
  t.match(detector.stats().knex, { timeouts: 1 });
  t.match(warnings, [/^Acquire connection error: .*operation timed out/], "knex's own warning, once");
  t.equal(warnings.length, 1);
  await trx.rollback();
});

for (const { label, mariadb: mariadbDriver } of mariadbVersions()) t.test(`${label}: the pool timeout names the holders`, async (t) => {
  const config = mariadbConfig(t);
  if (config === undefined) return;
  const pool = mariadbDriver.createPool({ ...config, connectionLimit: 1, acquireTimeout: 100 });
  t.teardown(() => pool.end());
  watched(t, pool, 'mariadb');
  const conn = await pool.getConnection(); // HOLDER
  const error = await rejection(pool.getConnection());
  // mariadb keeps its connection limit private: the holders are counted, not the capacity.
  // mariadb before 3.4 words it "retrieve connection from pool timeout after".
  expectHoldersNamed(t, error, /pool timeout: failed to retrieve a connection from pool after|retrieve connection from pool timeout after/, 'mariadb', 1, null);
  t.match(error, { code: 'ER_GET_CONNECTION_TIMEOUT' }, 'code unchanged');
  await conn.release();
});

for (const { label, mysql: mysql2 } of mysql2Versions()) t.test(`${label}: the queue limit names the holders`, async (t) => {
  const config = mariadbConfig(t);
  if (config === undefined) return;
  const warnings = captureWarnings(t);
  const pool = mysql2.createPool({ ...config, connectionLimit: 1, queueLimit: 1 });
  t.teardown(() => new Promise<void>((resolve) => pool.end(() => resolve())));
  const { detector } = watched(t, pool, 'mysql2');
  const conn = await new Promise<mysql2.PoolConnection>((resolve, reject) => pool.getConnection((e, c) => (e ? reject(e) : resolve(c)))); // HOLDER
  const queued = new Promise<mysql2.PoolConnection>((resolve) => pool.getConnection((_e, c) => resolve(c)));
  const error = await new Promise<Error>((resolve) => pool.getConnection((e) => resolve(e as Error)));
  expectHoldersNamed(t, error, /^Queue limit reached\.$/, 'mysql2', 1);
  conn.release();
  (await queued).release();
  // mysql2 before 3.20 has no connection._released: said at the first connection handed over (test/adapters/mysql2.test.ts checks it).
  await new Promise((resolve) => setImmediate(resolve));
  const degraded = detector.stats().mysql2!.capabilities.can.misuse ? [] : [{ code: 'POOLWATCH_DEGRADED', message: /mysql2 3\.\d+\.\d+, .*misuse \(no connection\._released/ }];
  t.match(warnings, degraded, 'no other warning');
  t.equal(warnings.length, degraded.length);
});
