import t from 'tap';
import { startPostgres, type PostgresConfig } from '../helpers/postgres.js';
import { esmApp, fixture, freshDatabase, headlines, leakSite, reportsBesidesSlow, run, runUntilLeakAt, thresholdMs, withoutSlow } from '../helpers/real.js';

// graphile-worker, from npm, as an ES module app run with `node --import poolwatch/register`.
// It holds one connection of the app's pool for LISTEN from run() to stop(), by design:
// seconds here, many times the threshold. A LISTENing connection is not idle, so that
// hold is no leak.
const app = fixture('graphile-worker.mjs');
t.setTimeout(120_000);

// One server for the file: each run gets a database of its own.
let db: PostgresConfig;
t.before(async () => {
  db = await startPostgres(t);
});

t.test('graphile-worker under the preload runs every job as without it, and its LISTEN connection is not reported', async (t) => {
  const raw = await run(t, { script: app, env: { DATABASE_URL: await freshDatabase(db, 'worker_raw') } });
  t.equal(raw.code, 0, `the workload runs without poolwatch${raw.code === 0 ? '' : `\n${raw.stderr}`}`);
  t.match(JSON.parse(raw.stdout), { succeeded: 11, flakyAttempts: 2, rows: { count: 9, sum: 36, followed_up: 2 }, jobsLeft: 0 }, 'every job ran, the flaky one on its retry');

  const watched = await run(t, { script: app, env: { DATABASE_URL: await freshDatabase(db, 'worker_watched') } }, esmApp);
  t.equal(watched.code, raw.code, 'the same exit code');
  t.equal(watched.stdout, raw.stdout, 'the same jobs, attempts, rows and log counts');
  t.same(reportsBesidesSlow(watched.stderr), [], `nothing from poolwatch at a ${thresholdMs} ms threshold: no leak (the LISTEN connection included), no misuse, no degraded capability`);
  t.equal(withoutSlow(watched.stderr), raw.stderr, 'the same stderr');
});

t.test('a graphile-worker task that keeps a connection is reported at its line, and only it', async (t) => {
  const site = leakSite(app);
  const seen = await runUntilLeakAt(t, { script: app, env: { DATABASE_URL: await freshDatabase(db, 'worker_leak'), LEAK: '1' } }, esmApp, site);
  t.ok(seen.line, `a leak report names ${site}: ${seen.ended ?? ''}`, { poolwatch: headlines(seen.stderr) });
  if (seen.line !== undefined) t.comment(seen.line);
  t.same(seen.leaks, seen.line === undefined ? [] : [seen.line], 'no other connection is reported: not the LISTEN one', { poolwatch: headlines(seen.stderr) });
});
