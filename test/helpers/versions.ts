/**
 * The version matrix: each adapter test runs once against the oldest release of its
 * library that poolwatch supports and once against the newest (the library's own
 * devDependency). Each list loads its copies on first call, so a test file loads only
 * its own libraries.
 *
 * The oldest pool libraries are the dependencies of test/helpers/oldest/package.json
 * (a `file:` devDependency), which npm installs in test/helpers/oldest/node_modules: each
 * copy sits in a folder named as the library, as in an app, so poolwatch tells its frames
 * from the app's (an npm alias would put them in node_modules/mysql2-oldest/, which it
 * cannot), and old pg loads the old pg-pool beside it. knex is the `knex-oldest` alias,
 * so that it loads the project's own drivers (pg, mysql2).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as GenericPool from 'generic-pool';
import type * as Tarn from 'tarn';
import type * as Mariadb from 'mariadb';
import type Mysql2 from 'mysql2';
import type Mysql2Promise from 'mysql2/promise';
import type Pg from 'pg';
import type CreateKnex from 'knex';
import type Postgres from 'postgres';

type Require = ReturnType<typeof createRequire>;
type Age = 'oldest' | 'newest';

const newest: Require = createRequire(__filename);
const oldest: Require = createRequire(join(__dirname, 'oldest', 'package.json'));

/** The installed version of package `name` as `from` resolves it (an alias is named by its alias). */
function versionOf(from: Require, name: string): string {
  // Up from its entry point: some libraries' exports do not list `./package.json`.
  let dir = dirname(from.resolve(name));
  while (!dir.endsWith(`${sep}node_modules${sep}${name}`)) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package folder for ${name}`);
    dir = parent;
  }
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The oldest then the newest copy of a library, each labelled `<label(age)> (<age>)`, e.g. `pg 8.0.3 (oldest)`. */
function matrix<T extends object>(label: (age: Age) => string, load: (age: Age) => T): () => Array<T & { label: string }> {
  let made: Array<T & { label: string }> | undefined;
  return () => (made ??= (['oldest', 'newest'] as const).map((age) => ({ label: `${label(age)} (${age})`, ...load(age) })));
}

/** A pool library: loaded from test/helpers/oldest for the oldest, from the project for the newest. */
const from = (age: Age): Require => (age === 'oldest' ? oldest : newest);
const named = (library: string) => (age: Age) => `${library} ${versionOf(from(age), library)}`;

/** pg-pool's constructor: pg.Pool without pg's Client bound in (pg-pool ships no types). */
export type PgPoolClass = new (options: Pg.PoolConfig, Client: typeof Pg.Client) => Pg.Pool;

/** pg, and the pg-pool its pg.Pool extends (which the test also builds pools with directly). */
export const pgVersions = matrix(
  (age) => `${named('pg')(age)} with pg-pool ${versionOf(from(age), 'pg-pool')}`,
  (age) => ({ pg: from(age)('pg') as typeof Pg, PgPool: from(age)('pg-pool') as PgPoolClass }),
);

/** mysql2's callback API and its promise API (`mysql2/promise`), of one copy. */
export const mysql2Versions = matrix(named('mysql2'), (age) => ({
  mysql: from(age)('mysql2') as typeof Mysql2,
  mysqlPromise: from(age)('mysql2/promise') as typeof Mysql2Promise,
}));

export const mariadbVersions = matrix(named('mariadb'), (age) => ({ mariadb: from(age)('mariadb') as typeof Mariadb }));

export const genericPoolVersions = matrix(named('generic-pool'), (age) => ({ genericPool: from(age)('generic-pool') as typeof GenericPool }));

export const tarnVersions = matrix(named('tarn'), (age) => ({ tarn: from(age)('tarn') as typeof Tarn }));

/**
 * postgres.js's CommonJS build (cjs/, what require() loads), and the ES module build of the
 * same copy (src/, what import loads: another copy of its code), imported on request.
 */
export const postgresVersions = matrix(named('postgres'), (age) => {
  // Its main is <copy>/cjs/src/index.js; the ES module build is <copy>/src/index.js.
  const esm = join(dirname(from(age).resolve('postgres')), '..', '..', 'src', 'index.js');
  return {
    postgres: from(age)('postgres') as typeof Postgres,
    importEsm: async () => ((await import(pathToFileURL(esm).href)) as { default: typeof Postgres }).default,
  };
});

/** knex's factory. Either copy loads the project's drivers (pg, mysql2) and the tarn its range resolves to. */
const knexName = (age: Age) => (age === 'oldest' ? 'knex-oldest' : 'knex');
export const knexVersions = matrix(
  (age) => `knex ${versionOf(newest, knexName(age))}`,
  (age) => ({ createKnex: newest(knexName(age)) as KnexFactory }),
);

/** What knex exports: the function that makes a knex instance. */
export type KnexFactory = typeof CreateKnex;
