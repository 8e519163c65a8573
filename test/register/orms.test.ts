import t, { type Test } from 'tap';
import { execFile, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { mariadbConfig } from '../helpers/mariadb.js';
import { startPostgres } from '../helpers/postgres.js';

// The ORM examples run as a user would run them, under the preload, with no poolwatch
// import of their own. The preload is loaded by name: the package's own build (npm test
// builds first).
const root = join(__dirname, '..', '..');
// Some 30 app starts (ORMs load slowly, more so under coverage): past tap's 30 s default.
t.setTimeout(10 * 60_000);
const orms = join(root, 'examples', 'orm');

// Settings from the machine's own environment (and tap's loaders) must not change what the examples see.
const clean: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('POOLWATCH_') && key !== 'NODE_OPTIONS'));

type Scheme = 'postgres' | 'mysql' | 'mariadb';

/**
 * Each example, and the URL schemes it is run with. On MariaDB, `mariadb://` is run too
 * where it picks another driver or dialect than `mysql://` does. Each example keeps to
 * its own table, and the runs on one server go one at a time: a leaked transaction's row
 * locks end with its process.
 */
const examples: readonly { file: string; schemes: readonly Scheme[]; tables: readonly string[] }[] = [
  { file: 'prisma/app.mjs', schemes: ['postgres'], tables: ['"Order"'] },
  { file: 'typeorm.mjs', schemes: ['postgres', 'mysql', 'mariadb'], tables: ['typeorm_orders'] },
  { file: 'drizzle.mjs', schemes: ['postgres', 'mysql'], tables: ['drizzle_orders'] },
  { file: 'kysely.mjs', schemes: ['postgres', 'mysql'], tables: ['kysely_orders'] },
  { file: 'sequelize.mjs', schemes: ['postgres', 'mysql', 'mariadb'], tables: ['sequelize_orders'] },
  { file: 'mikro-orm.mjs', schemes: ['postgres'], tables: ['mikro_orders'] },
  { file: 'objection.mjs', schemes: ['postgres', 'mysql'], tables: ['objection_orders'] },
];

const appFiles = [...readdirSync(orms).filter((file) => file.endsWith('.mjs')), 'prisma/app.mjs'];

/** `examples/orm/<file>:<line>:` of the line marked `// LEAK`, as the report's call site begins. */
function leakSite(file: string): string {
  const lines = readFileSync(join(orms, file), 'utf8').split('\n');
  const index = lines.findIndex((line) => line.trimEnd().endsWith('// LEAK'));
  if (index === -1) throw new Error(`no line ends with // LEAK in examples/orm/${file}`);
  return `${relative(root, join(orms, file))}:${index + 1}:`;
}

const reportLine = /^poolwatch: Connection leak in pool .*$/m;
// The preload's own word that this run cannot report: a pool it could not watch, or poolwatch off.
const cannotReport = /^poolwatch: could not .*$|^poolwatch: .*poolwatch is off.*$/m;

// Far longer than an example needs to start, connect and pass the 200 ms threshold (about
// a second); it only bounds how long a run with no report at all takes to fail.
const reportTimeoutMs = 30_000;

/**
 * How the child writes its stacks. First as `node --import poolwatch/register app.mjs`
 * does; tap's process-info hook turns source maps on in every process a test spawns, so
 * that run turns them off again before the preload loads. Then with --enable-source-maps,
 * as compiled TypeScript apps often run: an ORM's frames then point at its own sources.
 */
const modes = [
  { label: '', args: ['--import', 'data:text/javascript,process.setSourceMapsEnabled(false)'] },
  { label: ', --enable-source-maps', args: ['--enable-source-maps'] },
] as const;

interface Observed {
  /** The first report's first line, when one arrived. */
  line: string | undefined;
  stdout: string;
  stderr: string;
  /** Why no report arrived: the process ended, the preload said it cannot watch, or the timeout passed. */
  ended: string | undefined;
}

/**
 * Runs `examples/orm/<file>` under the preload until the first leak report's first line
 * is on its stderr, then kills it. Resolves with what it wrote; never rejects.
 */
