// The leak reports a real service gets (DESIGN.md: "every leak report names the app's
// acquiring line; no report when a client disconnects mid-request"). A measurement, not
// timed: run.mjs calls `measure`.
//
// The pg service of scenarios/service.mjs, watched with default options but a 100 ms
// threshold, in Express's request scope, with two more routes (service/pg-app.mjs):
// GET /report/:id leaks on its error path (1 request in 20 is /report/bad: a 500 without
// releasing; the client goes back ~300 ms later), and GET /export/:user holds its
// connection while it streams. Two phases of a few seconds under autocannon: `busy`
// (8 connections at 200 requests/s: the pool busy, full only at the start of each
// second's burst) and `saturated`
// (50 connections, as fast as they go). During each, a plain node:http client requests
// /export/:user a few hundred times and hangs up as soon as the headers arrive: the
// route holds its connection then, and will release it a moment later, as it should.
//
// Every `leak` report crosses from the service as plain JSON (kind, callSite, route,
// whether format() says no stack was captured). A report from the export route is a
// report caused by a disconnect; every other report should name the leaking line.
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { load, startService } from '../service/harness.mjs';
import { startPostgres } from '../service/postgres.mjs';
import { seedPostgres } from './service.mjs';

const appFile = fileURLToPath(new URL('../service/pg-app.mjs', import.meta.url));
const exportRoute = '/export/:user';

/** The line of pg-app.mjs the reports must name: the one marked `leak-site`. */
function leakSiteLine() {
  const lines = readFileSync(appFile, 'utf8').split('\n');
  const index = lines.findIndex((line) => line.includes('// leak-site'));
  if (index === -1) throw new Error('leaks: no line marked "leak-site" in service/pg-app.mjs');
  return index + 1;
}

/** Per connection, 20 requests: 19 healthy ones and /report/bad, which leaks. */
function leakyRequests() {
  let k = 0;
  const next = () => (k = (k % 999) + 1);
  const healthy = (i) => ({
    method: 'GET',
    setupRequest: (req) => ({ ...req, path: i % 2 === 0 ? `/report/${next()}` : `/users/${next()}` }),
  });
  return [...Array.from({ length: 19 }, (_, i) => healthy(i)), { method: 'GET', path: '/report/bad' }];
}

