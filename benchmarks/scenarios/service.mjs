// DESIGN.md's headline: a real service. An Express 5 app on a pg.Pool of 10 over embedded
// PostgreSQL (service/pg-app.mjs), each variant in a process of its own started once for
// the whole run, loaded by autocannon with 50 connections, so the pool is saturated at
// times. A cycle is one request: the runner's time per cycle is the inverse of throughput.
//
// Budgets are DESIGN.md's throughput floors as time ceilings (1 / floor); CPU per request
// ≤ 1.05× for the default is a row of budgets.mjs on the `cpuUs` figure. Each round also
// brings the service's CPU time, GC time and bytes allocated (measured in the child
// around the round) and autocannon's p99 latency.
import pg from 'pg';
import { schema } from '../service/pg-app.mjs';
import { load, mixedRequests, startService } from '../service/harness.mjs';
import { startPostgres } from '../service/postgres.mjs';

export const connections = 50;
// `lease`: the default, with the transfer route written with lease(pool, fn): what lease() costs where users pay (no budget).
const modes = ['raw', 'control', 'default', 'preload', 'scope', 'always', 'never', 'lease'];
const watched = ['default', 'preload', 'scope', 'always', 'never', 'lease'];

export const serviceMetrics = {
  cpuUs: { label: 'CPU', unit: 'µs/req', digits: 1 },
  gcUs: { label: 'GC', unit: 'µs/req', digits: 1 },
  allocBytes: { label: 'allocated', unit: 'B/req', digits: 0 },
  p99Ms: { label: 'p99 latency', unit: 'ms', perCycle: false, digits: 0 },
};

/**
 * One round against the service of `mode`: `n` requests, with the service's own figures
 * measured around them. A round far past its expected second or two means a stuck service.
 */
export async function serviceRound(state, mode, n) {
  const service = state.services[mode];
  try {
    await service.call('begin');
    const result = await load(service.port, { connections, amount: n, requests: mixedRequests(), capMs: 60_000 });
    const { cpuUs, gcUs, allocBytes } = await service.call('end');
    return { cpuUs, gcUs, allocBytes, p99Ms: result.latency.p99 };
  } catch (error) {
    state.failed = true;
    throw error;
  }
}

/** Throws unless every watched service tracked leases and none is left open. */
export async function checkTracked(scenarioName, state, names) {
  // After a failed round leases may be open mid-request: that round's error is the one to show.
  if (state.failed) return;
  for (const name of names) {
    const { stats } = await state.services[name].call('stats');
    const pool = stats && Object.values(stats)[0];
    if (!pool || pool.acquired === 0 || pool.open !== 0) {
      throw new Error(`${scenarioName}: service '${name}' was not tracked as expected: ${JSON.stringify(pool ?? stats)}`);
    }
  }
}

export async function closeAll(services) {
  const results = await Promise.allSettled(Object.values(services).map((s) => s.close()));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

export async function seedPostgres(config) {
  const client = new pg.Client(config);
  await client.connect();
  try {
    await client.query(schema);
  } finally {
    await client.end();
  }
}

export default {
  name: 'service',
  description: `Express 5 service on pg.Pool max 10 (embedded PostgreSQL), autocannon with ${connections} connections: user lookups, order lists, transfers in a transaction; budgets are throughput ≥ 0.97× (default), ≥ 0.95× (request scope), ≥ 0.93× ('always'), as time ratios`,
  baseline: 'raw',
  // The preload watches the same pool the same way as watch(): the same floor.
  budgets: { default: 1 / 0.97, preload: 1 / 0.97, scope: 1 / 0.95, always: 1 / 0.93 },
  metrics: serviceMetrics,
  // ~2,500–3,500 requests/s raw on a 2-core VM (service, load generator and database share
  // the cores). Short rounds, many of them: on a shared machine throughput drifts by 2× within
  // a minute, and ratios within a round (6 runs of ~1 s) see less of that drift than rounds
  // of 6 × 2.5 s did (per-round ratios of two raw services from 0.86 to 1.84). Full ~3 min,
  // quick ~1.5 min. 7 variants: an odd count balances over 14 rounds (see runner.mjs order()),
  // so 28 rounds are two full cycles, 14 one.
  cycles: { default: 3_000, quick: 1_500 },
  // Per pass (the runner makes two). A fresh service spends its first ~4,000 requests at
  // twice its steady CPU per request, compiling: rounds must not see that.
  warmupCycles: { default: 5_000, quick: 3_000 },
  rounds: { default: 28, quick: 14 },

  async setup() {
    const server = await startPostgres();
    const services = {};
    try {
      await seedPostgres(server.config);
      for (const mode of modes) services[mode] = await startService({ driver: 'pg', mode, db: server.config });
    } catch (error) {
      for (const service of Object.values(services)) service.kill();
      await server.stop();
      throw error;
    }
    return { server, services };
  },

  variants: modes.map((mode) => ({ name: mode, run: (state, n) => serviceRound(state, mode, n) })),

  async teardown(state) {
    const { server, services } = state;
    try {
      await checkTracked('service', state, watched);
    } finally {
      try {
        await closeAll(services);
      } finally {
        await server.stop();
      }
    }
  },
};
