// The ESM entry of poolwatch/testing loads the one CommonJS build, so its checks see the
// same detectors as code that loaded poolwatch either way. Loaded with require() rather
// than a default import: a bundler-style loader (vitest inlining a linked package) takes
// the build's `__esModule` flag to mean "use exports.default", which does not exist.
import { createRequire } from 'node:module';

const testing = createRequire(import.meta.url)('../dist/testing/index.js');

export const { expectNoLeaks, LeakError } = testing;
