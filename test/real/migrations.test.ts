import t from 'tap';
import { startPostgres, type PostgresConfig } from '../helpers/postgres.js';
import {
  binOf,
  cliUnderImport,
  cliUnderRequire,
  fixture,
  freshDatabase,
  headlines,
  reportsBesidesSlow,
  rowsOf,
  run,
  slowLines,
  thresholdMs,
  withoutSlow,
  type Preload,
} from '../helpers/real.js';

// Migration tools from npm, run by their own CLIs as a user runs them in a deploy step,
// with `NODE_OPTIONS="--import poolwatch/register"` (or `-r`). A migration run holds one
// connection from start to end by design (graphile-migrate's also holds its advisory
// lock): here past the threshold, in long steps. A connection busy in a query past its
// threshold is slow, not leaked: that is how such a hold is told apart.
t.setTimeout(120_000);

let db: PostgresConfig;
t.before(async () => {
  db = await startPostgres(t);
});

interface Tool {
  readonly name: string;
  readonly script: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly preload: Preload;
  /** What the migrations made, the tool's own bookkeeping included, with no timestamps. */
  readonly state: string;
  /** Set when poolwatch cannot see this tool's connections yet: why. */
  readonly unwatched?: string;
}

const schema = (table: string) => `
  select (select json_agg(c order by c.table_name, c.column_name) from (
            select table_name, column_name, data_type, is_nullable from information_schema.columns where table_schema = 'public'
          ) c) as columns,
         (select json_agg(indexname order by indexname) from pg_indexes where schemaname = 'public') as indexes,
         (select count(*)::int from ${table}) as accounts`;

const tools: readonly Tool[] = [
  {
    name: 'graphile-migrate migrate (advisory lock)',
    script: binOf('graphile-migrate'),
    args: ['migrate'],
    cwd: fixture('graphile-migrate'),
    preload: cliUnderImport,
    state: `${schema('real_migrate_accounts')}, (select json_agg(json_build_array(filename, hash, previous_hash) order by filename) from graphile_migrate.migrations) as migrations`,
  },
  {
    name: 'typeorm migration:run',
    script: binOf('typeorm'),
    args: ['migration:run', '-d', 'datasource.cjs'],
    cwd: fixture('typeorm'),
    preload: cliUnderRequire,
    state: `${schema('real_typeorm_accounts')}, (select json_agg(json_build_array(timestamp, name) order by id) from real_typeorm_migrations) as migrations`,
  },
  {
    name: 'knex migrate:latest',
    script: binOf('knex'),
    args: ['--knexfile', 'knexfile.cjs', 'migrate:latest'],
    cwd: fixture('knex-migrate'),
    preload: cliUnderRequire,
    state: `${schema('real_knex_accounts')}, (select json_agg(json_build_array(name, batch) order by id) from real_knex_migrations) as migrations`,
    unwatched: "knex's migrator queries through knex.withUserParams(), whose client clone poolwatch does not watch",
  },
];

let n = 0;
for (const tool of tools) {
  t.test(`${tool.name} under the preload migrates as without it, and its connection's long hold is not reported as a leak`, async (t) => {
    const id = ++n;
    const program = (url: string) => ({ script: tool.script, args: tool.args, cwd: tool.cwd, env: { DATABASE_URL: url } });

    const rawUrl = await freshDatabase(db, `migrate_raw_${id}`);
    const raw = await run(t, program(rawUrl));
    t.equal(raw.code, 0, `the migrations run without poolwatch${raw.code === 0 ? '' : `\n${raw.stdout}${raw.stderr}`}`);
    const rawState = await rowsOf(rawUrl, tool.state);
    t.match(rawState, [{ accounts: 50, migrations: { length: 3 } }], 'all three migrations ran');

    const watchedUrl = await freshDatabase(db, `migrate_watched_${id}`);
    const watched = await run(t, program(watchedUrl), tool.preload);
    t.equal(watched.code, raw.code, 'the same exit code');
    t.equal(watched.stdout, raw.stdout, "the same output of the tool's own");
    t.same(await rowsOf(watchedUrl, tool.state), rawState, "the same tables, columns, indexes, rows and the tool's own migration records");
    t.same(reportsBesidesSlow(watched.stderr), [], `nothing from poolwatch at a ${thresholdMs} ms threshold but slow queries: no leak, no misuse, no degraded capability`);
    t.equal(withoutSlow(watched.stderr), raw.stderr, 'the same stderr');
    // The hold was seen: the migrations' connection, busy past the threshold, is slow.
    t.not(slowLines(watched.stderr).length, 0, 'the long migration step is reported as slow, not leaked', {
      poolwatch: headlines(watched.stderr),
      ...(tool.unwatched === undefined ? {} : { todo: tool.unwatched }),
    });
  });
}
