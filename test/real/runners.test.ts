import t from 'tap';
import { startPostgres } from '../helpers/postgres.js';
import { binOf, cliUnderImport, fixture, freshDatabase, leakSite, run, thresholdMs } from '../helpers/real.js';

// Test runners as a project runs its suite under the preload:
// `NODE_OPTIONS="--import poolwatch/register" <runner>`, with no poolwatch import in the
// tests. Each file makes a knex instance and a Kysely pg pool; two of its tests hold a
// connection past the threshold (then give it back, so the run passes): each report names
// the test's line.
t.setTimeout(180_000);

const folder = fixture('runners');
const runners: readonly { name: string; file: string; script: string; args: (file: string) => string[]; todo?: string }[] = [
  { name: 'node:test', file: 'node.test.mjs', script: '--test', args: (file) => [file] },
  { name: 'mocha', file: 'mocha.test.mjs', script: binOf('mocha'), args: (file) => ['--no-config', '--no-package', file] },
  {
    name: 'jest',
    file: 'jest.test.cjs',
    script: binOf('jest'),
    args: (file) => ['--ci', '--rootDir', folder, '--testMatch', `**/${file}`],
    todo: "jest loads a test file's modules through its own registry, not Node's require(): the preload sees no pool they make",
  },
  { name: 'vitest', file: 'vitest.test.mjs', script: binOf('vitest'), args: (file) => ['run', '--root', folder, file] },
];

// node:test passes a file's stderr on as TAP comments, `#` escaped.
const leakSites = (output: string) =>
  [...output.matchAll(/Connection leak in pool "[^"]+".*?, acquired (?:by \w+\(\) )?at (\S+?:\d+:)\d+/g)].map((match) => match[1]!).sort();

let url: string;
t.before(async () => {
  url = await freshDatabase(await startPostgres(t), 'runners');
});

for (const runner of runners) {
  t.test(`${runner.name} under the preload: a test that holds an ORM's connection past the threshold is reported at its line`, async (t) => {
    const file = fixture('runners', runner.file);
    // `node --test <file>` runs node itself: the script slot takes the flag.
    const ran = await run(t, { script: runner.script, args: runner.args(runner.script === '--test' ? file : runner.file), cwd: folder, env: { DATABASE_URL: url } }, cliUnderImport);
    const output = `${ran.stdout}\n${ran.stderr}`;
    t.equal(ran.code, 0, `the suite passes: poolwatch reports, it never fails a test${ran.code === 0 ? '' : `\n${output}`}`);
    const expected = [leakSite(file, '// LEAK knex', folder), leakSite(file, '// LEAK kysely', folder)].sort();
    t.same(leakSites(output), expected, `one leak report at ${thresholdMs} ms for each line marked LEAK, and no other`, runner.todo === undefined ? {} : { todo: runner.todo });
    t.notMatch(output, /POOLWATCH_DEGRADED|misuse/, 'no degraded capability, no misuse');
  });
}
