// The peer row of DESIGN.md: the same service (service/mariadb-app.mjs) on a mariadb pool
// of 10, where the alternative to poolwatch is mariadb's own `leakDetectionTimeout`.
// Budget: poolwatch's default no slower than it (time ratio poolwatch / leakDetection ≤ 1,
// judged in budgets.mjs). Needs the MariaDB server named by the POOLWATCH_MYSQL_*
// variables (`.ci/mariadb` prints them); its tables go in that database under a per-run
// prefix, and are dropped at teardown.
import mariadb from 'mariadb';
import { dropSchema, schema, tableNames } from '../service/mariadb-app.mjs';
import { startService } from '../service/harness.mjs';
import { checkTracked, closeAll, connections, serviceMetrics, serviceRound } from './service.mjs';

const modes = ['raw', 'control', 'leakDetection', 'poolwatch'];

function serverConfig() {
  const env = process.env;
  if (!env.POOLWATCH_MYSQL_HOST) return undefined;
  return {
    host: env.POOLWATCH_MYSQL_HOST,
    port: Number(env.POOLWATCH_MYSQL_PORT ?? 3306),
    user: env.POOLWATCH_MYSQL_USER,
    password: env.POOLWATCH_MYSQL_PASSWORD,
    database: env.POOLWATCH_MYSQL_DATABASE,
  };
}

async function runAll(config, statements) {
  const conn = await mariadb.createConnection(config);
  try {
    for (const sql of statements) await conn.query(sql);
  } finally {
    await conn.end();
  }
}

export default {
  name: 'service-mariadb',
  description: `the same Express 5 service on a mariadb pool of 10, autocannon with ${connections} connections: mariadb's leakDetectionTimeout (30 s) vs poolwatch's default; budget poolwatch / leakDetection ≤ 1× time`,
  baseline: 'raw',
  metrics: serviceMetrics,
  // ~3,000 requests/s raw on a 2-core VM: full ~1.5 min, quick ~40 s. As in service.mjs,
  // short rounds; 4 variants: a Williams cycle is 4 rounds.
  cycles: { default: 3_000, quick: 2_000 },
  warmupCycles: { default: 5_000, quick: 3_000 },
  rounds: { default: 16, quick: 8 },

  /** Why the scenario cannot run here, if it cannot; in CI a missing server is an error instead. */
  skip() {
    if (serverConfig()) return undefined;
    const reason = 'no MariaDB server: POOLWATCH_MYSQL_HOST is not set (eval "$(sudo bash .ci/mariadb)")';
    if (process.env.CI === 'true') throw new Error(`service-mariadb: ${reason}`);
    return reason;
  },

  async setup() {
    const db = serverConfig();
    // Per run, so that two runs sharing the server (a developer's and CI's) never clash.
    const tablePrefix = `bench_${process.pid}_`;
    const tables = tableNames(tablePrefix);
    await runAll(db, [...dropSchema(tables), ...schema(tables)]);
    const services = {};
    try {
      for (const mode of modes) services[mode] = await startService({ driver: 'mariadb', mode, db, tablePrefix });
    } catch (error) {
      for (const service of Object.values(services)) service.kill();
      await runAll(db, dropSchema(tables));
      throw error;
    }
    return { db, tables, services };
  },

  variants: modes.map((mode) => ({ name: mode, run: (state, n) => serviceRound(state, mode, n) })),

  async teardown(state) {
    const { db, tables, services } = state;
    try {
      await checkTracked('service-mariadb', state, ['poolwatch']);
    } finally {
      try {
        await closeAll(services);
      } finally {
        await runAll(db, dropSchema(tables));
      }
    }
  },
};
