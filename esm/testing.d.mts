// Types of the poolwatch/testing ESM entry: the compiled declarations, named exports only (as esm/testing.mjs).
export * from '../dist/testing/index.js';
