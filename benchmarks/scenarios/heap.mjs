// Retained heap over many acquire/release cycles (DESIGN.md: 1,000,000 cycles, retained
// heap grows < 1 MB). Not a timed scenario but a measurement: run.mjs calls `measure`.
//
// Every sample runs in a fresh child process started with --expose-gc, whatever flags
// the main run has: a fresh process gives each pool the same empty heap to start from,
// whereas in one process the second pool measured would inherit (or be blamed for) the
// first one's compiled code, feedback vectors and old-space fragmentation.
//
// The same file is the child: `node --expose-gc heap.mjs <raw|watched> <cycles> <warmup>`.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { median } from '../runner.mjs';

const self = fileURLToPath(import.meta.url);
const budgetBytes = 1_000_000;
const leakThresholdMs = 30_000;

// --- child side -----------------------------------------------------------------------

// Several full collections: one can leave objects that only become unreachable once
// another's weak callbacks / finalisers ran (the ledger's WeakMap entries, for one).
// Plain gc(): on Node 20 gc({ type: 'major', execution: 'sync' }) left ~60 bytes a cycle
// of a raw pool's garbage uncollected, which read as a leak that was not there.
function settledHeap() {
  for (let i = 0; i < 5; i++) globalThis.gc();
  return process.memoryUsage().heapUsed;
}

async function child(variant, cycles, warmup) {
  const { createPool } = await import('generic-pool');
  const { watch, detectorOf } = await import('poolwatch');
  let id = 0;
  let pool = createPool({ create: async () => ({ id: ++id }), destroy: async () => {} }, { max: 10 });
  if (variant === 'watched') pool = watch(pool, { name: 'heap', stacks: 'auto', leakThresholdMs });
  const run = async (n) => {
    for (let i = 0; i < n; i++) await pool.release(await pool.acquire());
  };
  // The warm-up lets 'auto' spend its starting stack credit and the compiler settle, so
  // what follows is the steady state a long-running app lives in.
  await run(warmup);
  const before = settledHeap();
  await run(cycles);
  const after = settledHeap();
  const stats = detectorOf(pool)?.stats().heap;
  // A watched pool that tracked nothing would mean the wrapper was bypassed.
  if (variant === 'watched' && (!stats || stats.acquired < cycles || stats.open !== 0)) {
    throw new Error(`heap: watched pool not tracked as expected: ${JSON.stringify(stats)}`);
  }
  process.stdout.write(JSON.stringify({ variant, cycles, before, after, growth: after - before }) + '\n');
}

if (process.argv[1] === self) {
  const [variant, cycles, warmup] = process.argv.slice(2);
  await child(variant, Number(cycles), Number(warmup));
}

// --- parent side ----------------------------------------------------------------------

const exec = promisify(execFile);

async function sample(variant, cycles, warmup) {
  const { stdout } = await exec(process.execPath, ['--expose-gc', self, variant, String(cycles), String(warmup)], {
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').pop());
}

export default {
  name: 'heap',
  description: 'generic-pool, in-memory resource, stacks auto: heapUsed after forced GC, before vs after the cycles',
  // The full million in quick mode too: growth here is mostly a fixed offset (raw pools
  // show ~ -140 kB either way: V8 flushing bytecode that only start-up used), so a
  // shorter run scaled up to 1M would multiply that offset into a false figure.
  // A million cycles take ~1.3 s raw, ~2 s watched.
  cycles: { default: 1_000_000, quick: 1_000_000 },
  // Samples per variant, alternating raw/watched so drift hits both alike.
  reps: { default: 3, quick: 1 },

  async measure({ quick, log = () => {} }) {
    const cycles = this.cycles[quick ? 'quick' : 'default'];
    const reps = this.reps[quick ? 'quick' : 'default'];
    const warmup = 100_000;
    const samples = { raw: [], watched: [] };
    for (let rep = 0; rep < reps; rep++) {
      // Alternate which goes first, as the runner's Williams order does for timed scenarios.
      const pair = rep % 2 === 0 ? ['raw', 'watched'] : ['watched', 'raw'];
      for (const variant of pair) samples[variant].push((await sample(variant, cycles, warmup)).growth);
      log(`  heap: rep ${rep + 1}/${reps}`);
    }
    const raw = median(samples.raw);
    const watched = median(samples.watched);
    // The budget is for 1,000,000 cycles; a run given fewer is scaled up to it (over-,
    // never under-stating: a fixed offset is multiplied too).
    const scale = 1_000_000 / cycles;
    return {
      name: this.name,
      description: this.description,
      cycles,
      reps,
      warmupCycles: warmup,
      rawGrowthBytes: raw,
      watchedGrowthBytes: watched,
      samples,
      // poolwatch's share: what the watched pool retained beyond the same loop unwatched.
      netGrowthPer1MBytes: (watched - raw) * scale,
      // The raw pool's own growth is what leak-free code shows in this run (bytecode
      // flushing, lazily compiled code, GC timing): the noise floor. So is the scatter
      // between repeated samples of either variant. Per 1M cycles.
      noiseBytes: Math.max(...samples.raw.map(Math.abs), ...spread(samples.watched), ...spread(samples.raw)) * scale,
      budgetBytes,
    };
  },
};

// Half the range of repeated samples: how much one run of a variant differs from another.
function spread(values) {
  return values.length < 2 ? [] : [(Math.max(...values) - Math.min(...values)) / 2];
}
