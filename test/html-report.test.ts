import t, { type Test } from 'tap';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page as PuppeteerPage } from 'puppeteer-core' with { 'resolution-mode': 'import' };
import { createPool } from 'generic-pool';
import { renderReport, type PoolTimeline, type ReportData } from '../lib/html-report.js';
import { createDetector } from '../lib/index.js';
import { fakeClock } from './helpers/clock.js';
import type { PoolSizing } from '../lib/sizing.js';

/** The little of the DOM the page-side callbacks use: the test tsconfig has no DOM lib. */
interface DomNode {
  readonly textContent: string | null;
  readonly innerText: string;
  readonly dataset: Record<string, string | undefined>;
  readonly clientWidth: number;
  readonly width: number;
  readonly height: number;
  querySelector(selector: string): DomNode | null;
  querySelectorAll(selector: string): ArrayLike<DomNode>;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null;
}
declare const document: DomNode & { readonly body: DomNode; getElementById(id: string): DomNode | null };

const hostile = '</script><img src=x onerror=alert(1)>';
const start = Date.UTC(2025, 0, 15, 9, 30, 0);

function sizing(pool: string, over: Partial<PoolSizing> = {}): PoolSizing {
  return {
    pool,
    windowMs: 60_000,
    capacity: 10,
    acquiresPerSecond: 24,
    meanHeldMs: 410,
    p99HeldMs: 1850,
    peakOpen: 10,
    peakWaiting: 17,
    neededConnections: 9.84,
    suggestedMax: 56,
    reason: 'p99 demand 44.4 > max 10: requests wait for connections the pool does not have; 56 covers it with 25% headroom',
    ...over,
  };
}

/** 120 samples a second apart: leased climbs to max by 60 s and stays, the queue grows behind it; 3 leaks, a timeout, a reclaim. */
function ordersPool(): PoolTimeline {
  const max = 10;
  const samples = Array.from({ length: 120 }, (_, i) => {
    const leased = Math.min(max, 2 + Math.floor(i / 7.5)) - (i >= 100 && i < 104 ? 1 : 0);
    const waiting = i < 60 ? 0 : Math.min(17, Math.floor((i - 60) / 3.5));
    return { at: start + i * 1000, leased, idle: max - leased, waiting };
  });
  return {
    name: 'orders-db',
    capacity: max,
    samples,
    marks: [
      { at: start + 31_000, kind: 'leak', text: 'lease #412 held 30.0 s from src/orders/checkout.ts:42:17', verdict: 'leak' },
      { at: start + 47_000, kind: 'leak', text: 'lease #455 held 30.0 s from src/orders/checkout.ts:42:17' },
      { at: start + 72_000, kind: 'leak', text: 'lease #501 held 30.0 s from src/orders/checkout.ts:42:17' },
      { at: start + 95_000, kind: 'timeout', text: 'gave up waiting for a connection after 5.0 s: 10 of 10 leased, 12 waiting', verdict: 'leak' },
      { at: start + 100_000, kind: 'reclaimed', text: 'reclaimed lease #412 after 69.0 s' },
    ],
    holders: [
      {
        callSite: 'src/orders/checkout.ts:42:17',
        count: 7,
        oldestHeldMs: 89_000,
        contexts: [{ route: 'POST /checkout', requestId: 'r-81' }, { route: 'POST /checkout', requestId: 'r-97' }],
        activity: { 'idle-in-transaction': 6, query: 1 },
        lastQuery: 'UPDATE orders SET status = ? WHERE id = ?',
      },
      { callSite: 'src/orders/list.ts:18:9', count: 3, oldestHeldMs: 420, contexts: [{ route: 'GET /orders' }], activity: { query: 3 }, lastQuery: 'SELECT * FROM orders WHERE customer_id = ? LIMIT ?' },
    ],
    sizing: sizing('orders-db'),
  };
}

/** A pool that does not say how many are idle, with hostile text everywhere the data reaches. */
function hostilePool(): PoolTimeline {
  const samples = Array.from({ length: 120 }, (_, i) => ({ at: start + i * 1000, leased: Math.min(5, Math.floor(i / 20)), idle: undefined, waiting: i > 100 ? i - 100 : 0 }));
  return {
    name: `reports ${hostile}`,
    capacity: 5,
    samples,
    marks: [{ at: start + 110_000, kind: 'slow', text: `slow: ${hostile}` }],
    holders: [{ callSite: `src/reports/${hostile}.ts:1:1`, count: 5, oldestHeldMs: 20_000, contexts: [{ tenant: hostile }], activity: { idle: 5 }, lastQuery: `SELECT '${hostile}'` }],
    sizing: sizing(hostile, { capacity: 5, reason: `because ${hostile}` }),
  };
}

