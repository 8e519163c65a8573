// The parent's side of the service benchmarks: starts a service in its own process
// (child.mjs), talks to it over IPC, and loads it with autocannon on 127.0.0.1.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const childPath = fileURLToPath(new URL('./child.mjs', import.meta.url));

/**
 * Starts one service; resolves once it listens. `call(type)` sends a message and resolves
 * to the child's answer (rejecting with the child's error); `close()` stops it gracefully.
 */
export function startService({ driver, mode, db, tablePrefix }) {
  const child = fork(childPath, [], {
    env: { ...process.env, BENCH_SERVICE: JSON.stringify({ driver, mode, db, tablePrefix }) },
    // `preload`: the service as is, watched by `node --import poolwatch/register` alone.
    execArgv: mode === 'preload' ? [...process.execArgv, '--import', 'poolwatch/register'] : process.execArgv,
    // The child's stderr stays visible: an app error (a 500's stack) must not be hidden.
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map();
  let nextId = 0;
  let exited = false;
  const fail = (error) => {
    for (const { reject } of pending.values()) reject(error);
    pending.clear();
  };
  child.on('message', (message) => {
    const entry = pending.get(message.id);
    if (!entry) return;
    pending.delete(message.id);
    if (message.error) entry.reject(new Error(`${driver} service "${mode}": ${message.error}`));
    else entry.resolve(message);
  });
  child.on('exit', (code, signal) => {
    exited = true;
    fail(new Error(`${driver} service "${mode}" exited (${signal ?? code})`));
  });
  const call = (type) =>
    new Promise((resolve, reject) => {
      if (exited) return reject(new Error(`${driver} service "${mode}" is not running`));
      const id = ++nextId;
      pending.set(id, { resolve, reject });
      child.send({ id, type });
    });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${driver} service "${mode}" exited (${code}) before it listened`)));
    child.on('message', (message) => {
      if (message.type !== 'ready') return;
      resolve({
        mode,
        port: message.port,
        call,
        async close() {
          if (exited) return;
          const gone = new Promise((done) => child.once('exit', done));
          await call('close').catch(() => child.kill());
          await gone;
        },
        kill: () => exited || child.kill(),
      });
    });
  });
}

/**
 * The traffic of the timed runs, the same for every service: per connection a cycle of
 * a user lookup, a user's orders, another lookup and a transfer between two accounts.
 * Transfers always go from a lower to a higher account id, so that two concurrent
 * transactions take their row locks in the same order and never deadlock.
 */
export function mixedRequests() {
  let k = 0;
  const next = () => (k = (k % 999) + 1);
  const json = { 'content-type': 'application/json' };
  return [
    { method: 'GET', setupRequest: (req) => ({ ...req, path: `/users/${next()}` }) },
    { method: 'GET', setupRequest: (req) => ({ ...req, path: `/orders?user=${next()}` }) },
    { method: 'GET', setupRequest: (req) => ({ ...req, path: `/users/${next()}` }) },
    {
      method: 'POST',
      path: '/transfer',
      headers: json,
      setupRequest: (req) => {
        const from = next();
        return { ...req, body: JSON.stringify({ from, to: from + 1, amount: 1 }) };
      },
    },
  ];
}

/**
 * One autocannon run against a service. Bounded by `amount` (requests) or `duration`
 * (seconds), and in any case by `capMs`; `overallRate` caps requests per second (sent in
 * a burst at the start of each second, as autocannon does): past it the run is stopped and this rejects, so a
 * stuck service fails the benchmark instead of hanging it. Rejects on any connection error
 * or timeout, and on any status outside `allowStatus` (2xx only, unless given).
 */
export async function load(port, { connections, amount, duration, overallRate, requests, capMs, allowStatus = (code) => code >= 200 && code < 300 }) {
  const instance = autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    ...(amount !== undefined ? { amount } : { duration }),
    ...(overallRate !== undefined ? { overallRate } : {}),
    requests,
    timeout: Math.ceil(capMs / 1000),
    // autocannon notices that a run is over only at its next sample: at the default
    // (1 s) every round would last a whole number of seconds, whatever the service did.
    sampleInt: 5,
  });
  let capped = false;
  const timer = setTimeout(() => {
    capped = true;
    instance.stop();
  }, capMs);
  let result;
  try {
    result = await instance;
  } finally {
    clearTimeout(timer);
  }
  if (capped) throw new Error(`load on port ${port} did not finish within ${capMs} ms: stopped`);
  const bad = Object.entries(result.statusCodeStats ?? {}).filter(([code]) => !allowStatus(Number(code)));
  if (result.errors > 0 || result.timeouts > 0 || bad.length > 0) {
    const codes = bad.map(([code, { count }]) => `${count} × ${code}`).join(', ');
    throw new Error(`load on port ${port}: ${result.errors} errors, ${result.timeouts} timeouts${codes ? `, ${codes}` : ''}`);
  }
  const total = Object.values(result.statusCodeStats ?? {}).reduce((sum, { count }) => sum + Number(count), 0);
  if (amount !== undefined && total < amount) throw new Error(`load on port ${port}: ${total} responses of ${amount}`);
  return { ...result, total };
}
