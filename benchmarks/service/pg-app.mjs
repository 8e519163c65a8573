// The benchmarked service: an ordinary Express 5 app over a pg.Pool, written the way app
// code is, not the way a benchmark would be, so poolwatch pays what it pays in a real
// service (pool.query() leases, connect/release around a transaction, Express's own work).
import express from 'express';

export const schema = `
  CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL);
  CREATE TABLE orders (id serial PRIMARY KEY, user_id int NOT NULL REFERENCES users, total numeric(10, 2) NOT NULL, placed_at timestamptz NOT NULL DEFAULT now());
  CREATE INDEX orders_user_id ON orders (user_id);
  CREATE TABLE accounts (id int PRIMARY KEY, balance numeric(12, 2) NOT NULL);
  INSERT INTO users SELECT i, 'user ' || i, 'user' || i || '@example.com' FROM generate_series(1, 1000) i;
  INSERT INTO orders (user_id, total) SELECT 1 + (i % 1000), (i % 97) + 0.99 FROM generate_series(1, 5000) i;
  INSERT INTO accounts SELECT i, 1000 FROM generate_series(1, 1000) i;
`;

/** Moves `amount` between two accounts in one transaction on `client`. */
async function transfer(client, from, to, amount) {
  await client.query('BEGIN');
  try {
    await client.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [amount, from]);
    await client.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [amount, to]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}

/**
 * `middleware` runs before every route (a request scope goes there); `reports` adds the
 * routes of the leak measurement (scenarios/leaks.mjs), which the timed runs never call.
 * `lease`: poolwatch's lease(), which the transfer route then borrows its client with
 * (`lease(pool, fn)`), as an app written for it would; otherwise connect/try/finally/release.
 */
export function createApp(pool, { middleware = [], reports = false, lease } = {}) {
  const app = express();
  for (const fn of middleware) app.use(fn);
  app.use(express.json());

  app.get('/users/:id', async (req, res) => {
    const { rows } = await pool.query('SELECT id, name, email FROM users WHERE id = $1', [req.params.id]);
    if (rows.length === 0) return res.status(404).json({ error: 'no such user' });
    res.json(rows[0]);
  });

  app.get('/orders', async (req, res) => {
    const { rows } = await pool.query('SELECT id, total, placed_at FROM orders WHERE user_id = $1 ORDER BY id', [req.query.user]);
    res.json(rows);
  });

  app.post('/transfer', async (req, res) => {
    const { from, to, amount } = req.body;
    if (lease) await lease(pool, (client) => transfer(client, from, to, amount));
    else {
      const client = await pool.connect();
      try {
        await transfer(client, from, to, amount);
      } finally {
        client.release();
      }
    }
    res.json({ ok: true });
  });

  if (reports) addReportRoutes(app, pool);
  return app;
}

function addReportRoutes(app, pool) {
  // The bug the leak measurement looks for: the error path returns without releasing.
  // The client goes back ~300 ms later, as code that cleans up late would, so the pool recovers.
  app.get('/report/:id', async (req, res) => {
    const client = await pool.connect(); // leak-site: scenarios/leaks.mjs expects reports to name this line
    if (req.params.id === 'bad') {
      setTimeout(() => client.release(), 300);
      return res.status(500).json({ error: 'report failed' });
    }
    const { rows } = await client.query('SELECT count(*)::int AS orders, sum(total) AS spent FROM orders WHERE user_id = $1', [req.params.id]);
    client.release();
    res.json(rows[0]);
  });

  // Healthy: a streamed export that holds its connection while the rows are produced.
  // Headers go out once the connection is held, so a client that hangs up on seeing them
  // leaves while the lease is open: the disconnect case of the measurement.
  app.get('/export/:user', async (req, res) => {
    const client = await pool.connect();
    try {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.flushHeaders();
      const { rows } = await client.query('SELECT o.id, o.total FROM orders o, pg_sleep(0.02) WHERE o.user_id = $1', [req.params.user]);
      for (const row of rows) res.write(`${JSON.stringify(row)}\n`);
      res.end();
    } finally {
      client.release();
    }
  });
}
