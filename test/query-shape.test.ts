// The shape of a statement that reports show: its keywords and identifiers, with every
// literal, parameter value and comment gone, so that no password or value leaves the process.
import t from 'tap';
import { shapeQuery, sqlOf, type Dialect } from '../lib/query-shape.js';

const dialects: readonly Dialect[] = ['postgres', 'mysql'];

/** A small seeded PRNG (mulberry32), so that a failing case can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

t.test('keeps keywords and identifiers and turns values into ?', async (t) => {
  t.equal(shapeQuery('SELECT "userId" FROM users WHERE id = $1', 'postgres'), 'SELECT "userId" FROM users WHERE id = ?');
  t.equal(shapeQuery('SELECT `userId` FROM users WHERE id = ?', 'mysql'), 'SELECT `userId` FROM users WHERE id = ?');
  t.equal(
    shapeQuery("select * from t1 join col_2 on t1.a = col_2.b where t1.x2 = 'v' and col_2.y = 42", 'postgres'),
    'select * from t1 join col_2 on t1.a = col_2.b where t1.x2 = ? and col_2.y = ?',
    'digits inside identifiers stay',
  );
  t.equal(
    shapeQuery('SELECT x FROM t WHERE a = 12 AND b = 3.25 AND c = 1e-5 AND d = .5 AND e = 0x1F AND f = -7 AND g = 12abc', 'mysql'),
    'SELECT x FROM t WHERE a = ? AND b = ? AND c = ? AND d = ? AND e = ? AND f = -? AND g = ?',
  );
  t.equal(
    shapeQuery('SELECT x FROM t WHERE y = :name AND z = :other::int AND w = $2::text', 'postgres'),
    'SELECT x FROM t WHERE y = :name AND z = :other::int AND w = ?::text',
    'named parameters are names, casts stay',
  );
  t.equal(shapeQuery('SELECT é, 日本 FROM "tàble"', 'postgres'), 'SELECT é, 日本 FROM "tàble"');
  t.equal(shapeQuery('SELECT a$b, $ x, $abc + 1 FROM t', 'postgres'), 'SELECT a$b, $ x, $abc + ? FROM t');
  t.equal(shapeQuery('SELECT $x, ${1} FROM t', 'mysql'), 'SELECT $x, ${?} FROM t', 'no dollar quotes in MySQL');
});

t.test('double quotes are identifiers in Postgres and strings in MySQL', async (t) => {
  t.equal(shapeQuery('SELECT "a ""b""" FROM t', 'postgres'), 'SELECT "a ""b""" FROM t');
  t.equal(shapeQuery('SELECT "mysql-dq-secret", "a ""b""", "c \\" d" FROM t', 'mysql'), 'SELECT ?, ?, ? FROM t');
});

t.test('no literal, parameter value or comment of either dialect shows', async (t) => {
  const cases: Record<Dialect, string[]> = {
    postgres: [
      "SELECT * FROM users WHERE password = 'hunter2-Zq9'",
      "SELECT 'it''s hunter2-Zq9'",
      "SELECT E'hunter2-Zq9 \\' still hunter2-Zq9'",
      "SELECT e'hunter2-Zq9', B'101hunter2-Zq9', X'hunter2-Zq9', N'hunter2-Zq9', U&'hunter2-Zq9'",
      'SELECT $pw$s3cret hunter2-Zq9$pw$, $$hunter2-Zq9$$, $a$ $$ hunter2-Zq9 $$ $a$',
      'SELECT 987654321, 98765.4321, 9.87654321e+21, 0x987654321',
      'SELECT 1 -- hunter2-Zq9\nFROM t',
      'SELECT 1 /* hunter2-Zq9 /* nested */ hunter2-Zq9 */ FROM t',
      "SELECT 'C:\\', 'hunter2-Zq9' FROM t",
    ],
    mysql: [
      "SELECT * FROM users WHERE password = 'hunter2-Zq9'",
      "SELECT 'it\\'s hunter2-Zq9', 'it''s hunter2-Zq9'",
      'SELECT "hunter2-Zq9", "mysql-dq-secret"',
      "SELECT N'hunter2-Zq9', X'hunter2-Zq9', B'hunter2-Zq9', _utf8'hunter2-Zq9', _utf8mb4\"hunter2-Zq9\"",
      'SELECT 987654321, 98765.4321, 9.87654321e+21, 0x987654321',
      'SELECT 1 -- hunter2-Zq9\nFROM t',
      'SELECT 1 # hunter2-Zq9\nFROM t',
      'SELECT 1 /* hunter2-Zq9 */ FROM t',
      'SELECT 1 /*! hunter2-Zq9 */ FROM t',
    ],
  };
  for (const dialect of dialects) {
    for (const sql of cases[dialect]) {
      const shape = shapeQuery(sql, dialect);
      t.type(shape, 'string', `${dialect}: ${sql}`);
      for (const secret of ['hunter2', 'Zq9', 's3cret', 'mysql-dq-secret', '987654321', '98765', '4321']) {
        t.notMatch(shape, secret, `${dialect}: ${sql} hides ${secret}`);
      }
    }
  }
  t.equal(shapeQuery('SELECT $pw$s3cret$pw$ AS x', 'postgres'), 'SELECT ? AS x');
  t.equal(shapeQuery('SELECT 1 -- hunter2\nFROM t /* 987654321 */ WHERE x', 'postgres'), 'SELECT ? FROM t WHERE x');
  t.equal(shapeQuery('SELECT 1 # 987654321', 'postgres'), 'SELECT ? # ?', '# is an operator in Postgres');
});

