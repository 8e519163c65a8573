/**
 * knex over pg for the model-based tests (test/helpers/model.ts): what an app holds is a
 * transaction, taken by `await knex.transaction()` or by a handler it keeps open; its
 * pool is tarn's. The server's view is PostgreSQL's, by the transaction's pg Client.
 */
import type { Test } from 'tap';
import createKnex, { type Knex } from 'knex';
import type pg from 'pg';
import type { Giveback, ModelDriver } from './model.js';
import { postgresSide } from './model-pg.js';
import { siteOf } from './site.js';

/** A transaction the program holds, with its pg Client; a handler's, with how to end the handler. */
export interface Held {
  readonly trx: Knex.Transaction;
  readonly client: pg.Client;
  /** For a handler's transaction: ends the handler (resolves, or throws `error`), and its outcome. */
  readonly finish?: (error?: Error) => Promise<unknown>;
}

const result = (r: pg.QueryResult) => ({ command: r.command, rowCount: r.rowCount, rows: r.rows });

async function take(db: Knex, form: 'promise' | 'callback'): Promise<Omit<Held, 'client'>> {
  if (form === 'promise') return { trx: await db.transaction() }; // ACQUIRE-PROMISE
  let trx: Knex.Transaction | undefined;
  let given!: () => void;
  let end!: (error?: Error) => void;
  const handed = new Promise<void>((resolve) => (given = resolve));
  const outcome = db.transaction((t) => ((trx = t), given(), new Promise<void>((ok, fail) => (end = (error) => (error === undefined ? ok() : fail(error)))))); // ACQUIRE-CALLBACK
  // The handler's outcome, settled (a failed acquire rejects it before the handler runs).
  const settled = outcome.then((value) => ({ value }), (error: unknown) => ({ error }));
  await Promise.race([handed, settled]);
  if (trx === undefined) throw ((await settled) as { error: unknown }).error;
  return {
    trx,
    finish: async (error) => {
      end(error);
      return outcome;
    },
  };
}

export async function knexDriver(t: Test): Promise<{ driver: ModelDriver<Knex, Held>; done: () => Promise<void> }> {
  const side = await postgresSide(t);
  const giveBack = async (held: Held, how: Giveback) => {
    if (held.finish !== undefined) return held.finish(how === 'plain' ? undefined : new Error('the app gave up on it'));
    return how === 'plain' ? held.trx.commit() : held.trx.rollback();
  };
  const driver: ModelDriver<Knex, Held> = {
    name: 'knex',
    max: 3,
    sites: { promise: siteOf(__filename, '// ACQUIRE-PROMISE'), callback: siteOf(__filename, '// ACQUIRE-CALLBACK') },
    // Inside a knex transaction: savepoints are its nested transactions.
    sql: { ...side.sql, begin: ['SAVEPOINT model', 'INSERT INTO model_items VALUES (1)'], commit: 'RELEASE SAVEPOINT model', rollback: 'ROLLBACK TO SAVEPOINT model' },
    // tarn reaps idle connections by Date.now(), which the programs move: never within a program.
    create: async () => createKnex({ client: 'pg', connection: side.db, pool: { min: 0, max: 3, idleTimeoutMillis: 3_600_000 }, log: { warn: () => {}, error: () => {}, deprecate: () => {}, debug: () => {} } }),
    close: (db) => db.destroy(),
    leased: (db) => (db.client as { pool: { numUsed(): number } }).pool.numUsed(),
    state: (db) => {
      const pool = (db.client as { pool: { numUsed(): number; numFree(): number; numPendingAcquires(): number; numPendingCreates(): number } }).pool;
      return { used: pool.numUsed(), free: pool.numFree(), pendingAcquires: pool.numPendingAcquires(), pendingCreates: pool.numPendingCreates() };
    },
    acquire: async (db, form) => {
      const taken = await take(db, form);
      // The connection knex bound to it: what the server knows it by.
      const client = (await (taken.trx.client as unknown as { acquireConnection(): Promise<pg.Client> }).acquireConnection()) as pg.Client;
      return { ...taken, client };
    },
    poolQuery: async (db, form, sql) => {
      if (form === 'promise') return result((await db.raw(sql)) as pg.QueryResult);
      return new Promise((resolve, reject) => void db.raw(sql).asCallback((error: Error | null, r: pg.QueryResult) => (error ? reject(error) : resolve(result(r)))));
    },
    query: async (held, sql) => result((await held.trx.raw(sql)) as pg.QueryResult),
    giveBack: async (_db, held, how) => giveBack(held, how),
    withShortTimeout: async (db, acquire) => {
      const pool = (db.client as { pool: { acquireTimeoutMillis: number } }).pool;
      const before = pool.acquireTimeoutMillis;
      pool.acquireTimeoutMillis = 20;
      try {
        return await acquire();
      } finally {
        pool.acquireTimeoutMillis = before;
      }
    },
    kill: (_db, held) => side.kill(held.client),
    restart: (held) => side.restart(held.map((h) => h.client)),
    block: side.block,
    running: (held, done) => side.running(held.client, done),
    caughtUp: (held) => side.caughtUp(held.client),
    server: (held) => side.server(held.map((h) => h.client)),
  };
  return { driver, done: side.done };
}
