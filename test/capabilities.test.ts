// What poolwatch can see of each pool, probed at watch(): shown in stats(), and a missing
// private field degrades loudly (POOLWATCH_DEGRADED) while leases are still tracked.
import t from 'tap';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createPool as createGenericPool } from 'generic-pool';
import { Pool as TarnPool } from 'tarn';
import { createPool as createMariadbPool } from 'mariadb';
import pg from 'pg';
import { createDetector, type LeakReport } from '../lib/index.js';
import { fakeClock } from './helpers/clock.js';
import { mariadbConfig } from './helpers/mariadb.js';
import { captureWarnings } from './helpers/warnings.js';


const degradedWarnings = (warnings: Error[]) => warnings.filter((w) => (w as Error & { code?: string }).code === 'POOLWATCH_DEGRADED');

// mariadb's package.json is not in its exports: read it from its folder.
function versionOf(library: string): string {
  for (let dir = dirname(require.resolve(library)); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version: string };
      if (pkg.name === library) return pkg.version;
    } catch {}
  }
  throw new Error(`no package.json for ${library}`);
}

t.test('a generic-pool shows its library, version and every capability in stats()', async (t) => {
  const warnings = captureWarnings(t);
  const detector = createDetector();
  t.teardown(() => detector.close());
  detector.watch(createGenericPool({ create: async () => ({}), destroy: async () => {} }, { max: 2, acquireTimeoutMillis: 1_000 }), { name: 'db' });
  const { capabilities } = detector.stats().db!;
  t.same(capabilities, {
    library: 'generic-pool',
    version: versionOf('generic-pool'),
    checked: capabilities.checked,
    can: { misuse: true, capacity: true, idle: true, acquireTimeout: true, exhaustion: true, destroys: false, handover: true, activity: false, reclaim: false },
    degraded: [],
  });
  t.match(capabilities.checked, /^>=3\.\d+\.\d+ <4$/);
  t.ok(Object.isFrozen(capabilities) && Object.isFrozen(capabilities.can), 'frozen: a caller cannot change what the pool can do');
  await new Promise((resolve) => setImmediate(resolve));
  t.same(degradedWarnings(warnings), [], 'nothing to warn of');
});

t.test('a tarn pool shows its capabilities', async (t) => {
  const detector = createDetector();
  t.teardown(() => detector.close());
  const pool = new TarnPool({ create: async () => ({}), destroy: async () => {}, min: 0, max: 2 });
  t.teardown(() => pool.destroy());
  detector.watch(pool, { name: 'db' });
  t.match(detector.stats().db!.capabilities, { library: 'tarn', version: versionOf('tarn'), degraded: [], can: { misuse: true, capacity: true, idle: true, acquireTimeout: true } });
});

t.test('a pool watched through the adapter option says what it can see: its leases and double releases', async (t) => {
  const detector = createDetector();
  t.teardown(() => detector.close());
  const pool = { checkout: async () => ({}), checkin: async () => {} };
  detector.watch(pool, { name: 'db', adapter: { acquire: 'checkout', release: 'checkin' } });
  t.match(detector.stats().db!.capabilities, { library: 'custom adapter', version: undefined, can: { misuse: true, capacity: false, idle: false }, degraded: [] });
});

t.test('a mariadb pool without a shape poolwatch reads degrades loudly, once, and still tracks its leases', async (t) => {
  const db = mariadbConfig(t);
  if (db === undefined) return;
  const clock = fakeClock(t);
  const warnings = captureWarnings(t);
  const detector = createDetector({ leakThresholdMs: 1_000 });
  t.teardown(() => detector.close());
  const leaks: LeakReport[] = [];
  detector.on('leak', (report) => leaks.push(report));
  // As a mariadb release that renamed idleConnections() would look.
  // A connect timeout the fake clock cannot run out while the pool opens its first connection.
  const pool = createMariadbPool({ ...db, connectionLimit: 2, connectTimeout: 60_000 });
  t.teardown(() => pool.end());
  Object.defineProperty(pool, 'idleConnections', { value: undefined });
  detector.watch(pool, { name: 'db' });
  const second = createMariadbPool({ ...db, connectionLimit: 1, connectTimeout: 60_000 });
  t.teardown(() => second.end());
  Object.defineProperty(second, 'idleConnections', { value: undefined });
  detector.watch(second, { name: 'db2' });

  const { capabilities } = detector.stats().db!;
  t.match(capabilities, { library: 'mariadb', version: versionOf('mariadb'), can: { idle: false, misuse: true, exhaustion: true }, degraded: [{ capability: 'idle', shape: 'pool.idleConnections()' }] });
  t.equal(detector.stats().db!.idle, undefined, 'stats() does not guess the idle count');
  await new Promise((resolve) => process.nextTick(resolve));
  const said = degradedWarnings(warnings);
  t.equal(said.length, 1, 'warned once for this library version and capability, not per pool');
  t.match(said[0]!.message, new RegExp(`pool "db" is mariadb ${versionOf('mariadb').replace(/\./g, '\\.')}, checked against >=3\\.\\d+\\.\\d+ <4, which lacks what poolwatch reads for: idle \\(no pool\\.idleConnections\\(\\)`));

  const conn = await pool.getConnection();
  t.equal(detector.stats().db!.open, 1, 'the lease is tracked');
  await clock.tickAsync(1_000);
  t.equal(leaks.length, 1, 'and reported when it leaks');
  await conn.release();
  t.equal(detector.stats().db!.open, 0);
});

