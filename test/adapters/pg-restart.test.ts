import t from 'tap';
import { createDetector } from '../../lib/index.js';
import { restartPostgres, startPostgres } from '../helpers/postgres.js';
import { pgVersions } from '../helpers/versions.js';

type Seen = { class: string; code: unknown } | 'ok';

async function outcome(run: () => Promise<unknown>): Promise<Seen> {
  try {
    await run();
    return 'ok';
  } catch (error) {
    return { class: (error as Error).constructor.name, code: (error as Error & { code?: unknown }).code };
  }
}

for (const { label, pg } of pgVersions()) t.test(`${label}: a server restart while connections are leased leaves no ghost lease`, async (t) => {
  const db = await startPostgres(t);
  // Run the same story without and with poolwatch: the app must see the same things.
  const story = async (watched: boolean) => {
    const pool = new pg.Pool({ ...db, max: 3 });
    // pg reports the dropped idle clients here; without a listener it would throw.
    pool.on('error', () => {});
    const detector = createDetector();
    if (watched) detector.watch(pool, { name: 'pg' });
    const held = await Promise.all([pool.connect(), pool.connect()]);
    const dropped = held.map((client) => new Promise<void>((resolve) => client.on('error', () => resolve())));
    await restartPostgres(db);
    await Promise.all(dropped);
    const seen = await outcome(() => held[0]!.query('SELECT 1'));
    for (const client of held) client.release(new Error('connection lost'));
    // The pool discarded both clients; a new connect reaches the restarted server.
    const after = await pool.query('SELECT 1 AS one');
    const stats = detector.stats().pg;
    detector.close();
    await pool.end();
    return { seen, rows: after.rows, totalAfterEnd: pool.totalCount, stats };
  };
  const raw = await story(false);
  const watched = await story(true);
  t.match(raw.seen, { class: 'Error' }, 'a dropped connection fails');
  t.same(watched.seen, raw.seen, "the app sees pg's own error for the dropped connection");
  t.same(watched.rows, [{ one: 1 }]);
  t.match(watched.stats, { open: 0, waiting: 0, acquired: 3, destroyed: 2, released: 1, leaked: 0 }, 'every lease ended; none is left open');
});
