// `node --import poolwatch/register app.mjs`: the one CommonJS build does the work, so a
// process that also loads poolwatch with require() shares its default detector.
import { createRequire } from 'node:module';

createRequire(import.meta.url)('../dist/register.js');
