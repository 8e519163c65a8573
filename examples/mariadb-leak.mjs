// A request handler that forgets to release its connection on one path. poolwatch
// reports the leak, naming the line that took the connection and the request it served.
// Needs a MariaDB or MySQL server: POOLWATCH_MYSQL_HOST, _PORT, _USER, _PASSWORD, _DATABASE.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createPool } from 'mariadb';
import { watch } from 'poolwatch';

const env = process.env;
if (env.POOLWATCH_MYSQL_HOST === undefined) {
  console.log('skipped: no MariaDB server; start one with `sudo bash .ci/mariadb` and eval the POOLWATCH_MYSQL_* variables it prints');
  process.exit(0);
}

const requests = new AsyncLocalStorage();
const pool = createPool({
  host: env.POOLWATCH_MYSQL_HOST,
  port: Number(env.POOLWATCH_MYSQL_PORT ?? 3306),
  user: env.POOLWATCH_MYSQL_USER,
  password: env.POOLWATCH_MYSQL_PASSWORD,
  database: env.POOLWATCH_MYSQL_DATABASE,
  connectionLimit: 2,
});

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

let forgotten; // kept only so this demo can clean up at the end

async function getUser(id) {
  const conn = await pool.getConnection(); // leaks here
  const rows = await conn.query('SELECT ? AS id', [id]);
  if (id === 2) {
    forgotten = conn;
    return null; // the bug: this early return never releases `conn`
  }
  await conn.release();
  return rows[0];
}

for (const id of [1, 2, 3]) {
  await requests.run({ id: `req-${id}` }, () => getUser(id));
}

// A server would keep the process alive until then; poolwatch's own timer never does.
const server = setInterval(() => {}, 1000);
await leakReported;
clearInterval(server);
await forgotten.release();
await pool.end();
