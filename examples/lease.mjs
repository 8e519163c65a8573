// The same handler as generic-pool-leak.mjs, written with lease(): the early return that
// leaked there gives its connection back here. Then the two mistakes lease() catches: a
// handle released twice after its connection went to another request (refused), and a
// handle dropped while still open (found by the garbage collector).
// Run: node examples/lease.mjs
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createPool } from 'generic-pool';
import { createDetector, lease } from 'poolwatch';

let nextConnection = 1;
const pool = createPool(
  { create: async () => ({ id: nextConnection++, query: async (sql) => [{ sql }] }), destroy: async () => {} },
  { max: 1, acquireTimeoutMillis: 300 },
);
const detector = createDetector({ leakThresholdMs: 60_000 });
detector.watch(pool, { name: 'main' });
detector.on('misuse', (event) => console.log(`poolwatch: ${event.kind}: ${event.message}\n`));
detector.on('leak', (report) => console.log(`${report.format()}\n`));

async function getUser(id) {
  // Given back when fn settles, on every path; destroyed if fn throws.
  return lease(pool, async (conn) => {
    const rows = await conn.query(`SELECT * FROM users WHERE id = ${id}`);
    if (id % 2 === 0) return null; // the early return that leaked without lease()
    return rows[0];
  });
}

for (const id of [1, 2, 3, 4]) await getUser(id);
console.log(`4 requests on a pool of 1, every path gave its connection back: ${pool.borrowed} borrowed\n`);

// A stale release: the first request's handle released again after the second request got the same connection.
const first = await lease(pool);
await first.release();
const second = await lease(pool);
await first.release(); // refused: the second request keeps its connection
console.log(`the second request still holds it: ${pool.isBorrowedResource(second.connection)}\n`);
await second.release();

// A forgotten handle: nothing can give its connection back once the handle is gone.
async function forgets() {
  const handle = await lease(pool);
  await handle.connection.query('SELECT 1');
}
await forgets();
// A busy service collects garbage soon enough by itself; this demo asks for a collection.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
while (detector.stats().main.leaked === 0) {
  gc();
  await new Promise((resolve) => setImmediate(resolve));
}
detector.close();
