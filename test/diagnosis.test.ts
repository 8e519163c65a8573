import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mariadbConfig } from './helpers/mariadb.js';

// Each cause is produced for real: an embedded PostgreSQL, and the MariaDB the environment names.
t.setTimeout(5 * 60_000);
const run = promisify(execFile);
const root = join(__dirname, '..');

t.test('the five causes of a pool that runs dry each get their own verdict, on PostgreSQL and MariaDB', async (t) => {
  const db = mariadbConfig(t);
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (db === undefined) delete env.POOLWATCH_MYSQL_HOST;
  else {
    Object.assign(env, {
      POOLWATCH_MYSQL_HOST: db.host,
      POOLWATCH_MYSQL_PORT: String(db.port),
      POOLWATCH_MYSQL_USER: db.user,
      POOLWATCH_MYSQL_PASSWORD: db.password,
      POOLWATCH_MYSQL_DATABASE: db.database,
    });
  }
  const { stdout } = await run(process.execPath, ['examples/diagnosis/five-causes.mjs', '--json'], { cwd: root, env });
  const rows = JSON.parse(stdout.trim().split('\n').at(-1)!) as Array<Record<string, string>>;
  const expected: Record<string, string> = {
    'a leak': 'leak',
    'slow queries': 'saturation',
    'a pool too small for its load': 'saturation',
    'a database that refuses connections': 'unreachable',
    'a request waiting on itself': 'self-deadlock',
  };
  const servers = db === undefined ? ['PostgreSQL'] : ['PostgreSQL', 'MariaDB'];
  for (const server of servers) {
    t.same(Object.fromEntries(rows.map((row) => [row.cause, row[server]])), expected, `${server}: each cause, its verdict`);
  }
  const said = (cause: string, server: string) => rows.find((row) => row.cause === cause)![`${server} says`]!;
  for (const server of servers) {
    t.match(said('a leak', server), /A connection leak: /, `${server}: the leak is named in the error`);
    t.match(said('a pool too small for its load', server), /Too small for this load, not a leak: .*about \d+ connections would have served it/, `${server}: with the size that would serve it`);
    t.match(said('a database that refuses connections', server), /the database is unreachable \(ECONNREFUSED\)/, `${server}: the driver's own cause`);
    t.match(said('a request waiting on itself', server), /A self-deadlock: /);
  }
});
