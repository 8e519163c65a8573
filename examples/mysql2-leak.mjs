// A request handler that forgets to release its mysql2 connection on one path.
// poolwatch reports the leak, naming the line that took the connection and the
// request it served. Needs a MySQL or MariaDB server named by POOLWATCH_MYSQL_*.
import { AsyncLocalStorage } from 'node:async_hooks';
import mysql from 'mysql2/promise';
import { watch } from 'poolwatch';

const env = process.env;
if (env.POOLWATCH_MYSQL_HOST === undefined) {
  console.log('skipped: no MySQL server. Start one with `sudo bash .ci/mariadb` and eval the variables it prints (POOLWATCH_MYSQL_HOST and friends).');
  process.exit(0);
}

const requests = new AsyncLocalStorage();
const pool = mysql.createPool({
  host: env.POOLWATCH_MYSQL_HOST,
  port: Number(env.POOLWATCH_MYSQL_PORT ?? 3306),
  user: env.POOLWATCH_MYSQL_USER ?? 'poolwatch',
  password: env.POOLWATCH_MYSQL_PASSWORD ?? '',
  database: env.POOLWATCH_MYSQL_DATABASE ?? 'poolwatch_test',
  connectionLimit: 2,
});

let reported;
const leakReported = new Promise((resolve) => (reported = resolve));

watch(pool, {
  name: 'main',
  leakThresholdMs: 200,
  context: () => ({ requestId: requests.getStore()?.id }),
  onLeak: (report) => {
    console.log(report.format());
    reported();
  },
});

async function getUser(id) {
  const conn = await pool.getConnection(); // leaks here
  const [rows] = await conn.execute('SELECT ? AS id', [id]);
  if (id === 2) return null; // the bug: this early return never releases `conn`
  conn.release();
  return rows[0];
}

for (const id of [1, 2, 3]) {
  await requests.run({ id: `req-${id}` }, () => getUser(id));
}

// A server would keep the process alive until then; poolwatch's own timer never does.
const server = setInterval(() => {}, 1000);
await leakReported;
clearInterval(server);
// end() closes every connection, the leaked one too.
await pool.end();
