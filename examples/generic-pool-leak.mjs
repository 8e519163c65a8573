// A request handler that forgets to release its connection on one path. poolwatch
// reports the leak, naming the line that took the connection and the request it served;
// once the leaks have taken every connection, the pool's timeout error says it is a leak.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createPool } from 'generic-pool';
import { watch } from 'poolwatch';

const requests = new AsyncLocalStorage();
let nextConnection = 1;
const pool = createPool(
  {
    create: async () => ({ id: nextConnection++, query: async (sql) => [{ sql }] }),
    destroy: async () => {},
  },
  { max: 2, acquireTimeoutMillis: 300 },
);

let reported;
const leakReported = new Promise((resolve) => (reported = resolve));

watch(pool, {
  name: 'main',
  leakThresholdMs: 200,
  context: () => ({ requestId: requests.getStore()?.id }),
  onLeak: (report) => {
    // The first leak in full; the next from the same line would only repeat it.
    if (report.occurrence === 1) console.log(report.format());
    reported();
  },
});

async function getUser(id) {
  const conn = await pool.acquire(); // leaks here
  const rows = await conn.query(`SELECT * FROM users WHERE id = ${id}`);
  if (id % 2 === 0) return null; // the bug: this early return never releases `conn`
  await pool.release(conn);
  return rows[0];
}

for (const id of [1, 2, 3, 4]) {
  await requests.run({ id: `req-${id}` }, () => getUser(id));
}

// A server would keep the process alive until then; poolwatch's own timer never does.
const server = setInterval(() => {}, 1000);
await leakReported;
// Both connections are leaked now: the next request waits, and the pool gives up.
try {
  await requests.run({ id: 'req-5' }, () => getUser(5));
} catch (error) {
  console.log(`\nThe next request fails with:\n${error.message}`);
}
clearInterval(server);
