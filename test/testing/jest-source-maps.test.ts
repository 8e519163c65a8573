// Source lines under jest for code jest's own stack formatter does not map: a service
// started from globalSetup is loaded through babel-jest (whose output moves lines) by a
// require hook, so Node has its source map (with --enable-source-maps), while the
// formatter jest installs once tests run maps only the files of its module registry.
// The report must name the source line, as Node would have without jest's formatter.
import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';

t.setTimeout(3 * 60_000);

const repo = process.cwd();
const cwd = join(repo, 'test', 'fixtures', 'runners', 'jest-global-setup');
const setup = join(cwd, 'setup.js');
// babel-jest, jest's default transform; no cache, so each run transforms afresh.
const config = JSON.stringify({ rootDir: '.', testMatch: ['**/*.test.js'], globalSetup: './setup.js', cache: false });

function plainEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|TAP|_TAPJS|TS_NODE_|NODE_|POOLWATCH_|JEST_|VITEST|FORCE_COLOR)/i.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

function jest(stacks: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(
      join(repo, 'node_modules', '.bin', 'jest'),
      ['--ci', '--runInBand', '--forceExit', '--config', config],
      { cwd, env: plainEnv({ NODE_OPTIONS: '--enable-source-maps', STACKS: stacks }), maxBuffer: 16 * 1024 * 1024 },
      (_error, stdout, stderr) => resolve(`${stdout}\n${stderr}`.replace(/\u001b\[[0-9;]*m/g, '')),
    );
  });
}

for (const stacks of ['auto', 'always']) {
  t.test(`a service started from jest's globalSetup: the report names the source line, not babel's (stacks ${stacks})`, async (t) => {
    const output = await jest(stacks);
    const line = readFileSync(setup, 'utf8').split('\n').findIndex((text) => text.includes('// leaks here')) + 1;
    const callSite = /acquired at (\S+)/.exec(output)?.[1];
    t.ok(callSite !== undefined, `a leak was reported${callSite === undefined ? `\n${output}` : ''}`);
    // jest runs from the fixture's folder: paths are relative to it.
    t.ok(callSite?.startsWith(`setup.js:${line}:`), `the report names setup.js:${line}, the source line: ${callSite}`);
    t.match(output, new RegExp(`>\\s*${line} \\|\\s+await pool\\.acquire\\(\\); // leaks here`), 'and its code frame shows that line');
  });
}
