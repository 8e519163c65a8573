/**
 * Runs real software nobody here wrote (job queues, migration tools, ORM CLIs, installed
 * from npm as dev dependencies) twice: as it is, and under poolwatch's preload, loaded by
 * name as a user loads it (the package's own build: npm test builds first).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Test } from 'tap';
import type { PostgresConfig } from './postgres.js';

export const root = join(__dirname, '..', '..');

/** The fixtures of test/real: apps, migration folders and config files. */
export const fixture = (...path: string[]) => join(root, 'test', 'fixtures', 'real', ...path);

/**
 * A threshold every by-design long hold in these workloads passes several times over
 * (graphile-worker's LISTEN connection, a migration's connection): they are flagged
 * unless poolwatch tells them apart.
 */
export const thresholdMs = 100;

// Settings from the machine's own environment must not change what the programs see, nor
// tap's loaders, coverage and settings, nor what marks a process as a test runner's child.
const clean: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([key]) => !/^(POOLWATCH_|TAP|_TAPJS|VITEST)/.test(key) && !/^(NODE_OPTIONS|NODE_V8_COVERAGE|NODE_TEST_CONTEXT|FORCE_COLOR|JEST_WORKER_ID)$/.test(key),
  ),
);

/** How a program is started under the preload: node's flag for an app, NODE_OPTIONS for a CLI. */
export type Preload = { readonly args: readonly string[] } | { readonly nodeOptions: string };

export const esmApp: Preload = { args: ['--import', 'poolwatch/register'] };
export const cjsApp: Preload = { args: ['-r', 'poolwatch/register'] };
export const cliUnderImport: Preload = { nodeOptions: '--import poolwatch/register' };
export const cliUnderRequire: Preload = { nodeOptions: '-r poolwatch/register' };

