// Text poolwatch writes carries text it did not choose: labels, request ids, queries, file
// paths, test names. None of it may forge a line of its own (a fake `poolwatch: Connection
// leak …`) or reach a terminal as a control sequence (ANSI escapes, BEL, the C1 CSI 0x9B,
// NEL 0x85) or a bidi override that reorders what is shown.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { format } from 'node:util';
import createDebug from 'debug';
import { createPool, type Pool } from 'generic-pool';
import { createDetector, type ExhaustedEvent, type LeakReleasedEvent, type LeakReport, type LeaseInfo, type MisuseEvent } from '../lib/index.js';
import { expectNoLeaks } from '../lib/testing/index.js';
import { formatLabels } from '../lib/report.js';
import { textFormatter } from '../lib/log-format.js';
import { fakeClock } from './helpers/clock.js';
import { mariadbConfig } from './helpers/mariadb.js';
import { captureWarnings } from './helpers/warnings.js';

/** A whole fake report line, as a label, header or query could carry it. */
const forgedLine = 'poolwatch: Connection leak in pool "forged": lease #999 held for 1 ms (threshold 1 ms), acquired at forged.js:1:1';
/** Every kind of character that must not reach a terminal raw. */
const hostile = `ok\n${forgedLine}\r\n${forgedLine}\u0085${forgedLine}\u2028${forgedLine}\x1b[2J\x1b]0;owned\x07\x9b31m\u202Egnp.exe\u2066x\u2069\x7f\0`;
/** Raw control characters (a newline aside, which separates lines) and bidi controls. */
const rawUnsafe = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** Asserts `text` writes no raw control or bidi character and no line of it starts a forged report. */
function assertSafe(t: Test, name: string, text: string | undefined): void {
  t.type(text, 'string', `${name} is text`);
  if (typeof text !== 'string') return;
  const raw = rawUnsafe.exec(text);
  t.equal(raw, null, `${name}: no raw control or bidi character${raw === null ? '' : ` (U+${raw[0].charCodeAt(0).toString(16).padStart(4, '0')})`}`);
  const forged = text.split('\n').filter((line) => /^\s*poolwatch: Connection leak in pool "forged"/.test(line));
  t.same(forged, [], `${name}: no line starts a forged report`);
}

type Conn = { id: number };
let ids = 0;

