// Types of the ESM entry: the compiled declarations, named exports only (as esm/index.mjs).
export * from '../dist/index.js';
