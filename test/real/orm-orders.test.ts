import t from 'tap';
import { startPostgres } from '../helpers/postgres.js';
import { cjsApp, esmApp, fixture, freshDatabase, headlines, leakSite, namesSite, runUntilLeakAt, type Preload } from '../helpers/real.js';

// Each ORM in the orders apps use before they leak (queries one at a time and several at
// once, a committed transaction with a nested one, a rolled-back one, a query error and,
// for Sequelize, its own retry of it, a second pool), as an ES module and as CommonJS,
// under the preload. The leak is a transaction on the second pool that never finishes:
// its report, the first and only one, names the pool and the app's line.
t.setTimeout(240_000);

const orms = ['knex', 'sequelize', 'typeorm', 'kysely', 'drizzle', 'mikro-orm'] as const;
const forms: readonly { ext: string; preload: Preload; label: string }[] = [
  { ext: 'mjs', preload: esmApp, label: 'an ES module app, --import' },
  { ext: 'cjs', preload: cjsApp, label: 'a CommonJS app, -r' },
];

// Each ORM's own name for its second pool.
const secondPool: Record<(typeof orms)[number], string> = {
  knex: 'knex#2',
  sequelize: 'sequelize#2',
  typeorm: 'pg#2',
  kysely: 'pg#2',
  drizzle: 'pg#2',
  'mikro-orm': 'knex#2',
};

/**
 * Orders no one has made work yet, each with why: the report names the ORM's own line, or
 * none, because the app's frame is not on the stack when the ORM acquires (it awaited
 * something of its own first, and the app did not await the ORM's promise).
 */
const unawaitedTodo: Partial<Record<(typeof orms)[number], string>> = {
  typeorm: "names TypeORM's PostgresDriver: it acquires after awaits of its own, and the app did not await",
  kysely: "names Kysely's postgres-driver.js: it acquires after awaits of its own, and the app did not await",
  'mikro-orm': "names MikroORM's AbstractSqlConnection.js: it acquires after awaits of its own, and the app did not await",
};

let url: string;
t.before(async () => {
  url = await freshDatabase(await startPostgres(t), 'orders');
});

for (const orm of orms) {
  for (const { ext, preload, label } of forms) {
    t.test(`${orm}, ${label}: after ordinary orders, a leaked transaction is reported once, at the app's line`, async (t) => {
      const app = fixture('orders', `${orm}.${ext}`);
      const site = leakSite(app);
      const seen = await runUntilLeakAt(t, { script: app, env: { DATABASE_URL: url } }, preload, site, { first: true });
      const poolwatch = headlines(seen.stderr);
      t.ok(namesSite(seen.line, site), `the first leak report names ${site}: ${seen.line ?? seen.ended}`, { poolwatch });
      t.match(seen.line, `Connection leak in pool "${secondPool[orm]}"`, 'and the pool the transaction was on', { poolwatch });
      t.same(poolwatch, seen.line === undefined ? [] : [seen.line], 'nothing else from poolwatch: no misuse, no degraded capability, no other leak');
    });
  }
}

t.test("a transaction started by a function that returns the ORM's promise without awaiting it is reported at that function's line", async (t) => {
  const app = fixture('orders', 'unawaited.mjs');
  for (const orm of orms) {
    const site = leakSite(app, `// LEAK ${orm}`);
    const seen = await runUntilLeakAt(t, { script: app, env: { DATABASE_URL: url, ORM: orm } }, esmApp, site, { first: true });
    const todo = unawaitedTodo[orm];
    t.ok(namesSite(seen.line, site), `${orm}: the leak report names ${site}: ${seen.line ?? seen.ended}`, {
      poolwatch: headlines(seen.stderr),
      ...(todo === undefined ? {} : { todo }),
    });
  }
});
