import t from 'tap';
import { startPostgres, type PostgresConfig } from '../helpers/postgres.js';
import { cjsApp, fixture, freshDatabase, headlines, leakSite, reportsBesidesSlow, run, runUntilLeakAt, thresholdMs, withoutSlow } from '../helpers/real.js';

// pg-boss, from npm, as a CommonJS app run with `node -r poolwatch/register`: its own pool
// (polling, completing, its maintenance) and the app's pool that the job handler uses.
const app = fixture('pg-boss.cjs');
t.setTimeout(120_000);

// One server for the file: each run gets a database of its own.
let db: PostgresConfig;
t.before(async () => {
  db = await startPostgres(t);
});

t.test('pg-boss under the preload works every job as without it, and poolwatch reports nothing', async (t) => {
  const raw = await run(t, { script: app, env: { DATABASE_URL: await freshDatabase(db, 'boss_raw') } });
  t.equal(raw.code, 0, `the workload runs without poolwatch${raw.code === 0 ? '' : `\n${raw.stderr}`}`);
  t.match(JSON.parse(raw.stdout), { sent: 12, rows: { count: 12, sum: 78 } }, 'every job was sent, worked and recorded');

  const watched = await run(t, { script: app, env: { DATABASE_URL: await freshDatabase(db, 'boss_watched') } }, cjsApp);
  t.equal(watched.code, raw.code, 'the same exit code');
  t.equal(watched.stdout, raw.stdout, 'the same jobs, states, outputs and rows');
  // pg-boss installs its schema in one statement that may run past the threshold: that is slow, not leaked.
  t.same(reportsBesidesSlow(watched.stderr), [], `nothing from poolwatch at a ${thresholdMs} ms threshold but slow queries: no leak, no misuse, no degraded capability`);
  t.equal(withoutSlow(watched.stderr), raw.stderr, 'the same stderr');
});

t.test('a pg-boss job handler that keeps a connection is reported at its line', async (t) => {
  const site = leakSite(app);
  const seen = await runUntilLeakAt(t, { script: app, env: { DATABASE_URL: await freshDatabase(db, 'boss_leak'), LEAK: '1' } }, cjsApp, site);
  t.ok(seen.line, `a leak report names ${site}: ${seen.ended ?? ''}`, { poolwatch: headlines(seen.stderr) });
  if (seen.line !== undefined) t.comment(seen.line);
  t.same(seen.leaks, seen.line === undefined ? [] : [seen.line], 'no other connection is reported', { poolwatch: headlines(seen.stderr) });
});