function runUntilReport(t: Test, file: string, databaseUrl: string, nodeArgs: readonly string[]): Promise<Observed> {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'poolwatch/register', join(orms, file)], {
    cwd: root,
    env: { ...clean, DATABASE_URL: databaseUrl, POOLWATCH_LEAK_THRESHOLD_MS: '200', HOLD_MS: '120000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => void child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  let line: string | undefined;
  let ended: string | undefined;
  return new Promise((resolve) => {
    const stop = (why: string | undefined) => {
      if (line !== undefined || ended !== undefined) return;
      ended = why;
      clearTimeout(timer);
      child.kill('SIGKILL');
    };
    // Fails the test only: the child is killed and what it wrote is shown.
    const timer = setTimeout(() => stop(`no leak report within ${reportTimeoutMs} ms`), reportTimeoutMs);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (line !== undefined || ended !== undefined) return;
      const match = reportLine.exec(stderr);
      // The whole line: up to its newline.
      if (match !== null && stderr.length > match.index + match[0].length) {
        line = match[0];
        clearTimeout(timer);
        child.kill('SIGKILL');
      } else if (cannotReport.test(stderr)) {
        stop('the preload says it cannot watch this run');
      }
    });
    // After the kill, once its pipes are drained: all it wrote until then is in.
    child.on('close', (code, signal) => {
      stop(`the process ended (${code ?? signal}) before a leak report`);
      resolve({ line, stdout, stderr, ended });
    });
  });
}

async function checkExample(t: Test, file: string, databaseUrl: string, nodeArgs: readonly string[]): Promise<void> {
  const seen = await runUntilReport(t, file, databaseUrl, nodeArgs);
  // In the message, and again in the diagnostics, where its lines stay lines.
  const stderr = `\n--- child stderr ---\n${seen.stderr}--- end of child stderr ---`;
  const extra = { childStderr: seen.stderr, childStdout: seen.stdout };
  if (seen.line === undefined) {
    t.fail(`examples/orm/${file}: ${seen.ended}${stderr}`, extra);
    return;
  }
  t.comment(seen.line);
  const site = leakSite(file);
  // `acquired by transaction() at` where the app called a method other than the pool's acquire.
  const names = new RegExp(`\\(threshold 200 ms\\), acquired (by \\w+\\(\\) )?at ${site}`).test(seen.line);
  t.ok(names, `the report names the line marked // LEAK, ${site}${names ? '' : stderr}`, extra);
  t.equal(seen.stdout, '', `the preload writes nothing on stdout${seen.stdout === '' ? '' : stderr}`, extra);
}

t.test('no ORM example imports poolwatch: the preload alone watches their pools', async (t) => {
  t.same(
    appFiles.filter((file) => /(?:from|import|require)\s*\(?\s*['"]poolwatch(?:\/[^'"]*)?['"]/.test(readFileSync(join(orms, file), 'utf8'))),
    [],
  );
  t.same(
    appFiles.filter((file) => !examples.some((example) => example.file === file)),
    [],
    'every example in examples/orm is run below',
  );
});

t.test('PostgreSQL: each ORM example under the preload reports its leak at the app\'s line', async (t) => {
  // The Prisma client is generated, not kept: once, before its example runs.
  await promisify(execFile)(process.execPath, [join(orms, 'prisma', 'generate.mjs')], { cwd: root });
  const db = await startPostgres(t);
  const url = `postgres://${encodeURIComponent(db.user)}:${encodeURIComponent(db.password)}@${db.host}:${db.port}/${db.database}`;
  for (const { file } of examples.filter((example) => example.schemes.includes('postgres'))) {
    for (const { label, args } of modes) {
      await t.test(`examples/orm/${file}${label}`, (t) => checkExample(t, file, url, args));
    }
  }
});

t.test('MariaDB: each ORM example that supports it reports its leak at the app\'s line', async (t) => {
  const db = mariadbConfig(t);
  if (db === undefined) return;
  // Its tables go with the test; the server outlives it.
  t.teardown(async () => {
    const mysql = await import('mysql2/promise');
    const connection = await mysql.createConnection(db);
    const tables = examples.filter((example) => example.schemes.includes('mysql')).flatMap((example) => example.tables);
    await connection.query(`DROP TABLE IF EXISTS ${tables.join(', ')}`);
    await connection.end();
  });
  for (const { file, schemes } of examples) {
    for (const scheme of schemes.filter((scheme) => scheme !== 'postgres')) {
      const url = `${scheme}://${encodeURIComponent(db.user)}:${encodeURIComponent(db.password)}@${db.host}:${db.port}/${db.database}`;
      for (const { label, args } of modes) {
        await t.test(`examples/orm/${file} with ${scheme}://${label}`, (t) => checkExample(t, file, url, args));
      }
    }
  }
});
