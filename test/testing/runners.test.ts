// Runs each test runner's own CLI on its fixture folder (test/fixtures/runners/<runner>/),
// where each test file sets up expectNoLeaks() with the one line README documents: the
// file that leaks a connection must fail and name the test, the acquiring line and its
// source; the clean file must pass. The fixtures import `poolwatch` by package name,
// which resolves to this repo's build: `npm test` builds dist/ before tap starts.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// Five runners, two files each; jest and vitest take a while to start.
t.setTimeout(5 * 60_000);

// tap runs test files from the project root.
const repo = process.cwd();
const bin = (name: string): string => join(repo, 'node_modules', '.bin', name);

interface Runner {
  /** Folder under test/fixtures/runners/, also the cwd of the run. */
  dir: string;
  leaky: string;
  clean: string;
  /** The test name the leaking file gives expectNoLeaks(). */
  testName: string;
  command: (file: string) => [string, string[]];
}

const jestConfig = JSON.stringify({ rootDir: '.', testMatch: ['**/*.test.cjs'], transform: {}, cache: false });

const runners: Runner[] = [
  {
    dir: 'tap',
    leaky: 'leaky.test.ts',
    clean: 'clean.test.ts',
    testName: 'tap test that leaks a connection',
    // The folder's .taprc makes it its own tap project: the nested run keeps its .tap/ apart.
    command: (file) => [bin('tap'), [file]],
  },
  {
    dir: 'node-test',
    leaky: 'leaky.test.mjs',
    clean: 'clean.test.mjs',
    testName: 'node:test test that leaks a connection',
    command: (file) => [process.execPath, ['--test', file]],
  },
  {
    dir: 'mocha',
    leaky: 'leaky.test.mjs',
    clean: 'clean.test.mjs',
    testName: 'mocha test that leaks a connection',
    command: (file) => [bin('mocha'), ['--no-config', '--no-package', file]],
  },
  {
    dir: 'jest',
    leaky: 'leaky.test.cjs',
    clean: 'clean.test.cjs',
    testName: 'jest test that leaks a connection',
    command: (file) => [bin('jest'), ['--ci', '--config', jestConfig, file]],
  },
  {
    dir: 'vitest',
    leaky: 'leaky.test.mts',
    clean: 'clean.test.mts',
    testName: 'vitest test that leaks a connection',
    // The folder's vitest.config.mts is picked up: cwd is the root.
    command: (file) => [bin('vitest'), ['run', file]],
  },
];

/**
 * The environment of the outer run less what would make a child something other than a
 * plain run of that runner: npm's lifecycle variables, tap's loaders, coverage and its
 * own TAP_* settings, a forced colour.
 */
function plainEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    if (
      /^npm_/i.test(key) ||
      /^(NODE_OPTIONS|NODE_V8_COVERAGE|NODE_CHANNEL_FD|NODE_CHANNEL_SERIALIZATION_MODE|NODE_TEST_CONTEXT|FORCE_COLOR|JEST_WORKER_ID|VITEST.*)$/i.test(key) ||
      /^(TAP|_TAPJS|TS_NODE_)/i.test(key)
    ) {
      delete env[key];
    }
  }
  return env;
}

interface Run {
  code: number | null;
  output: string;
}

function run([file, args]: [string, string[]], cwd: string): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, { cwd, env: plainEnv(), maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      // Runners colour their own output whatever the terminal; the assertions read the text.
      const output = `${stdout}\n${stderr}`.replace(/\u001b\[[0-9;]*m/g, '');
      done({ code, output: code === null && error !== null ? `${output}\n${String(error)}` : output });
    });
  });
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

t.before(() => {
  if (!existsSync(join(repo, 'dist', 'testing', 'index.js'))) {
    throw new Error(`${repo}/dist/testing/index.js is missing: run this file through \`npm test\`, which builds first`);
  }
});

for (const runner of runners) {
  const cwd = join(repo, 'test', 'fixtures', 'runners', runner.dir);

  t.test(`${runner.dir}: a test that leaks a connection fails, naming the test, the acquiring line and its source`, async (t) => {
    const lines = readFileSync(join(cwd, runner.leaky), 'utf8').split('\n');
    const index = lines.findIndex((line) => line.includes('// leaks here'));
    const line = index + 1;
    const source = lines[index]!.trim();

    const { code, output } = await run(runner.command(runner.leaky), cwd);
    const shown = `\n--- output of ${runner.dir} ---\n${output}`;
    t.not(code, 0, `the run fails (exit ${code})`);
    t.ok(/POOLWATCH_LEAK|LeakError/.test(output), `the output names the error${code === 0 ? shown : ''}`);
    t.ok(output.includes(`still leased after test "${runner.testName}"`), `the message names the test${output.includes(runner.testName) ? '' : shown}`);
    // In TypeScript files this is the TypeScript line: source maps are on (tap) or native (vitest).
    t.ok(output.includes(`${runner.leaky}:${line}`), `the output names ${runner.leaky}:${line}, the acquiring line`);
    t.match(output, new RegExp(`>\\s*${line} \\|\\s+${escape(source)}`), 'the code frame shows the acquiring source line');
  });

  t.test(`${runner.dir}: a test that releases its connection passes`, async (t) => {
    const { code, output } = await run(runner.command(runner.clean), cwd);
    t.equal(code, 0, `the run passes${code === 0 ? '' : `\n--- output of ${runner.dir} ---\n${output}`}`);
    t.notMatch(output, /POOLWATCH_LEAK|still leased/, 'and reports no leak');
  });
}
