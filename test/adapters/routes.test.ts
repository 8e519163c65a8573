// A pool can be reached several ways (pg's pool.query() and pool.connect(), mysql2's
// query() and getConnection()), and the app's line sits at another depth below each: an
// ORM may take one way from deep in its own frames while the app takes the other itself.
// Under stacks 'auto' each way learns its own capture depth, so the first lease that comes
// a new way names the app's line, whatever the pool saw before.
import t, { type Test } from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import mysql from 'mysql2';
import { createDetector, type Detector, type LeaseInfo } from '../../lib/index.js';
import { startPostgres } from '../helpers/postgres.js';
import { mariadbConfig } from '../helpers/mariadb.js';
import { siteOf } from '../helpers/site.js';
import { untilShortCapture } from '../helpers/short-capture.js';

type Orm = { call: (target: object, method: string, ...args: unknown[]) => unknown };

// A stand-in for an ORM: a package under node_modules whose twelve frames lie between the app's call and the pool.
function fakeOrm(t: Test): Orm {
  const root = mkdtempSync(join(tmpdir(), 'poolwatch-orm-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'node_modules', 'fake-orm');
  mkdirSync(dir, { recursive: true });
  const layers = Array.from({ length: 12 }, (_, i) => `function layer${i}(target, method, args) { return ${i === 11 ? 'target[method](...args)' : `layer${i + 1}(target, method, args)`}; }`);
  writeFileSync(join(dir, 'index.js'), `${layers.join('\n')}\nexports.call = function call(target, method, ...args) { return layer0(target, method, args); };\n`);
  return createRequire(join(root, 'app.js'))('fake-orm') as Orm;
}

/** The lease the next acquire opens, as its 'acquire' event shows it. */
const nextLease = (detector: Detector) => new Promise<LeaseInfo>((resolve) => detector.once('acquire', resolve));

interface Way {
  /** The app takes a connection itself, and gives it back. */
  direct(): Promise<void>;
  /** The app has the ORM run a query through the pool's own query method, at the line marked `marker`. */
  query(orm: Orm): Promise<unknown>;
  marker: string;
}

async function learnsEachWay(t: Test, detector: Detector, way: Way) {
  const orm = fakeOrm(t);
  // The pool's first acquires are the app's own: what it learns a depth from.
  for (let i = 0; i < 12; i++) await way.direct();
  const { seen, short } = await untilShortCapture(
    async () => {
      const lease = nextLease(detector);
      const value = way.query(orm);
      return { lease: await lease, value };
    },
    (value) => value as Promise<unknown>,
  );
  t.ok(short, 'a query had the short capture the default takes');
  t.same(seen.filter((callSite) => !callSite?.startsWith(siteOf(__filename, way.marker))), [], `every query names the app's line (${seen.join(", ")})`);
}

t.test("pg: the first pool.query() through an ORM names the app's line after the app's own pool.connect()s", async (t) => {
  const config = await startPostgres(t);
  const pool = new pg.Pool({ ...config, max: 2 });
  t.teardown(() => pool.end());
  const detector = createDetector({ stacks: 'auto' });
  detector.watch(pool);
  t.teardown(() => detector.close());
  await learnsEachWay(t, detector, {
    direct: async () => (await pool.connect()).release(),
    query: (orm) => orm.call(pool, 'query', 'select 1') as Promise<unknown>, // PG QUERY
    marker: '// PG QUERY',
  });
});

t.test("mysql2: the first query() through an ORM names the app's line after the app's own getConnection()s", async (t) => {
  const config = mariadbConfig(t);
  if (config === undefined) return;
  const pool = mysql.createPool({ ...config, connectionLimit: 2 });
  t.teardown(() => new Promise((resolve) => pool.end(resolve)));
  const detector = createDetector({ stacks: 'auto' });
  detector.watch(pool);
  t.teardown(() => detector.close());
  await learnsEachWay(t, detector, {
    direct: () => new Promise<void>((resolve, reject) => pool.getConnection((error, connection) => (error ? reject(error) : resolve(connection.release())))),
    query: (orm) => new Promise((resolve, reject) => orm.call(pool, 'query', 'select 1', (error: unknown, rows: unknown) => (error ? reject(error) : resolve(rows)))), // MYSQL2 QUERY
    marker: '// MYSQL2 QUERY',
  });
});
