// An admin endpoint that shows who holds the pool right now: every open lease with its
// call site, request and age, and the pool's figures (peak use, waits, timeouts).
import { createServer } from 'node:http';
import { createPool } from 'generic-pool';
import { createDetector } from 'poolwatch';

const pool = createPool({ create: async () => ({}), destroy: async () => {} }, { max: 5 });
let reported;
const leakReported = new Promise((resolve) => (reported = resolve));
const detector = createDetector({
  leakThresholdMs: 200,
  onLeak: (report) => {
    console.log(report.format());
    reported();
  },
});
detector.watch(pool, { name: 'main' });

const server = createServer(async (req, res) => {
  if (req.url === '/debug/poolwatch') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(detector.snapshot(), null, 2));
    return;
  }
  await detector.scope({ route: req.url, requestId: req.headers['x-request-id'] }, async () => {
    await pool.acquire(); // leaks here
    res.end('ok');
  });
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;

await fetch(`${base}/orders`, { headers: { 'x-request-id': 'req-1' } });
await leakReported;
const snapshot = await (await fetch(`${base}/debug/poolwatch`)).json();
const { stats, leases } = snapshot.pools.main;
console.log(`\nGET /debug/poolwatch: ${stats.open} open of ${stats.capacity}, peak ${stats.peakOpen}`);
for (const lease of leases) console.log(`  lease #${lease.leaseId} held ${Math.round(lease.heldMs)} ms from ${lease.callSite}`, lease.context);
server.close();
