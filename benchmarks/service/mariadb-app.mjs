// The same service as pg-app.mjs on a mariadb pool: the peer comparison with mariadb's own
// leakDetectionTimeout. Its tables live in the shared test database, so their names carry
// a per-run prefix that no test uses and no concurrent run shares.
import express from 'express';

export function tableNames(prefix) {
  return { users: `${prefix}users`, orders: `${prefix}orders`, accounts: `${prefix}accounts` };
}

export function schema(t) {
  return [
    `CREATE TABLE ${t.users} (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200) NOT NULL)`,
    `CREATE TABLE ${t.orders} (id INT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, total DECIMAL(10, 2) NOT NULL, placed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, INDEX (user_id))`,
    `CREATE TABLE ${t.accounts} (id INT PRIMARY KEY, balance DECIMAL(12, 2) NOT NULL)`,
    `INSERT INTO ${t.users} SELECT seq, CONCAT('user ', seq), CONCAT('user', seq, '@example.com') FROM seq_1_to_1000`,
    `INSERT INTO ${t.orders} (user_id, total) SELECT 1 + (seq % 1000), (seq % 97) + 0.99 FROM seq_1_to_5000`,
    `INSERT INTO ${t.accounts} SELECT seq, 1000 FROM seq_1_to_1000`,
  ];
}

export function dropSchema(t) {
  return [`DROP TABLE IF EXISTS ${t.orders}, ${t.accounts}, ${t.users}`];
}

export function createApp(pool, t) {
  const app = express();
  app.use(express.json());

  app.get('/users/:id', async (req, res) => {
    const rows = await pool.query(`SELECT id, name, email FROM ${t.users} WHERE id = ?`, [req.params.id]);
    if (rows.length === 0) return res.status(404).json({ error: 'no such user' });
    res.json(rows[0]);
  });

  app.get('/orders', async (req, res) => {
    const rows = await pool.query(`SELECT id, total, placed_at FROM ${t.orders} WHERE user_id = ? ORDER BY id`, [req.query.user]);
    res.json(rows);
  });

  app.post('/transfer', async (req, res) => {
    const { from, to, amount } = req.body;
    const conn = await pool.getConnection();
    try {
      await conn.beginTransaction();
      await conn.query(`UPDATE ${t.accounts} SET balance = balance - ? WHERE id = ?`, [amount, from]);
      await conn.query(`UPDATE ${t.accounts} SET balance = balance + ? WHERE id = ?`, [amount, to]);
      await conn.commit();
    } catch (error) {
      await conn.rollback();
      throw error;
    } finally {
      conn.release();
    }
    res.json({ ok: true });
  });

  return app;
}
