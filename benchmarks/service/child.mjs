// One benchmarked service in a process of its own, so that its CPU time, GC time and
// allocation are measured apart from the load generator's. Started by harness.mjs with
// BENCH_SERVICE (JSON: driver, mode, db, tablePrefix) in its environment; answers the
// parent's IPC messages `{ id, type }` with `{ id, ... }`.
//
// Modes: pg `raw`, `control` (a second raw service: the noise control), `default`
// (watch(pool)), `preload` (no watch(): started with --import poolwatch/register), `scope`
// (default + expressScope()), `always`, `never`, `lease` (default, and the transfer route
// borrows with lease(pool, fn)), `leaks` (the leak
// measurement: a low threshold, the request scope, the report routes);
// mariadb `raw`, `control`, `leakDetection` (mariadb's own leakDetectionTimeout), `poolwatch`.
import { GCProfiler, getHeapStatistics } from 'node:v8';

const { driver, mode, db, tablePrefix } = JSON.parse(process.env.BENCH_SERVICE);
const max = 10;
// The unwatched services never load poolwatch: nothing of it may run in the baseline.
const unwatched = ['raw', 'control', 'leakDetection'].includes(mode);
const { detectorOf, watch, lease } = unwatched ? { detectorOf: () => undefined } : await import('poolwatch');
const { expressScope } = unwatched ? {} : await import('poolwatch/http');

// Reports cross the IPC channel as plain JSON: only what leaks.mjs judges them on.
const reports = [];
function plain(report) {
  return {
    kind: report.kind,
    callSite: report.callSite ?? null,
    route: report.context?.route ?? null,
    heldMs: report.heldMs,
    noStack: report.format().includes('no stack was captured'),
  };
}

async function pgService() {
  const { default: pg } = await import('pg');
  const { createApp } = await import('./pg-app.mjs');
  const pool = new pg.Pool({ ...db, max });
  const middleware = [];
  if (mode === 'default' || mode === 'lease') watch(pool);
  else if (mode === 'preload') {
    // The preload watched it when it was made.
    if (detectorOf(pool) === undefined) throw new Error('the preload did not watch the pool');
  }
  else if (mode === 'scope') {
    watch(pool);
    middleware.push(expressScope());
  } else if (mode === 'always' || mode === 'never') watch(pool, { stacks: mode });
  else if (mode === 'leaks') {
    watch(pool, { leakThresholdMs: 100, onLeak: (report) => reports.push(plain(report)) });
    middleware.push(expressScope());
  } else if (mode !== 'raw' && mode !== 'control' && mode !== 'preload') throw new Error(`unknown pg service mode "${mode}"`);
  return { pool, app: createApp(pool, { middleware, reports: mode === 'leaks', lease: mode === 'lease' ? lease : undefined }), end: () => pool.end() };
}

async function mariadbService() {
  const { default: mariadb } = await import('mariadb');
  const { createApp, tableNames } = await import('./mariadb-app.mjs');
  const config = { ...db, connectionLimit: max };
  if (mode === 'leakDetection') config.leakDetectionTimeout = 30_000;
  else if (!['raw', 'control', 'poolwatch'].includes(mode)) throw new Error(`unknown mariadb service mode "${mode}"`);
  const pool = mariadb.createPool(config);
  if (mode === 'poolwatch') watch(pool);
  return { pool, app: createApp(pool, tableNames(tablePrefix)), end: () => pool.end() };
}

// Per round: CPU time of the whole process, and GC time and bytes allocated on the JS heap.
// Allocated = used-heap growth over the round + what each GC freed (used before − after).
let round;
function begin() {
  const profiler = new GCProfiler();
  profiler.start();
  round = { profiler, cpu: process.cpuUsage(), usedHeap: getHeapStatistics().used_heap_size };
}
function end() {
  const { statistics } = round.profiler.stop();
  const cpu = process.cpuUsage(round.cpu);
  let gcUs = 0;
  let freed = 0;
  for (const gc of statistics) {
    gcUs += gc.cost;
    freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
  }
  const allocBytes = getHeapStatistics().used_heap_size - round.usedHeap + freed;
  round = undefined;
  return { cpuUs: cpu.user + cpu.system, gcUs, allocBytes, gcCount: statistics.length };
}

const service = driver === 'pg' ? await pgService() : await mariadbService();
const server = service.app.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }));

process.on('message', async ({ id, type }) => {
  try {
    let answer = {};
    if (type === 'begin') begin();
    else if (type === 'end') answer = end();
    else if (type === 'stats') answer = { stats: detectorOf(service.pool)?.stats() ?? null };
    else if (type === 'reports') answer = { reports: reports.splice(0) };
    else if (type === 'close') {
      detectorOf(service.pool)?.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await service.end();
      process.send({ id }, () => process.exit(0));
      return;
    } else throw new Error(`unknown message type "${type}"`);
    process.send({ id, ...answer });
  } catch (error) {
    process.send({ id, error: error.stack ?? String(error) });
  }
});
process.on('disconnect', () => process.exit(1));