t.test('block comments nest in Postgres, not in MySQL', async (t) => {
  t.equal(shapeQuery('/* a /* b */ c */ SELECT 1', 'postgres'), 'SELECT ?');
  t.equal(shapeQuery('/* a /* b */ c */ SELECT 1', 'mysql'), 'c */ SELECT ?');
});

t.test('passwords in user statements are hidden', async (t) => {
  t.equal(shapeQuery("ALTER USER bob WITH PASSWORD 'hunter2-Zq9'", 'postgres'), 'ALTER USER bob WITH PASSWORD ?');
  t.equal(shapeQuery("ALTER USER bob PASSWORD 'p'", 'postgres'), 'ALTER USER bob PASSWORD ?');
  t.equal(shapeQuery('SET PASSWORD = "mysql-dq-secret"', 'mysql'), 'SET PASSWORD = ?');
  t.equal(shapeQuery("SET PASSWORD FOR 'bob'@'%' = 'hunter2-Zq9'", 'mysql'), 'SET PASSWORD FOR ?@? = ?');
  t.equal(shapeQuery("CREATE USER 'bob'@'%' IDENTIFIED BY 'hunter2-Zq9'", 'mysql'), 'CREATE USER ?@? IDENTIFIED BY ?');
  t.equal(shapeQuery("ALTER USER bob IDENTIFIED BY 'p'", 'mysql'), 'ALTER USER bob IDENTIFIED BY ?');
});

t.test('an unterminated quote or comment hides everything from it on', async (t) => {
  const cases: [Dialect, string, string][] = [
    ['postgres', "SELECT a FROM t WHERE p = 'hunter2-Zq9 AND x = 1", 'SELECT a FROM t WHERE p = ?'],
    ['mysql', "SELECT a FROM t WHERE p = 'hunter2-Zq9\\' AND x = 1", 'SELECT a FROM t WHERE p = ?'],
    ['mysql', 'SELECT a FROM t WHERE p = "hunter2-Zq9 AND x = 1', 'SELECT a FROM t WHERE p = ?'],
    ['postgres', 'SELECT a FROM "hunter2-Zq9 WHERE x = 1', 'SELECT a FROM ?'],
    ['mysql', 'SELECT a FROM `hunter2-Zq9 WHERE x = 1', 'SELECT a FROM ?'],
    ['postgres', 'SELECT $pw$hunter2-Zq9 FROM t', 'SELECT ?'],
    ['postgres', "SELECT E'hunter2-Zq9\\'", 'SELECT ?'],
    ['postgres', 'SELECT a /* hunter2-Zq9 /* */ FROM t', 'SELECT a ?'],
    ['mysql', 'SELECT a /* hunter2-Zq9 FROM t', 'SELECT a ?'],
  ];
  for (const [dialect, sql, shape] of cases) t.equal(shapeQuery(sql, dialect), shape, `${dialect}: ${sql}`);
});

