// What `poolwatch/register` costs an app's start: the wall time of a process that loads
// Express and pg, makes a pool and ends (startup/app.*), with and without the preload,
// alternated in one run. Reported, not budgeted (DESIGN.md sets no figure): the closing
// figure of the zero-code work, and a trend to watch.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from '../runner.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const app = (file) => join(root, 'benchmarks', 'startup', file);

const variants = [
  { name: 'cjs raw', args: [app('app.cjs')] },
  { name: 'cjs -r poolwatch/register', args: ['-r', 'poolwatch/register', app('app.cjs')], base: 'cjs raw' },
  { name: 'cjs --import poolwatch/register', args: ['--import', 'poolwatch/register', app('app.cjs')], base: 'cjs raw' },
  { name: 'esm raw', args: [app('app.mjs')] },
  { name: 'esm --import poolwatch/register', args: ['--import', 'poolwatch/register', app('app.mjs')], base: 'esm raw' },
];

function once(args) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('POOLWATCH_') && key !== 'NODE_OPTIONS'));
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { cwd: root, env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0 || result.stderr !== '') throw new Error(`startup: ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return ms;
}

export default {
  name: 'startup',
  description: "the preload's start-up cost: wall time of a process loading Express and pg, making a pool and ending, with and without poolwatch/register",
  async measure({ quick, log }) {
    const rounds = quick ? 10 : 30;
    const times = Object.fromEntries(variants.map((v) => [v.name, []]));
    // One warm-up pass: the first start reads every file from disk.
    for (const v of variants) once(v.args);
    for (let round = 0; round < rounds; round++) {
      // Rotated so no variant always follows the same one.
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(k + round) % variants.length];
        times[v.name].push(once(v.args));
      }
    }
    const figures = {};
    log(`startup: wall time of node starting Express + pg, making a pool and ending (median of ${rounds})`);
    for (const v of variants) {
      const ms = median(times[v.name]);
      const base = v.base === undefined ? undefined : median(times[v.base]);
      figures[v.name] = { ms, ...(base === undefined ? {} : { addedMs: ms - base, ratio: ms / base }) };
      log(`  ${v.name.padEnd(34)} ${ms.toFixed(1).padStart(7)} ms${base === undefined ? '' : `  +${(ms - base).toFixed(1)} ms (${(ms / base).toFixed(2)}x)`}`);
    }
    return figures;
  },
};
