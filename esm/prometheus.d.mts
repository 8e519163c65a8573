// Types of the ESM entry: the compiled declarations, named exports only (as esm/prometheus.mjs).
export * from '../dist/integrations/prometheus.js';