const report = (): ReportData => ({ title: `poolwatch: ${hostile}`, generatedAt: start + 120_000, pools: [ordersPool(), hostilePool()] });

const emptyTimeline = (name: string): PoolTimeline => ({
  name,
  capacity: undefined,
  samples: [],
  marks: [],
  holders: [],
  sizing: sizing(name, { capacity: undefined, acquiresPerSecond: 0, neededConnections: 0, suggestedMax: undefined, reason: 'no lease was taken in the last 60 s: there is no load to size the pool by' }),
});

t.test('the HTML is one self-contained file: uPlot inlined, nothing fetched', async (t) => {
  const html = renderReport(report());
  t.match(html, /^<!doctype html>/);
  t.match(html, 'var uPlot=', 'uPlot JS is inlined');
  t.match(html, '.u-legend', 'uPlot CSS is inlined');
  t.notMatch(html, /\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i, 'no src/href to a URL');
  t.notMatch(html, /url\(|@import/i, 'no CSS fetch');
  t.notMatch(html, /<script[^>]*\ssrc=/i, 'no external script');
  t.match(html, /default-src 'none'/, 'a CSP forbids any fetch');
});

t.test('hostile text is escaped in the markup and in the JSON', async (t) => {
  const html = renderReport(report());
  t.notOk(html.includes('<img'), 'no <img> tag anywhere');
  t.ok(html.includes('&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;'), 'shown as text');
  const json = /<script type="application\/json" id="poolwatch-data">([^]*?)<\/script>/.exec(html)?.[1];
  t.ok(json, 'the chart data is in a JSON script');
  t.notOk(json!.includes('<'), 'no < in the JSON, so it cannot end its script');
  const parsed = JSON.parse(json!) as { pools: { marks: { text: string }[] }[] };
  t.equal(parsed.pools[1]!.marks[0]!.text, `slow: ${hostile}`, 'and it parses back to the text');
  // Three scripts: the JSON, uPlot, the page's; none cut short.
  t.equal(html.match(/<script/g)?.length, 3);
  t.equal(html.match(/<\/script>/g)?.length, 3);
});

t.test('control and bidi characters are shown as escapes, so an RTL override cannot reorder the page', async (t) => {
  const bidi = 'evil\u202Egnp.exe\u2066x\u2069 \x1b[2J\x07\x9b31m\u0085';
  const pool: PoolTimeline = {
    ...ordersPool(),
    name: `orders ${bidi}`,
    marks: [{ at: start + 10_000, kind: 'leak', text: `leak: ${bidi}\nsecond line` }],
    holders: [{ callSite: `src/${bidi}.ts:1:1`, count: 1, oldestHeldMs: 20_000, contexts: [{ tenant: bidi }], activity: { idle: 1 }, lastQuery: `SELECT "${bidi}"` }],
  };
  const html = renderReport({ title: `poolwatch ${bidi}`, generatedAt: start + 120_000, pools: [pool] });
  // uPlot's own source is not text from the app: look at everything else.
  const page = html.replace(/<script>[^]*?<\/script>/g, '');
  t.notMatch(page, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/, 'no raw control or bidi character in the page or its data');
  t.match(page, 'evil\\u202Egnp.exe', 'the override is shown as an escape, in place');
  const json = /<script type="application\/json" id="poolwatch-data">([^]*?)<\/script>/.exec(html)?.[1];
  const parsed = JSON.parse(json!) as { pools: { marks: { text: string }[] }[] };
  t.equal(parsed.pools[0]!.marks[0]!.text, 'leak: evil\\u202Egnp.exe\\u2066x\\u2069 \\x1B[2J\\x07\\x9B31m\\x85\nsecond line', "the tooltip's text is escaped too, its line break kept");
});

t.test('empty inputs render a note, never throw', async (t) => {
  const none = renderReport({ title: 'empty', generatedAt: start, pools: [] });
  t.match(none, 'No pool is watched');
  const quiet = renderReport({ title: 'quiet', generatedAt: start, pools: [emptyTimeline('idle-db')] });
  t.match(quiet, 'No samples were recorded for this pool.');
  t.match(quiet, 'No connection is held.');
  t.match(quiet, 'max not reported');
  t.notMatch(quiet, 'id="chart-0"', 'no chart without samples');
  // Odd numbers the detector should never give still render.
  const odd = renderReport({ title: 'odd', generatedAt: NaN, pools: [{ ...emptyTimeline('odd'), capacity: Infinity, samples: [{ at: start, leased: NaN, idle: undefined, waiting: 0 }] }] });
  t.match(odd, 'max not reported');
});

t.test('a timeout repeated 21 times is one row of the events table, saying who held the pool; never an empty "Held by:"', async (t) => {
  const clock = fakeClock(t);
  const detector = createDetector({ leakThresholdMs: 600_000, stacks: 'always' });
  t.teardown(() => detector.close());
  const pool = detector.watch(createPool({ create: async () => ({}), destroy: async () => {} }, { max: 1, acquireTimeoutMillis: 300 }), { name: 'db' });
  const held = await pool.acquire(); // HELD
  // Held long enough to be judged a leak from the first timeout on.
  await clock.tickAsync(2_000);
  for (let i = 0; i < 21; i++) {
    const failing = pool.acquire().then(
      () => 'served',
      () => 'timed out',
    );
    await clock.tickAsync(1_000);
    t.equal(await failing, 'timed out');
  }
  const dir = mkdtempSync(join(tmpdir(), 'poolwatch-html-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const html = readFileSync(detector.writeReport(join(dir, 'report.html')), 'utf8');
  const events = html.slice(html.indexOf('<table class="events">'), html.indexOf('</table>', html.indexOf('<table class="events">')));
  const rows = events.match(/<tr><td/g) ?? [];
  t.equal(rows.length, 1, 'one row for the repeated timeout');
  t.match(events, /×21/, 'with how many times it happened');
  t.notMatch(html, /Held by:(<|"|\\n?"|$)/m, 'no "Held by:" with nothing after it, in the table or the chart data');
  t.match(events, /Held by: 1 lease from test\/html-report\.test\.ts:\d+:\d+/, 'the holder is named');
  await pool.release(held);
});

/** Debian's chromium, from PATH. */
function findChromium(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, 'chromium');
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

const chromium = findChromium();

interface Page {
  errors: string[];
  dialogs: string[];
  requests: string[];
  page: PuppeteerPage;
}

async function open(t: Test, browser: Browser, html: string, name: string): Promise<Page> {
  const dir = mkdtempSync(join(tmpdir(), 'poolwatch-html-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, name);
  writeFileSync(file, html);
  const page = await browser.newPage();
  const seen: Page = { errors: [], dialogs: [], requests: [], page };
  page.on('console', (m) => {
    if (m.type() === 'error') seen.errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => seen.errors.push(`page: ${e instanceof Error ? e.message : String(e)}`));
  page.on('dialog', (d) => {
    seen.dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  await page.setRequestInterception(true);
  page.on('request', (r) => {
    const url = r.url();
    if (url.startsWith('data:') || url === pathToFileURL(file).href) return void r.continue();
    seen.requests.push(url);
    void r.abort();
  });
  await page.setViewport({ width: 1200, height: 900 });
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  await page.waitForSelector('body[data-ready]');
  return seen;
}

t.test('in a real browser', { skip: chromium === undefined && process.env.CI !== 'true' ? 'no chromium on PATH: apt-get install chromium' : false }, async (t) => {
  if (chromium === undefined) return void t.fail('no chromium on PATH (CI=true): apt-get install chromium');
  const { default: puppeteer } = await import('puppeteer-core');
  const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--headless=new'] });
  t.teardown(() => browser.close());

  t.test('two pools: charts drawn with their marks, holders shown, hostile text inert', async (t) => {
    const html = renderReport(report());
    const { page, errors, dialogs, requests } = await open(t, browser, html, 'report.html');
    t.equal(await page.evaluate(() => document.body.dataset.ready), '2', 'two charts made');

    const charts = await page.evaluate(() =>
      Array.from(document.querySelectorAll('.chart'), (el) => {
        const canvas = el.querySelector('canvas')!;
        const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
        let painted = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) painted++;
        return { width: canvas.width, height: canvas.height, painted, marks: el.querySelector('.uplot')?.dataset.marks, legend: el.querySelector('.u-legend')?.textContent ?? '' };
      }),
    );
    t.equal(charts.length, 2);
    for (const [i, c] of charts.entries()) {
      t.ok(c.width > 0 && c.height > 0, `chart ${i} has a size (${c.width}x${c.height})`);
      t.ok(c.painted > 2000, `chart ${i} is drawn (${c.painted} painted pixels)`);
    }
    t.equal(charts[0]!.marks, '5', 'orders-db: 3 leaks, a timeout, a reclaim drawn');
    t.equal(charts[1]!.marks, '1');
    t.match(charts[0]!.legend, /leased.*idle.*waiting.*max/s, 'series in the legend');
    t.notMatch(charts[1]!.legend, /idle/, 'no idle series where the pool does not say');

    // Hovering a mark names what happened.
    const box = (await (await page.$('#chart-0 .u-over'))!.boundingBox())!;
    const markX = await page.evaluate((at) => {
      // The x position uPlot gives the first leak mark, in CSS px from the plot's left.
      const over = document.querySelector('#chart-0 .u-over')!;
      const t = JSON.parse(document.getElementById('poolwatch-data')!.textContent!).pools[0].t as number[];
      return ((at - t[0]!) / (t[t.length - 1]! - t[0]!)) * over.clientWidth;
    }, (start + 31_000) / 1000);
    await page.mouse.move(box.x + markX, box.y + box.height / 2);
    await page.waitForSelector('#chart-0 .tip:not([hidden])');
    t.match(await page.evaluate(() => document.querySelector('#chart-0 .tip')!.textContent), /leak \(leak\)\nlease #412 held 30\.0 s/);

    const text = await page.evaluate(() => document.body.innerText);
    t.match(text, 'src/orders/checkout.ts:42:17', 'holders table names the call sites');
    t.match(text, 'src/orders/list.ts:18:9');
    t.match(text, '6 idle in a transaction, 1 in a query');
    t.match(text, 'UPDATE orders SET status = ? WHERE id = ?');
    t.match(text, 'route=POST /checkout requestId=r-81');
    t.match(text, 'p99 demand 44.4 > max 10');
    const sites = await page.evaluate(() => Array.from(document.querySelectorAll('table.holders tbody tr td:first-child'), (td) => td.textContent));
    t.same(sites.slice(0, 2), ['src/orders/checkout.ts:42:17', 'src/orders/list.ts:18:9']);

    for (const where of [`reports ${hostile}`, `tenant=${hostile}`, `SELECT '${hostile}'`, `because ${hostile}`, `src/reports/${hostile}.ts:1:1`, `poolwatch: ${hostile}`])
      t.ok(text.includes(where), `hostile text shown as text: ${where.slice(0, 20)}…`);
    t.equal(await page.title(), `poolwatch: ${hostile}`);
    t.equal(await page.evaluate(() => document.querySelectorAll('img').length), 0, 'no <img> made');
    t.equal(await page.evaluate(() => document.querySelectorAll('script').length), 3, 'no script injected');

    const shot = join(tmpdir(), 'poolwatch-html-report.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.comment(`screenshot: ${shot}`);
    t.comment(`report: ${(Buffer.byteLength(html) / 1024).toFixed(1)} KB`);

    t.same(errors, [], 'no console or page errors');
    t.same(dialogs, [], 'no alert or other dialog');
    t.same(requests, [], 'no request beyond the file itself');
    await page.close();
  });

  t.test('no pools, a pool with no samples, a pool with one: a note, no errors', async (t) => {
    const one = { ...emptyTimeline('single'), capacity: 4, samples: [{ at: start, leased: 1, idle: 3, waiting: 0 }], marks: [{ at: start, kind: 'leak' as const, text: 'x' }] };
    for (const [name, data] of [
      ['none.html', { title: 'none', generatedAt: start, pools: [] }],
      ['quiet.html', { title: 'quiet', generatedAt: start, pools: [emptyTimeline('quiet-db'), one] }],
    ] as const) {
      const { page, errors, dialogs, requests } = await open(t, browser, renderReport(data), name);
      const text = await page.evaluate(() => document.body.innerText);
      t.match(text, name === 'none.html' ? 'No pool is watched' : 'No samples were recorded for this pool.', name);
      t.same([...errors, ...dialogs, ...requests], [], `${name}: no errors, dialogs, requests`);
      await page.close();
    }
  });
});
