import t from 'tap';
import { join } from 'node:path';
import { captureTrace, originOf, type Trace } from '../lib/stack.js';
import { siteOf } from './helpers/site.js';

const fixture = join(__dirname, 'fixtures', 'stack', 'top-level-await.mjs');

t.test("names an ES module's top-level await as the app's line when the acquire comes after an await", async (t) => {
  const global = globalThis as { captureAfterAwait?: () => Promise<Trace> };
  global.captureAfterAwait = async function capture() {
    // A library resuming after its own await, as Sequelize's getConnection() calls the pool's acquire().
    await null;
    return captureTrace(capture);
  };
  t.teardown(() => delete global.captureAfterAwait);
  const { trace } = (await import(fixture)) as { trace: Trace };
  t.match(trace.stack, /at async file:/, 'the module is an async frame that names no function');
  const origin = originOf(trace, () => false);
  t.ok(origin.callSite?.startsWith(siteOf(fixture, '// TOP-LEVEL AWAIT')), `callSite ${origin.callSite}`);
  t.ok(origin.appDepth > 0, 'and a pool learns its depth from it');
});