export interface Program {
  /** The script node runs: an app, or a CLI's bin file. */
  readonly script: string;
  readonly args?: readonly string[];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export interface Ran {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

function start(t: Test, program: Program, preload: Preload | undefined) {
  const env: NodeJS.ProcessEnv = { ...clean, ...program.env };
  const nodeArgs: string[] = [];
  if (preload !== undefined) {
    env.POOLWATCH_LEAK_THRESHOLD_MS = String(thresholdMs);
    if ('args' in preload) nodeArgs.push(...preload.args);
    else env.NODE_OPTIONS = preload.nodeOptions;
  }
  const child = spawn(process.execPath, [...nodeArgs, program.script, ...(program.args ?? [])], {
    cwd: program.cwd ?? root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => void child.kill('SIGKILL'));
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  return child;
}

/** Runs `program` to its end, under the preload when `preload` is given. */
export function run(t: Test, program: Program, preload?: Preload): Promise<Ran> {
  const child = start(t, program, preload);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: string) => (stdout += chunk));
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/** Every line poolwatch wrote: its log lines (and their indented report bodies) and its process warnings. */
export function poolwatchLines(stderr: string): string[] {
  const lines = stderr.split('\n');
  const ours: string[] = [];
  let inReport = false;
  for (const line of lines) {
    if (/^poolwatch: /.test(line) || /\[POOLWATCH_[A-Z_]+\]/.test(line)) {
      ours.push(line);
      inReport = /^poolwatch: Connection leak /.test(line);
    } else if (inReport && (line === '' || /^ {2}/.test(line))) {
      ours.push(line);
    } else inReport = false;
  }
  return ours;
}

const slowLine = /^poolwatch: slow, not leaked: /;

/**
 * What poolwatch wrote besides `slow, not leaked` lines: those say that a connection past
 * the threshold is busy in a query, which is true of a long step at this threshold, and
 * is how a busy by-design hold is told apart from a leak.
 */
export const reportsBesidesSlow = (stderr: string) => poolwatchLines(stderr).filter((line) => !slowLine.test(line));

/** `stderr` without poolwatch's `slow, not leaked` lines. */
export const withoutSlow = (stderr: string) =>
  stderr
    .split('\n')
    .filter((line) => !slowLine.test(line))
    .join('\n');

/** The `slow, not leaked` lines. */
export const slowLines = (stderr: string) => poolwatchLines(stderr).filter((line) => slowLine.test(line));

/** The first line of each of poolwatch's messages, for a test's diagnostics. */
export const headlines = (stderr: string) => poolwatchLines(stderr).filter((line) => /^poolwatch: |\[POOLWATCH_/.test(line));

/**
 * `<path>:<line>:` of the line in `file` that ends with `marker`, as a report's call site
 * begins: the path relative to `cwd`, the program's working directory.
 */
export function leakSite(file: string, marker = '// LEAK', cwd = root): string {
  const lines = readFileSync(file, 'utf8').split('\n');
  const index = lines.findIndex((line) => line.trimEnd().endsWith(marker));
  if (index === -1) throw new Error(`no line ends with ${marker} in ${file}`);
  return `${relative(cwd, file)}:${index + 1}:`;
}

const leakLine = /^poolwatch: Connection leak in pool .*$/gm;

// Far longer than a workload needs to start and pass the threshold; it only bounds how
// long a run with no report at all takes to fail.
const reportTimeoutMs = 60_000;

export interface Reported {
  /** The first line of the leak report that named `site` (with `first`, of the first leak report), when one did. */
  readonly line: string | undefined;
  /** The first line of every leak report seen until then. */
  readonly leaks: readonly string[];
  readonly stderr: string;
  /** Why no report named the site: the process ended, or the timeout passed. */
  readonly ended: string | undefined;
}

/** Whether a leak report's headline names `site` (`path:line:`) as its acquiring line, by the pool's acquire or another method (`acquired by transaction() at`). */
export function namesSite(line: string | undefined, site: string): boolean {
  const escaped = site.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return line !== undefined && new RegExp(` acquired (?:by \\w+\\(\\) )?at ${escaped}`).test(line);
}

/**
 * Runs `program` under the preload until a leak report naming `site` is on its stderr
 * (the program leaks on purpose and would never end), then kills it; with `first`, until
 * the first leak report, whatever it names. Never rejects.
 */
export function runUntilLeakAt(t: Test, program: Program, preload: Preload, site: string, { first = false } = {}): Promise<Reported> {
  const child = start(t, program, preload);
  let stderr = '';
  let line: string | undefined;
  let ended: string | undefined;
  const leaks = () => [...stderr.matchAll(leakLine)].map((match) => match[0]);
  return new Promise((resolve) => {
    const stop = (why: string | undefined) => {
      if (line !== undefined || ended !== undefined) return;
      ended = why;
      clearTimeout(timer);
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => stop(`no leak report at ${site} within ${reportTimeoutMs} ms`), reportTimeoutMs);
    child.stdout.resume();
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
      if (line !== undefined || ended !== undefined) return;
      // A whole line: the regular expression's `.*` stops at its newline, which has arrived.
      const found = leaks().find((leak) => (first || namesSite(leak, site)) && stderr.includes(`${leak}\n`));
      if (found !== undefined) {
        line = found;
        clearTimeout(timer);
        child.kill('SIGKILL');
      }
    });
    child.on('close', (code, signal) => {
      stop(`the process ended (${code ?? signal}) before a leak report at ${site}`);
      resolve({ line, leaks: leaks(), stderr, ended });
    });
  });
}

/** A connection string for `database` on the server of `db`. */
export function urlOf(db: PostgresConfig, database = db.database): string {
  return `postgres://${encodeURIComponent(db.user)}:${encodeURIComponent(db.password)}@${db.host}:${db.port}/${database}`;
}

/** Creates an empty database on the server of `db`, so each run starts from nothing; returns its URL. */
export async function freshDatabase(db: PostgresConfig, name: string): Promise<string> {
  const { Client } = await import('pg');
  const client = new Client(db);
  await client.connect();
  try {
    await client.query(`drop database if exists ${name}`);
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  return urlOf(db, name);
}

/** Runs `sql` on `url` with a client of the test's own (no preload here) and returns its rows. */
export async function rowsOf(url: string, sql: string): Promise<unknown[]> {
  const { Client } = await import('pg');
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/** The script of `name`, a command that package `pkg` installs, as npx would run it. */
export function binOf(pkg: string, name = pkg): string {
  const folder = join(root, 'node_modules', pkg);
  const { bin } = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { bin: string | Record<string, string> };
  return join(folder, typeof bin === 'string' ? bin : bin[name]!);
}
