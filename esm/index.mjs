// The ESM entry re-exports the one CommonJS build, so a process that loads poolwatch
// both ways shares one detector registry.
import { createRequire } from 'node:module';

// require(), not a default import: a bundler-style loader (vitest inlining a linked package)
// reads the build's `__esModule` flag as "use exports.default", which does not exist.
const poolwatch = createRequire(import.meta.url)('../dist/index.js');

export const {
  watch,
  lease,
  unwatch,
  createDetector,
  detectorOf,
  defaultDetector,
  scope,
  Detector,
  LeakReport,
  formatDuration,
  PoolwatchTypeError,
  ListenerError,
  WatchError,
  codes,
  channelNames,
} = poolwatch;