t.test("a string whose end depends on the server's backslash setting hides what follows it", async (t) => {
  // MySQL reads \' as an escaped quote, Postgres (standard_conforming_strings) as a backslash
  // and the end of the string; a server set the other way splits the statement elsewhere.
  t.equal(
    shapeQuery("SELECT * FROM users WHERE name = 'O\\'Brien' LIMIT 1", 'mysql'),
    'SELECT * FROM users WHERE name = ? LIMIT ?',
    "a lone 'O\\'Brien' has one reading that leaves no quote open: the shape is kept",
  );
  t.equal(shapeQuery("SELECT 'C:\\' AS p, 2 FROM t", 'postgres'), 'SELECT ? AS p, ? FROM t');
  t.equal(
    shapeQuery("SELECT * FROM t WHERE a = 'x\\'y' AND b = 'z\\'w' LIMIT 1", 'mysql'),
    'SELECT * FROM t WHERE a = ?',
    'both readings close every quote: the shape stops at the string',
  );
  // Read without backslash escapes this is one string; with them, a # comment swallows its end.
  t.equal(shapeQuery("SELECT '\\''hunter2 #x\n Zq9 #'", 'mysql'), 'SELECT ?');
  t.equal(shapeQuery("SELECT 'it\\'s hunter2-Zq9'", 'postgres'), 'SELECT ?');
  t.equal(shapeQuery("SELECT 'a\\', 'hunter2-Zq9' -- '", 'postgres'), 'SELECT ?');
  t.equal(shapeQuery("SELECT E'a\\'b', 2", 'postgres'), 'SELECT ?, ?', "E'…' always reads backslashes as escapes");
  const big = "SELECT 'O\\'Brien', " + 'x, '.repeat(200_000) + 'y';
  t.equal(shapeQuery(big, 'mysql'), 'SELECT ?', 'a statement too long to read three times stops at the string');
  const fits = "SELECT 'O\\'Brien', " + 'x, '.repeat(20_000) + 'y';
  t.match(shapeQuery(fits, 'mysql'), /^SELECT \?, x, x, .*…$/, 'one short enough is read three times');
});

