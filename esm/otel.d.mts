// Types of the ESM entry: the compiled declarations, named exports only (as esm/otel.mjs).
export * from '../dist/integrations/otel.js';
