// Types of the ESM entry: the compiled declarations, named exports only (as esm/http.mjs).
export * from '../dist/integrations/http.js';