t.test('lists of placeholders fold into one', async (t) => {
  t.equal(shapeQuery('SELECT a FROM t WHERE id IN (?, ?, ?) AND b IN (?,?)', 'mysql'), 'SELECT a FROM t WHERE id IN (?) AND b IN (?)');
  t.equal(shapeQuery('INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) RETURNING id', 'postgres'), 'INSERT INTO t (a, b) VALUES (?), (?) RETURNING id');
  t.equal(shapeQuery("SELECT a FROM t WHERE id IN (1, 2, 'x')", 'postgres'), 'SELECT a FROM t WHERE id IN (?)');
  t.equal(shapeQuery('SELECT f(?, x), g(?, ?, y), h(?,), k(? ?)', 'mysql'), 'SELECT f(?, x), g(?, ?, y), h(?,), k(? ?)', 'other lists stay');
  t.equal(shapeQuery('SELECT ((?, ?)), (?', 'mysql'), 'SELECT ((?)), (?');
  const many = 'INSERT INTO t VALUES (' + '?, '.repeat(100_000) + '?)';
  t.equal(shapeQuery(many, 'mysql'), 'INSERT INTO t VALUES (?)');
  const numbers = 'SELECT a FROM t WHERE id IN (1' + ', 12, .5, 1e-5,\n3.25E+2, 0x1F'.repeat(10_000) + ') AND b = $1';
  t.equal(shapeQuery(numbers, 'postgres'), 'SELECT a FROM t WHERE id IN (?) AND b = ?');
  const params = 'SELECT a FROM t WHERE id IN ($1' + ', $2'.repeat(10_000) + ", 'x', $3)";
  t.equal(shapeQuery(params, 'postgres'), 'SELECT a FROM t WHERE id IN (?)');
  const broken = shapeQuery('SELECT a FROM t WHERE id IN (?' + ', ?'.repeat(10_000) + ', x)', 'mysql')!;
  t.ok(broken.length <= 200 && broken.endsWith('…'), 'a long list that does not fold fills the shape');
  const open = shapeQuery('INSERT INTO t VALUES (' + '?, '.repeat(100_000) + '?', 'mysql')!;
  t.ok(open.length <= 200);
  t.match(open, /^INSERT INTO t VALUES \(\?, \?, \?, .*…$/);
});

t.test('whitespace collapses and the shape is cut at 200 characters', async (t) => {
  t.equal(shapeQuery('\n\t  SELECT\n\n  a ,\r\n b\f FROM  t  ', 'postgres'), 'SELECT a , b FROM t');
  t.equal(shapeQuery('SELECT a/*x*/FROM t', 'postgres'), 'SELECT a FROM t', 'a comment separates like whitespace');
  const long = 'SELECT ' + Array.from({ length: 200 }, (_, i) => `column_${i}`).join(', ') + ' FROM t';
  t.ok(long.length >= 1000);
  for (const dialect of dialects) {
    const shape = shapeQuery(long, dialect)!;
    t.ok(shape.length <= 200, `${shape.length} <= 200`);
    t.ok(shape.endsWith('…'));
    t.ok(shape.startsWith('SELECT column_0, column_1, '));
  }
  const exactly = 'SELECT ' + 'a'.repeat(193);
  t.equal(shapeQuery(exactly, 'postgres'), exactly, '200 characters are not cut');
  t.equal(shapeQuery(exactly + ' b', 'postgres'), exactly.slice(0, 199) + '…');
  const emoji = shapeQuery('SELECT a' + '😀'.repeat(150), 'postgres')!;
  t.ok(emoji.length <= 200 && emoji.endsWith('…'));
  t.notOk(lone.test(emoji), 'never half a surrogate pair');
  const shifted = shapeQuery('SELECT ' + '😀'.repeat(150), 'postgres')!;
  t.notOk(lone.test(shifted));
});

t.test('anything that is not statement text gives undefined', async (t) => {
  for (const dialect of dialects) {
    for (const sql of [undefined, null, 42, {}, ['SELECT 1'], Buffer.from('SELECT 1'), Symbol('x'), () => 'SELECT 1']) {
      t.equal(shapeQuery(sql, dialect), undefined, `${dialect}: ${String(typeof sql)}`);
    }
    for (const sql of ['', '   \n\t', '-- only a comment', '/* only */ -- comments']) {
      t.equal(shapeQuery(sql, dialect), undefined, `${dialect}: ${JSON.stringify(sql)}`);
    }
  }
  t.equal(shapeQuery('# only a comment', 'mysql'), undefined);
});

t.test('a 1 MB statement takes a few milliseconds', async (t) => {
  const mb = 1 << 20;
  const inputs: [Dialect, string][] = [
    ['postgres', "SELECT '" + 'x'.repeat(mb) + "'"],
    ['mysql', "SELECT 'O\\'Brien', " + "'x', ".repeat(mb / 5)],
    ['mysql', "SELECT 'O\\'Brien', " + "'x', ".repeat(12_000)], // 60 kB, read three times
    ['mysql', 'INSERT INTO t VALUES (' + '?, '.repeat(mb / 3) + '?)'],
    ['postgres', 'SELECT * FROM t WHERE id IN (' + '$1234, '.repeat(mb / 7) + '1)'],
    ['mysql', 'SELECT * FROM t WHERE id IN (' + "'abc', ".repeat(mb / 7) + '1)'],
    ['postgres', 'x'.repeat(mb)],
    ['postgres', '/* ' + '/* x */ '.repeat(mb / 8) + ' */ SELECT 1'],
    ['mysql', "SELECT 1 FROM t WHERE a = 'x\\'y' AND " + 'a = b OR '.repeat(mb / 9) + "'"],
    ['postgres', "SELECT 'C:\\', " + '$$x$$, "y", 1, -- z\n'.repeat(mb / 21) + "'"],
  ];
  for (const [dialect, sql] of inputs) {
    const start = performance.now();
    const shape = shapeQuery(sql, dialect);
    const ms = performance.now() - start;
    // About 25 ms at most, cold, on a slow machine; far more would mean a quadratic step.
    t.ok(ms < 250, `${dialect} ${sql.slice(0, 30)}…: ${ms.toFixed(1)} ms`);
    t.ok(shape === undefined || shape.length <= 200);
  }
});

t.test('property: a single-quoted string never shows, whatever it holds', async (t) => {
  const next = random(20240611);
  const alphabet = "abcXYZ0189'\"\\`$-/*#;(),? \n_EeNnUu&:%.";
  let checked = 0;
  for (let n = 0; n < 5000; n++) {
    let s = '';
    const length = 1 + Math.floor(next() * 40);
    for (let i = 0; i < length; i++) s += alphabet[Math.floor(next() * alphabet.length)];
    if ((s.match(/[A-Za-z0-9]/g) ?? []).length < 6) continue;
    checked++;
    for (const dialect of dialects) {
      const shape = shapeQuery(`SELECT '${s.replace(/'/g, "''")}'`, dialect);
      if (shape === undefined || shape.includes(s) || shape !== 'SELECT ?') {
        t.fail(`${dialect}: ${JSON.stringify(s)} gave ${JSON.stringify(shape)}`);
        return;
      }
    }
  }
  t.ok(checked > 1000, `${checked} strings checked`);
});

t.test('property: values in literals and comments never show, even in a cut-off statement', async (t) => {
  const next = random(7);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const noise = "ab'\"\\`$-/*#;(),? \n_EeNn&:0x1e+5";
  const noisy = () => {
    let s = '';
    for (let i = Math.floor(next() * 6); i > 0; i--) s += pick([...noise]);
    return s;
  };
  const code: Record<Dialect, readonly string[]> = {
    postgres: ['SELECT', 'a', 't1', 'col_2', ',', '(', ')', '=', '::int', '"Id"', '$1', ':name', ';', '.', '*', 'E', 'U&"x"', '||', '->>'],
    mysql: ['SELECT', 'a', 't1', ',', '(', ')', '=', '`tick`', '?', ':name', ';', '.', '*', '@v', '$', 'N', '_utf8'],
  };
  // Each escaped as its dialect wants: what a careful client would send.
  const literal: Record<Dialect, readonly ((s: string) => string)[]> = {
    postgres: [
      (s) => `'${s.replace(/'/g, "''")}'`,
      (s) => `E'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`,
      (s) => `E'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`,
      (s) => (s.includes('$pw$') ? `'${s.replace(/'/g, "''")}'` : `$pw$${s}$pw$`),
      (s) => (s.includes('$$') ? `'${s.replace(/'/g, "''")}'` : `$$${s}$$`),
      (s) => `U&'${s.replace(/'/g, "''")}'`,
      (s) => `B'${s.replace(/'/g, "''")}'`,
      (s) => `-- ${s.replace(/[\r\n]/g, ' ')}\n`,
      (s) => `/* ${s.replace(/\*\//g, '* /').replace(/\/\*/g, '/ *')} */`,
    ],
    mysql: [
      (s) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`,
      (s) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`,
      (s) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`,
      (s) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '""')}"`,
      (s) => `_utf8mb4'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`,
      (s) => `X'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`,
      (s) => `-- ${s.replace(/[\r\n]/g, ' ')}\n`,
      (s) => `# ${s.replace(/[\r\n]/g, ' ')}\n`,
      (s) => `/* ${s.replace(/\*\//g, '* /')} */`,
    ],
  };
  for (let n = 0; n < 20_000; n++) {
    const dialect = pick(dialects);
    const secrets: string[] = [];
    const parts: string[] = [];
    for (let i = 1 + Math.floor(next() * 12); i > 0; i--) {
      if (next() < 0.35) {
        const secret = `Secret${Math.floor(next() * 1e9)}`;
        secrets.push(secret);
        parts.push(pick(literal[dialect])(noisy() + secret + noisy()));
      } else parts.push(pick(code[dialect]));
    }
    // Glued to a word, E'…' is no longer a prefixed string, nor $pw$ a quote, and '…''…' is
    // one string: SQL itself reads them so. A space keeps each part what it was written as.
    const separator = pick([' ', '', '\n']);
    let sql = parts.reduce((sql, part) => sql + (/[\w$&'"`]$/.test(sql) && /^[\w$'"`]/.test(part) ? ' ' : separator) + part);
    if (next() < 0.3) sql = sql.slice(0, Math.floor(next() * sql.length));
    const shape = shapeQuery(sql, dialect);
    if (shape !== undefined && (shape.length > 200 || /Secret/.test(shape))) {
      t.fail(`${dialect}: ${JSON.stringify(sql)} gave ${JSON.stringify(shape)}`);
      return;
    }
  }
  t.pass('no value showed');
});

t.test('sqlOf finds the text a query method was given', async (t) => {
  t.equal(sqlOf('SELECT 1'), 'SELECT 1');
  t.equal(sqlOf(''), '');
  t.equal(sqlOf({ text: 'SELECT $1', values: [1] }), 'SELECT $1', 'pg config');
  t.equal(sqlOf({ sql: 'SELECT ?', values: [1] }), 'SELECT ?', 'mysql2, mariadb');
  t.equal(sqlOf({ text: 5, sql: 'SELECT ?' }), 'SELECT ?');
  t.equal(sqlOf({ text: 'a', sql: 'b' }), 'a');
  const textThrows = {
    get text(): string {
      throw new Error('no');
    },
    sql: 'SELECT 2',
  };
  t.equal(sqlOf(textThrows), 'SELECT 2');
  const bothThrow = {
    get text(): string {
      throw new Error('no');
    },
    get sql(): string {
      throw new Error('no');
    },
  };
  t.equal(sqlOf(bothThrow), undefined);
  const hostile = new Proxy(
    {},
    {
      get() {
        throw new Error('no');
      },
    },
  );
  t.equal(sqlOf(hostile), undefined);
  for (const query of [null, undefined, 42, true, {}, { text: null }, { sql: ['SELECT 1'] }, () => 'SELECT 1', Symbol('q')]) {
    t.equal(sqlOf(query), undefined, String(typeof query));
  }
});
