import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { siteOf } from '../helpers/site.js';

// The preload is loaded by name: the package's own build (npm test builds first). The
// fixture has no poolwatch code and no SQL Server: it swaps its pool's driver-level
// connection functions for in-memory ones, so mssql's own connect(), acquire() and tarn
// pool run as they would.
const root = join(__dirname, '..', '..');
const file = join(root, 'test', 'fixtures', 'register', 'mssql.cjs');

// Settings from the machine's own environment must not change what these tests see.
const clean: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('POOLWATCH_') && key !== 'NODE_OPTIONS'));

// Every leak line the text log writes: a full report's first line, or a repeat's counted line.
const reported = /^poolwatch: (?:Connection leak in pool|\d+ leaks so far in pool) "([^"]+)"/gm;

for (const preload of [['-r', 'poolwatch/register'], ['--import', 'poolwatch/register']]) {
  t.test(`node ${preload.join(' ')}: an mssql ConnectionPool is watched once, as "mssql", and its leak names the app's line`, async (t) => {
    const child = spawn(process.execPath, [...preload, file], { cwd: root, env: { ...clean, POOLWATCH_LEAK_THRESHOLD_MS: '50' }, stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => void child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    // Until the ConnectionPool's whole report is in (its last line says how long it waited).
    const mssqlReport = /^poolwatch: Connection leak in pool "mssql"[^]*?^ {2}waited /m;
    const seen = new Promise<boolean>((resolve) => {
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
        if (mssqlReport.test(stderr)) resolve(true);
      });
      void exited.then(() => resolve(false));
    });
    t.ok(await seen, "the ConnectionPool's leak is reported", { stderr });
    // Had the tarn pool that connect() made been watched too, its lease of the same
    // connection would have been handed over first, so due no later: reported in the same
    // sweep or an earlier one. The fixture stops from its SIGTERM handler, after the sweep in hand.
    child.kill('SIGTERM');
    t.equal(await exited, 0);
    t.same(
      [...stderr.matchAll(reported)].map(([, pool]) => pool),
      ['mssql'],
      'one report, by the ConnectionPool: its tarn pool is not watched as well',
      { stderr },
    );
    const [, site] = /^poolwatch: Connection leak in pool "mssql": lease #\d+ held for \d+ ms \(threshold 50 ms\), acquired at (\S+)$/m.exec(stderr) ?? [];
    t.ok(site?.startsWith(siteOf(file, '// LEAK')), 'the report names the acquiring line', { stderr });
    t.match(stderr, /> +\d+ \|   await pool\.acquire\(\); \/\/ LEAK/, "the code frame shows the app's own line");
    t.equal(stdout, 'app started\n', "the app's stdout is its own");
  });
}
