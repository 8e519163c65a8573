// The ESM entry re-exports the one CommonJS build, so a process that loads poolwatch
// both ways shares one detector registry.
import poolwatch from '../dist/index.js';

export const {
  watch,
  unwatch,
  createDetector,
  detectorOf,
  scope,
  Detector,
  LeakReport,
  formatDuration,
  PoolwatchTypeError,
  ListenerError,
  codes,
  channelNames,
} = poolwatch;
