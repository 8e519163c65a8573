import t from 'tap';
import { createPool } from 'generic-pool';
import { ConnectionActivity } from '../lib/activity.js';
import { createDetector } from '../lib/index.js';
import { captureWarnings } from './helpers/warnings.js';

t.test('follows a MySQL transaction from the statements, as the drivers send them', async (t) => {
  const activity = new ConnectionActivity('mysql');
  const run = (sql: string) => {
    activity.started(sql);
    activity.ended();
    return activity.state;
  };
  t.equal(activity.state, 'idle');
  t.equal(run('START TRANSACTION'), 'idle-in-transaction');
  t.equal(run('UPDATE accounts SET balance = 1'), 'idle-in-transaction');
  t.equal(run('ROLLBACK TO SAVEPOINT before_update'), 'idle-in-transaction', 'a savepoint rollback keeps the transaction');
  t.equal(run('  commit'), 'idle');
  t.equal(run('begin work'), 'idle-in-transaction');
  t.equal(run('ROLLBACK'), 'idle');
  t.equal(run('SELECT begin_date FROM t'), 'idle', 'a word that starts with begin is not BEGIN');
  activity.started({ sql: 'SELECT SLEEP(?)', values: [5] });
  t.equal(activity.state, 'query');
  t.equal(activity.lastQuery, 'SELECT SLEEP(?)');
});

t.test('a query the driver says is over is not in flight, whatever the count', async (t) => {
  let idle = false;
  const activity = new ConnectionActivity('postgres', () => idle);
  activity.started('SELECT 1');
  t.equal(activity.state, 'query');
  // A query that failed before reaching the server: no ReadyForQuery will end it.
  idle = true;
  t.equal(activity.state, 'idle');
});

t.test('a waiter is told once when the connection has no query in flight any more', async (t) => {
  const activity = new ConnectionActivity('postgres');
  let woken = 0;
  activity.started('SELECT 1');
  activity.started('SELECT 2');
  activity.waiter = { wake: () => woken++ };
  activity.ended();
  t.equal(woken, 0, 'one query still in flight');
  activity.ended();
  activity.ended();
  t.equal(woken, 1);
});

t.test('reclaimAfterMs on a pool whose connections poolwatch cannot see is off, and says so once', async (t) => {
  const warnings = captureWarnings(t);
  const detector = createDetector({ reclaimAfterMs: 60_000 });
  t.teardown(() => detector.close());
  const pool = createPool({ create: async () => ({}), destroy: async () => {} });
  detector.watch(pool, { name: 'blind' });
  await new Promise((resolve) => setImmediate(resolve));
  t.match(warnings, [{ code: 'POOLWATCH_RECLAIM_UNSUPPORTED', message: /reclaimAfterMs is off for pool "blind"/ }]);
  t.match(detector.stats().blind!.capabilities.can, { activity: false, reclaim: false });
});

t.test('follows what a PostgreSQL session LISTENs to, from the statements as sent', async (t) => {
  const activity = new ConnectionActivity('postgres');
  const run = (sql: string) => {
    activity.started(sql);
    activity.ended(false);
    return activity.state;
  };
  t.equal(run('SELECT 1'), 'idle');
  t.equal(run('LISTEN "jobs:insert"; LISTEN "worker:migrate";'), 'listening', "graphile-worker's two channels in one query");
  t.same([...activity.channels!].sort(), ['jobs:insert', 'worker:migrate']);
  t.equal(run('UNLISTEN "jobs:insert"'), 'listening', 'one channel left');
  t.equal(run('UNLISTEN "worker:migrate";'), 'idle', 'none left');
  t.equal(run('  listen Jobs'), 'listening');
  t.equal(run('UNLISTEN "Jobs"'), 'listening', 'a quoted name is exact: "Jobs" is not jobs');
  t.equal(run('unlisten JOBS'), 'idle', 'an unquoted name folds to lower case');
  t.equal(run('LISTEN "a ""quoted"" name"'), 'listening');
  t.same([...activity.channels!], ['a "quoted" name']);
  t.equal(run('UNLISTEN *'), 'idle');
  run('LISTEN a');
  t.equal(run('discard all'), 'idle', 'DISCARD ALL ends every LISTEN');
  run('LISTEN a');
  t.equal(run('UPDATE listen SET x = 1; UNLISTEN *'), 'listening', 'only a statement that starts the text is read');
  t.equal(run('DELETE FROM unlisten'), 'listening');
  activity.started('SELECT pg_sleep(1)');
  t.equal(activity.state, 'query', 'a query in flight outranks listening');
  activity.ended(true);
  t.equal(activity.state, 'idle-in-transaction', 'so does an open transaction');
  activity.started('COMMIT');
  activity.ended(false);
  t.equal(activity.state, 'listening');
});

t.test('a MySQL connection has no LISTEN: the word is just a statement', async (t) => {
  const activity = new ConnectionActivity('mysql');
  activity.started('LISTEN a');
  activity.ended();
  t.equal(activity.state, 'idle');
  t.equal(activity.channels, null);
});