// An app file whose name and acquiring line hold escapes and a bidi override: a path and a code frame are text too.
function hostileModule(t: Test): { take: (pool: Pool<Conn>) => Promise<Conn> } {
  const dir = mkdtempSync(join(tmpdir(), 'poolwatch-forged-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'acquire-\x1b[31m\u202Eevil\x07.cjs');
  writeFileSync(file, `// \x1b[2J\u202E\nexports.take = (pool) => pool.acquire(); // TAKES \x1b]0;owned\x07\u202Egnp\x9b31m\n`);
  return require(file) as { take: (pool: Pool<Conn>) => Promise<Conn> };
}

t.test('a hostile label, test name, path and source line are escaped in every text poolwatch makes of a leak', async (t) => {
  const clock = fakeClock(t);
  captureWarnings(t);
  const { take } = hostileModule(t);
  const debugLines: string[] = [];
  const debugLog = (createDebug as unknown as { log: (...args: unknown[]) => void }).log;
  (createDebug as unknown as { log: (...args: unknown[]) => void }).log = (...args: unknown[]) => void debugLines.push(format(...args));
  const namespaces = createDebug.disable();
  createDebug.enable('poolwatch:*');
  t.teardown(() => {
    (createDebug as unknown as { log: unknown }).log = debugLog;
    createDebug.enable(namespaces);
  });

  const detector = createDetector({ leakThresholdMs: 1_000, stacks: 'always', context: () => ({ note: hostile, [hostile]: 'key' }) });
  t.teardown(() => detector.close());
  const pool = detector.watch(createPool<Conn>({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max: 1, acquireTimeoutMillis: 5_000 }), { name: 'db' });
  const text = textFormatter();
  const leaks: LeakReport[] = [];
  const released: LeakReleasedEvent[] = [];
  const misuses: MisuseEvent[] = [];
  const exhausted: ExhaustedEvent[] = [];
  detector.on('leak', (report) => void leaks.push(report));
  detector.on('leak-released', (event) => void released.push(event));
  detector.on('misuse', (event) => void misuses.push(event));
  detector.on('exhausted', (event) => void exhausted.push(event));

  const conn = await detector.scope({ requestId: hostile }, () => take(pool));
  await clock.tickAsync(1_000);
  t.equal(leaks.length, 1, 'the leak is reported');
  const report = leaks[0]!;
  t.match(report.callSite, /acquire-\\x1B\[31m\\u202Eevil\\x07\.cjs:2:\d+$/, 'the path is shown escaped');
  t.ok(String(report.context.requestId).startsWith(hostile.slice(0, 200)), 'the labels themselves are kept as given');
  assertSafe(t, 'report.message', report.message);
  assertSafe(t, 'report.format()', report.format());
  t.match(report.format(), /> 2 \| exports\.take = .* \/\/ TAKES \\x1B\]0;owned\\x07\\u202Egnp\\x9B31m/, 'the source line is shown escaped');
  assertSafe(t, 'report.stack', report.stack);
  assertSafe(t, 'formatLabels()', formatLabels(report.context));
  assertSafe(t, 'the text log of the leak', text('leak', report));

  // A request waits past the pool's acquire timeout: the holders are named.
  const waiting = pool.acquire().then(
    () => undefined,
    (error: Error) => error,
  );
  await clock.tickAsync(5_000);
  const error = await waiting;
  t.ok(exhausted.length > 0, 'the pool ran dry');
  for (const event of exhausted) {
    assertSafe(t, `the ${event.reason} event's message`, event.message);
    assertSafe(t, `the text log of ${event.reason}`, text('exhausted', event));
  }
  t.match(error?.message, /Held by:/, "the pool's error names the holders");
  assertSafe(t, "the pool's annotated error message", error?.message);

  let failed: unknown;
  try {
    expectNoLeaks(detector, { name: hostile, color: false });
  } catch (caught) {
    failed = caught;
  }
  t.match(failed, { code: 'POOLWATCH_LEAK' });
  assertSafe(t, "expectNoLeaks' message", (failed as Error).message);

  await pool.release(conn);
  await pool.release(conn).catch(() => undefined);
  t.equal(released.length, 1);
  assertSafe(t, 'the text log of leak-released', text('leak-released', released[0]!));
  t.ok(misuses.length > 0, 'the second release is a misuse');
  for (const event of misuses) {
    assertSafe(t, 'a misuse message', event.message);
    assertSafe(t, 'the text log of a misuse', text('misuse', event));
  }
  t.ok(debugLines.length > 0, 'debug lines were written');
  for (const line of debugLines) assertSafe(t, 'a debug line', line);
});

// Under the preload, with its own request scopes: the header reaches the report as the requestId label.
const root = join(__dirname, '..');
const clean: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('POOLWATCH_') && key !== 'NODE_OPTIONS' && key !== 'DEBUG'));

async function runHostileApp(t: Test, log: 'text' | 'json'): Promise<string> {
  const child = spawn(process.execPath, ['-r', 'poolwatch/register', join(root, 'test', 'fixtures', 'register', 'hostile.cjs')], {
    cwd: root,
    env: { ...clean, POOLWATCH_LOG: log },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => void child.kill());
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  // Bytes as written: what a terminal would get.
  child.stderr.setEncoding('latin1').on('data', (chunk: string) => (err += chunk));
  const ended = new Promise((resolve) => child.on('close', resolve));
  const until = async (done: () => boolean, what: string) => {
    while (!done()) {
      if (await Promise.race([ended.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 20))])) throw new Error(`the app ended before ${what}; stderr:\n${err}`);
    }
  };
  await until(() => /^\d+\n/.test(out), 'it listened');
  const port = Number(out.trim());
  // Raw bytes: header values may carry obs-text (0x80-0xFF), which Node reads as latin1: NEL 0x85 and CSI 0x9B among them.
  const header = Buffer.from(`r-1\x85${forgedLine}\x9b2J`, 'latin1');
  await new Promise<void>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(Buffer.concat([Buffer.from('GET /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-request-id: '), header, Buffer.from('\r\n\r\n')]));
    });
    socket.on('error', reject).on('close', () => resolve());
    socket.resume();
  });
  const reports = log === 'text' ? /^  context: /gm : /"poolwatch":"leak"/g;
  await until(() => (utf8(err).match(reports) ?? []).length >= 2, 'both leaks were reported');
  return err;
}

const utf8 = (latin1: string) => Buffer.from(latin1, 'latin1').toString('utf8');

t.test('POOLWATCH_LOG=text under the preload: a hostile x-request-id header and scope label forge no line and write no raw control byte', async (t) => {
  const bytes = await runHostileApp(t, 'text');
  const text = utf8(bytes);
  assertSafe(t, 'stderr', text);
  t.notMatch(bytes, /\xc2[\x80-\x9f]/, 'no C1 control, as its UTF-8 bytes');
  t.equal(text.split('\n').filter((line) => line.startsWith('poolwatch: Connection leak')).length, 2, `two reports, two report lines; stderr:\n${text}`);
  t.match(text, /requestId=r-1\\x85poolwatch: Connection leak in pool "forged".*\\x9B2J/, 'the request id is shown, escaped');
});