/** `count` requests to the export route, `concurrency` at a time, each dropped on its headers. */
async function hangUps(port, count, concurrency) {
  let left = count;
  let dropped = 0;
  const one = (user) =>
    new Promise((resolve, reject) => {
      let answered = false;
      const req = request({ host: '127.0.0.1', port, path: `/export/${user}`, agent: false }, (res) => {
        answered = true;
        res.on('error', () => {});
        dropped++;
        req.destroy();
        resolve();
      });
      // Once answered, the error is our own hang-up; before, the service failed the request.
      req.on('error', (error) => (answered ? undefined : reject(error)));
      req.end();
    });
  const worker = async () => {
    while (left > 0) await one(1 + (left-- % 1000));
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return dropped;
}

function classify(reports, leakLine) {
  const names = (r) => {
    const match = /(?:^|[\\/])service[\\/]pg-app\.mjs:(\d+):\d+$/.exec(r.callSite ?? '');
    return match !== null && Number(match[1]) === leakLine;
  };
  const fromDisconnects = reports.filter((r) => r.route === exportRoute);
  const others = reports.filter((r) => r.route !== exportRoute);
  const byKind = (list) => list.reduce((acc, r) => ({ ...acc, [r.kind]: (acc[r.kind] ?? 0) + 1 }), {});
  return {
    reports: others.length,
    named: others.filter(names).length,
    share: others.length === 0 ? NaN : others.filter(names).length / others.length,
    withoutStack: others.filter((r) => r.noStack).length,
    kinds: byKind(others),
    routes: others.reduce((acc, r) => ({ ...acc, [r.route ?? '(none)']: (acc[r.route ?? '(none)'] ?? 0) + 1 }), {}),
    disconnectReports: fromDisconnects.length,
    disconnectKinds: byKind(fromDisconnects),
    // A few, to see what a report that does not name the line said instead.
    unnamedSamples: others.filter((r) => !names(r)).slice(0, 3),
  };
}

/** Runs `work` while sampling the pool every 20 ms: the share of samples with all connections leased. */
async function withFullShare(service, work) {
  let full = 0;
  let samples = 0;
  let done = false;
  const sampler = (async () => {
    while (!done) {
      const pool = Object.values((await service.call('stats')).stats)[0];
      samples++;
      if (pool.open >= pool.capacity) full++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    return { result: await work(), fullShare: samples === 0 ? NaN : full / samples };
  } finally {
    done = true;
    await sampler;
  }
}

async function phase(service, leakLine, { name, connections, overallRate, amount, hangUpCount }) {
  const { result: [traffic, dropped], fullShare } = await withFullShare(service, () => Promise.all([
    // Bounded by a count, not a duration: at the end of a duration autocannon hangs up on
    // the requests in flight, which would be disconnects of its own among the leaks.
    load(service.port, {
      connections,
      amount,
      ...(overallRate ? { overallRate } : {}),
      requests: leakyRequests(),
      capMs: 120_000,
      allowStatus: (code) => code === 200 || code === 500,
    }),
    hangUps(service.port, hangUpCount, 4),
  ]));
  // The leaked clients go back 300 ms after their request, the exports a moment after the hang-up.
  await new Promise((resolve) => setTimeout(resolve, 700));
  const { reports } = await service.call('reports');
  const { stats } = await service.call('stats');
  const pool = Object.values(stats)[0];
  if (pool.open !== 0) throw new Error(`leaks: ${pool.open} leases still open after the ${name} phase`);
  const leakedRequests = Number(traffic.statusCodeStats?.['500']?.count ?? 0);
  return { name, connections, overallRate: overallRate ?? null, seconds: traffic.duration, requests: traffic.total, poolFullShare: fullShare, leakedRequests, disconnects: dropped, ...classify(reports, leakLine) };
}

export default {
  name: 'leaks',
  description: 'Express 5 service on pg.Pool max 10, default options with a 100 ms threshold and expressScope(); one route in 20 requests leaks on its error path, clients hang up mid-request on another',
  // Requests per phase: ~4 s (quick ~3 s) at the busy phase's rate, and at the ~500
  // requests/s the saturated service manages on a 2-core VM while leaked clients hold part
  // of the pool. Whole cycles of 20 per connection, so exactly 1 request in 20 leaks.
  amount: { default: { busy: 800, saturated: 2_000 }, quick: { busy: 640, saturated: 1_000 } },
  hangUps: { default: 150, quick: 60 },

  async measure({ quick, log = () => {} }) {
    const mode = quick ? 'quick' : 'default';
    const leakLine = leakSiteLine();
    const server = await startPostgres();
    let service;
    try {
      await seedPostgres(server.config);
      service = await startService({ driver: 'pg', mode: 'leaks', db: server.config });
      // Healthy traffic first, so the phases see a warmed-up service that has spent poolwatch's
      // starting stack credit, as a service running for a while has.
      await load(service.port, { connections: 8, amount: 3_000, requests: leakyRequests().slice(0, 19), capMs: 60_000 });
      const { reports: warmupReports } = await service.call('reports');
      const phases = [];
      for (const settings of [
        { name: 'busy', connections: 8, overallRate: 200 },
        { name: 'saturated', connections: 50 },
      ]) {
        phases.push(await phase(service, leakLine, { ...settings, amount: this.amount[mode][settings.name], hangUpCount: this.hangUps[mode] }));
        log(`  leaks: ${settings.name} phase done`);
      }
      return { name: this.name, description: this.description, leakSite: `benchmarks/service/pg-app.mjs:${leakLine}`, warmupReports: warmupReports.length, phases };
    } finally {
      try {
        await service?.close();
      } finally {
        await server.stop();
      }
    }
  },
};