/**
 * A stand-in for pg's Client that pg-pool can drive (connect, query, end), as a test
 * double or another driver given as the pool's `Client` option would be.
 */
class FakeClient extends EventEmitter {
  constructor(_options?: unknown) {
    super();
  }
  connect(callback?: (error: Error | null) => void): Promise<void> | undefined {
    if (callback === undefined) return Promise.resolve();
    setImmediate(() => callback(null));
    return undefined;
  }
  query(_text: unknown, values?: unknown, callback?: (error: Error | null, result: unknown) => void): Promise<unknown> | undefined {
    const done = typeof values === 'function' ? (values as typeof callback) : callback;
    const result = { rows: [], rowCount: 0 };
    if (done === undefined) return Promise.resolve(result);
    setImmediate(() => done(null, result));
    return undefined;
  }
  end(callback?: () => void): Promise<void> | undefined {
    setImmediate(() => {
      this.emit('end');
      callback?.();
    });
    return callback === undefined ? Promise.resolve() : undefined;
  }
}

t.test("a pg pool given a Client poolwatch cannot follow names that Client, not pg-pool, as what lacks the shape", async (t) => {
  const warnings = captureWarnings(t);
  const detector = createDetector();
  t.teardown(() => detector.close());
  // pg's native Client has no protocol connection to listen to: it is libpq's.
  const NativeLike = function (this: FakeClient, options?: unknown) {
    return Object.assign(Reflect.construct(FakeClient, [options], new.target ?? NativeLike), { native: {} });
  } as unknown as typeof FakeClient;
  Object.setPrototypeOf(NativeLike.prototype, FakeClient.prototype);
  Object.defineProperty(NativeLike, 'name', { value: '' });
  // One that has a protocol connection but never says it is ready for a query: judged once it could have.
  class HalfClient extends FakeClient {
    connection = new EventEmitter();
  }
  const pools = { fake: FakeClient, native: NativeLike, half: HalfClient };
  for (const [name, Client] of Object.entries(pools)) {
    const pool = new pg.Pool({ Client: Client as unknown as typeof pg.Client, max: 1 });
    t.teardown(() => pool.end());
    detector.watch(pool, { name });
    const first = await pool.connect();
    await first.query('SELECT 1');
    first.release();
    await pool.query('SELECT 1');
  }
  await new Promise((resolve) => setImmediate(resolve));
  const pgPool = `pg-pool ${versionOf('pg-pool').replace(/\./g, '\\.')}`;
  const lack = (who: string, shape: string) =>
    new RegExp(`^poolwatch: pool "\\w+" \\(${pgPool}\\) makes its connections with ${who}, which lacks what poolwatch reads for: activity \\(no ${shape}[ :].*\\. Leases are still tracked\\.$`);
  t.match(degradedWarnings(warnings), [
    { message: lack('the Client class FakeClient', 'client\\.connection') },
    { message: lack("pg's native Client \\(pg-native\\)", 'client\\.connection') },
    { message: lack('the Client class HalfClient', 'client\\.readyForQuery') },
  ]);
  t.equal(degradedWarnings(warnings).length, 3, 'one warning per Client class');
  for (const w of degradedWarnings(warnings)) t.notMatch(w.message, /is pg-pool .*which lacks/, 'pg-pool is not blamed');
  const stats = detector.stats();
  t.match(stats.fake!.capabilities, { library: 'pg-pool', can: { activity: false }, degraded: [{ capability: 'activity', shape: /^client\.connection /, lackedBy: 'the Client class FakeClient' }] });
  t.match(stats.native!.capabilities, { can: { activity: false }, degraded: [{ capability: 'activity', lackedBy: "pg's native Client (pg-native)" }] });
  t.match(stats.half!.capabilities, { can: { activity: false }, degraded: [{ capability: 'activity', shape: 'client.readyForQuery', lackedBy: 'the Client class HalfClient' }] });
  for (const name of Object.keys(pools)) t.equal(stats[name]!.activity, undefined, `${name}: no activity counts`);

  // pg's own Client, and a subclass of it, lack nothing.
  class AppClient extends pg.Client {}
  const own = new pg.Pool({ Client: AppClient, host: '127.0.0.1', port: 1 });
  detector.watch(own, { name: 'own' });
  t.teardown(() => own.end());
  t.same(detector.stats().own!.capabilities.degraded, []);
});
