/**
 * The MariaDB server the MySQL-family tests run against: `.ci/mariadb` installs and
 * starts one on loopback and these variables name it. Without one, tests skip with
 * how to get one; in CI (CI=true) a missing server fails the run.
 */
import type { Test } from 'tap';

export interface MariadbConfig {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

const howTo = 'start one with `sudo bash .ci/mariadb` (installs mariadb-server with apt and prints the variables), then set POOLWATCH_MYSQL_HOST and friends';

/** The server's config, or undefined after skipping `t` (outside CI) when there is none. */
export function mariadbConfig(t: Test): MariadbConfig | undefined {
  const env = process.env;
  if (env.POOLWATCH_MYSQL_HOST === undefined) {
    if (env.CI === 'true') throw new Error(`CI needs a MariaDB server for this test: ${howTo}`);
    t.skip(`no MariaDB server: ${howTo}`, () => {});
    return undefined;
  }
  return {
    host: env.POOLWATCH_MYSQL_HOST,
    port: Number(env.POOLWATCH_MYSQL_PORT ?? 3306),
    user: env.POOLWATCH_MYSQL_USER ?? 'poolwatch',
    // .ci/mariadb's default; distinctive, as the secrecy tests search every output for it.
    password: env.POOLWATCH_MYSQL_PASSWORD ?? 'pw-Sec7et-mariadb',
    database: env.POOLWATCH_MYSQL_DATABASE ?? 'poolwatch_test',
  };
}