t.test('POOLWATCH_LOG=json under the preload: the same app gives JSON lines that keep the values exactly, with no raw control or bidi character', async (t) => {
  const text = utf8(await runHostileApp(t, 'json'));
  t.notMatch(text, rawUnsafe, 'no raw control or bidi character');
  const lines = text.split('\n').filter((line) => line.startsWith('{'));
  const leaks = lines.map((line) => JSON.parse(line) as { poolwatch: string; context: Record<string, string> }).filter((line) => line.poolwatch === 'leak');
  t.equal(leaks.length, 2);
  const requestIds = leaks.map((leak) => leak.context.requestId).filter((id) => id !== undefined);
  t.same(requestIds, [`r-1\x85${forgedLine}\x9b2J`], 'the header, exactly as Node read it');
  t.ok(leaks.some((leak) => leak.context.note?.includes('\u202Egnp.exe')), 'the label, exactly as given');
});

t.test('a hostile query (a quoted identifier keeps its characters) is escaped in the leak report, on a real mysql2 pool', async (t) => {
  const config = mariadbConfig(t);
  if (config === undefined) return;
  const mysql = await import('mysql2/promise');
  const detector = createDetector({ leakThresholdMs: 100, stacks: 'always' });
  t.teardown(() => detector.close());
  const pool = mysql.createPool({ ...config, connectionLimit: 2 });
  t.teardown(() => pool.end());
  detector.watch(pool, { name: 'mysql' });
  const text = textFormatter();
  const column = hostile.replace(/`/g, '').replace(/\0/g, '');
  const leaked = new Promise<LeakReport>((resolve) => detector.once('leak', resolve));
  const conn = await pool.getConnection();
  t.teardown(() => conn.release());
  await conn.query(`SELECT 1 AS \`${column.slice(0, 60)}\``);
  const report = await leaked;
  t.match(report.lastQuery, /\x1b|\n/, 'the query as the driver sent it, in the field');
  t.match(report.format(), /last query: SELECT \? AS `ok\\npoolwatch: Connection leak/, 'shown escaped');
  assertSafe(t, 'report.format()', report.format());
  assertSafe(t, 'the text log of the leak', text('leak', report));
});

t.test('the one-line events of the text log stay one line whatever their fields hold', async (t) => {
  const text = textFormatter();
  const view = { pool: `db${hostile}`, leaseId: 1, acquiredAt: 0, waitedMs: 0, heldMs: 5_000, via: 'query', callSite: `src/${hostile}.js:1:1`, stack: undefined, context: { note: hostile }, activity: 'query', activitySince: 0, lastQuery: `SELECT "${hostile}"` } as unknown as LeaseInfo;
  assertSafe(t, 'slow', text('slow', view));
  const misuse = { kind: 'double-release', pool: `db${hostile}`, method: 'release', message: `release() ${hostile}`, callSite: `src/${hostile}.js:1:1`, lease: view } as MisuseEvent;
  assertSafe(t, 'misuse', text('misuse', misuse));
  const report = { callSite: `src/${hostile}.js:1:1`, pool: `db${hostile}`, leaseId: 2, heldMs: 1, occurrence: 2, format: () => 'unused' } as unknown as LeakReport;
  assertSafe(t, 'a repeated leak', text('leak', report));
  assertSafe(t, 'leak-released', text('leak-released', { pool: `db${hostile}`, leaseId: 2, heldMs: 1, report, lease: view } as LeakReleasedEvent));
});

t.test("an error a listener, a labels function or a label throws cannot forge a line of poolwatch's warning about it", async (t) => {
  const warnings = captureWarnings(t);
  const detector = createDetector({
    context: () => ({
      get user(): string {
        throw new Error(hostile);
      },
    }),
  });
  t.teardown(() => detector.close());
  detector.on('acquire', () => {
    throw new Error(hostile);
  });
  const pool = detector.watch(createPool<Conn>({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max: 1 }), { name: 'db' });
  await pool.release(await pool.acquire());
  t.doesNotThrow(() => JSON.stringify(detector.leases()));
  await new Promise((resolve) => setImmediate(resolve));
  t.ok(warnings.length > 0, 'the listener is said');
  for (const warning of warnings) assertSafe(t, `the warning ${warning.name}`, warning.message);
});
