import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AttachError } from './attach-error.js';
import { Cdp, type EvaluateResult, type RemoteObject } from './cdp.js';
import { hostPort, inspectorClients, isLoopbackHost, log, openInspector, probe, type OpenedInspector } from './inspector.js';
import type { BeginResult, EndResult, FoundSummary } from './host.js';
import type { PoolHolders } from './holders.js';

/**
 * One CLI's attach to one process, over its inspector: loads the agent (dist/attach/agent.js
 * of this very install) with require() in the target, finds the pools with
 * `Runtime.queryObjects`, and takes the agent's reports through a `Runtime.addBinding`
 * binding. `detach()` undoes all of it, and closes the inspector when the attach opened it.
 *
 * A target that ends while attached waits for its debuggers to disconnect before it exits
 * ("Waiting for the debugger to disconnect..."): the target says so (`NodeRuntime.
 * waitingForDisconnect`), and the session lets it go within moments whatever the CLI does.
 */

// This install's agent: dist/attach/agent.js, beside this file.
const agentFile = join(__dirname, 'agent.js');
// Objects the CLI holds in the target, released at detach.
const agentGroup = 'poolwatch-attach';
const queryGroup = 'poolwatch-attach-query';

export interface SessionOptions {
  readonly pid: number;
  /** The inspector port when /proc cannot tell it. */
  readonly port?: number | undefined;
  readonly thresholdMs?: number | undefined;
  readonly json: boolean;
  /** Undefined for `status`: it leaves a kept watch as it is. */
  readonly keep: boolean | undefined;
  /** Called with each report the target sends: `text` (as the preload's log) or a JSON line. */
  readonly onReport: (line: string) => void;
  /** Whether SIGUSR1 may be sent to open the inspector (else only one open already will do). */
  readonly signal: boolean;
  /** Called just before SIGUSR1 is sent. */
  readonly beforeSignal?: (() => void) | undefined;
  /** Aborted on Ctrl-C: open() then undoes what it did and rejects with POOLWATCH_ATTACH_INTERRUPTED. */
  readonly stop: AbortSignal;
}

/** Ctrl-C before the attach was complete: what was done is undone, as `ended` says (undefined: nothing was sent to the target). */
export class Interrupted extends AttachError {
  constructor(readonly ended: (EndResult & { inspectorClosed: boolean }) | undefined) {
    super('POOLWATCH_ATTACH_INTERRUPTED', 'interrupted before the attach was complete');
  }
}

// How long a target that is exiting is kept waiting at most, whatever the CLI is doing.
const exitingGraceMs = 3_000;

/** What the agent sends through the binding. */
interface Report {
  readonly event: string;
  readonly text?: string;
  readonly json?: object;
}

// In the target: this install's agent, through require() (the inspector's own require before Node 20.16).
const loader = (file: string) => `(() => {
  const file = ${JSON.stringify(file)};
  const load = typeof process.getBuiltinModule === 'function' ? process.getBuiltinModule('node:module').createRequire(file) : require('node:module').createRequire(file);
  return load(file);
})()`;

const inspectorModule = `(typeof process.getBuiltinModule === 'function' ? process.getBuiltinModule('node:inspector') : require('node:inspector'))`;
const closer = `setImmediate(() => ${inspectorModule}.close())`;

export class Session {
  readonly pid: number;
  readonly inspector: OpenedInspector;
  readonly began: BeginResult;
  readonly #cdp: Cdp;
  readonly #agent: string;
  readonly #name: string;
  /** Settles when the target says it is exiting, waiting for its debuggers to disconnect. */
  readonly exiting: Promise<void>;
  #ended = false;

  private constructor(pid: number, inspector: OpenedInspector, cdp: Cdp, agent: string, name: string, began: BeginResult, exiting: Promise<void>) {
    this.pid = pid;
    this.inspector = inspector;
    this.#cdp = cdp;
    this.#agent = agent;
    this.#name = name;
    this.began = began;
    this.exiting = exiting;
  }

  /** Settles when the target's inspector connection closes. */
  get closed(): Promise<void> {
    return this.#cdp.closed;
  }

  /** Opens the target's inspector, loads the agent and joins (or starts) the attach there. */
  static async open(options: SessionOptions): Promise<Session> {
    if (!existsSync(agentFile)) throw new AttachError('POOLWATCH_ATTACH_TARGET_FAILED', `this install of poolwatch has no ${agentFile}: build it first`);
    const { pid } = options;
    const inspector = await openInspector(pid, { port: options.port, signal: options.signal, beforeSignal: options.beforeSignal, stop: options.stop }).catch((error: unknown) => {
      throw error instanceof AttachError && error.code === 'POOLWATCH_ATTACH_INTERRUPTED' ? new Interrupted(undefined) : error;
    });
    log('inspector open on 127.0.0.1:%d (opened now: %s)', inspector.port, inspector.openedNow);
    const others = inspectorClients(pid, inspector.port);
    const cdp = await Cdp.connect(inspector.webSocketUrl).catch(async (error: unknown) => {
      // Opened by this attach and left open would outlive the CLI: say so rather than hide it.
      if (inspector.openedNow) throw new AttachError('POOLWATCH_ATTACH_TARGET_FAILED', `could not connect to the inspector pid ${pid} opened on port ${inspector.port}, which may stay open: ${(error as Error).message}`, { cause: error });
      throw error;
    });
    // Undoes what open() did so far: the inspector closed if this attach opened it.
    const undo = async (): Promise<EndResult & { inspectorClosed: boolean }> => {
      const ended = { closeInspector: inspector.openedNow, kept: false, unwatched: 0, sessionsLeft: 0 };
      if (!inspector.openedNow) {
        await cdp.close();
        return { ...ended, inspectorClosed: false };
      }
      return { ...ended, inspectorClosed: await closeInspector(cdp, inspector.port) };
    };
    const abandon = async (error: unknown): Promise<never> => {
      await undo().catch(() => {});
      throw error;
    };
    const interrupted = async (): Promise<void> => {
      if (options.stop.aborted) throw new Interrupted(await undo());
    };

    let onExiting = () => {};
    const exiting = new Promise<void>((resolve) => (onExiting = resolve));
    cdp.on('NodeRuntime.waitingForDisconnect', () => {
      log('pid %d is exiting, waiting for its debuggers to disconnect', pid);
      onExiting();
      // Let go even if the CLI is busy elsewhere: its pending requests then fail.
      setTimeout(() => void cdp.close(), exitingGraceMs).unref();
    });
    try {
      await interrupted();
      // Without it, an exiting target waits for this connection to close, with no word of it.
      await cdp.send('NodeRuntime.notifyWhenWaitingForDisconnect', { enabled: true }).catch(() => {});
      if (!inspector.ownPort) {
        const owner = await evaluate(cdp, 'process.pid');
        if (owner.result.value !== pid) {
          await cdp.close();
          throw new AttachError(
            'POOLWATCH_ATTACH_PORT_TAKEN',
            `the inspector on 127.0.0.1:${inspector.port} belongs to pid ${String(owner.result.value)}, not ${pid}: pid ${pid} could not open its own there (give its port with --port)`,
          );
        }
      }
      if (inspector.openedNow) {
        // Where /proc cannot tell, the target's own word: the host its inspector opened on.
        const url = await evaluate(cdp, `${inspectorModule}.url() ?? null`);
        const host = typeof url.result.value === 'string' ? new URL(url.result.value).hostname.replace(/^\[(.*)\]$/, '$1') : undefined;
        const exposedOn = inspector.exposedOn ?? (host !== undefined && !(await isLoopbackHost(host)) ? host : undefined);
        if (exposedOn !== undefined) {
          const closed = await closeInspector(cdp, inspector.port);
          throw new AttachError(
            'POOLWATCH_ATTACH_NOT_LOOPBACK',
            `pid ${pid} opened its inspector on ${hostPort(exposedOn, inspector.port)}, reachable from other machines ` +
              `(${inspector.hostChecked ? 'a host it set at run time' : 'its options could not be read beforehand'}): ` +
              `poolwatch ${closed ? 'closed it at once' : 'asked it to close at once, but it did not close in time'} and attached nothing; open its inspector yourself on 127.0.0.1 and attach to it`,
          );
        }
      }
      // Connections beyond the attaches the target knows of are a debugger's.
      if (others !== undefined && others > 0) {
        const attaches = await evaluate(cdp, `globalThis[Symbol.for('poolwatch.attach')]?.sessions ?? 0`);
        if (others > Number(attaches.result.value)) {
          await cdp.close();
          throw new AttachError(
            'POOLWATCH_ATTACH_INSPECTED',
            `pid ${pid} is already being inspected: ${others} debugger ${others === 1 ? 'connection' : 'connections'} to its inspector on 127.0.0.1:${inspector.port}; poolwatch does not attach beside a debugger`,
          );
        }
      }
      await interrupted();
    } catch (error) {
      if (error instanceof AttachError && ['POOLWATCH_ATTACH_PORT_TAKEN', 'POOLWATCH_ATTACH_INSPECTED', 'POOLWATCH_ATTACH_NOT_LOOPBACK', 'POOLWATCH_ATTACH_INTERRUPTED'].includes(error.code)) throw error;
      return abandon(error);
    }

    try {
      const loaded = await evaluate(cdp, loader(agentFile), agentGroup);
      if (loaded.exceptionDetails !== undefined) {
        throw new AttachError('POOLWATCH_ATTACH_TARGET_FAILED', `pid ${pid} could not load poolwatch from ${agentFile}: ${describeException(loaded)}`);
      }
      const agent = loaded.result.objectId!;
      const name = `__poolwatch_attach_${process.pid}_${randomBytes(6).toString('hex')}`;
      cdp.on('Runtime.bindingCalled', (params) => {
        const { name: called, payload } = params as { name: string; payload: string };
        if (called !== name) return;
        try {
          const report = JSON.parse(payload) as Report;
          if (report.text !== undefined) options.onReport(report.text);
          else if (report.json !== undefined) options.onReport(JSON.stringify(report.json));
        } catch {
          // Not one of ours.
        }
      });
      await cdp.send('Runtime.addBinding', { name });
      const protocol = await call<number>(cdp, agent, 'function () { return this.protocol; }', []);
      if (protocol !== 1) throw new AttachError('POOLWATCH_ATTACH_TARGET_FAILED', `pid ${pid} runs another version of the attach agent (protocol ${protocol})`);
      await interrupted();
      const began = await call<BeginResult>(cdp, agent, 'function (name, options) { return this.begin(name, options); }', [
        name,
        { thresholdMs: options.thresholdMs, json: options.json, keep: options.keep, openedInspector: inspector.openedNow },
      ]);
      log('session %s began in pid %d', name, pid);
      return new Session(pid, inspector, cdp, agent, name, began, exiting);
    } catch (error) {
      if (error instanceof Interrupted) throw error;
      return abandon(error);
    }
  }

  /** Finds the pools in the target's heap, round by round, as the agent asks; on `stop`, ends the session and rejects with Interrupted. */
  async discover(stop: AbortSignal): Promise<void> {
    for (let round = 0; round < 4; round++) {
      if (stop.aborted) throw new Interrupted(await this.detach());
      log('searching the heap of pid %d (round %d)', this.pid, round + 1);
      const list = await this.#object('function (name) { return this.toQuery(name); }', [{ value: this.#name }]);
      const { result } = await this.#cdp.send<{ result: Array<{ name: string; value?: RemoteObject }> }>('Runtime.getProperties', { objectId: list.objectId, ownProperties: true });
      const prototypes = result.filter((p) => /^\d+$/.test(p.name) && p.value?.objectId !== undefined).map((p) => p.value!.objectId!);
      if (prototypes.length === 0) break;
      for (const prototypeObjectId of prototypes) {
        // A walk of the whole heap: the slowest step on a large one.
        const { objects } = await this.#cdp.send<{ objects: RemoteObject }>('Runtime.queryObjects', { prototypeObjectId, objectGroup: queryGroup }, 120_000);
        await this.#value('function (name, objects) { return this.found(name, objects); }', [{ value: this.#name }, { objectId: objects.objectId }]);
      }
      await this.#cdp.send('Runtime.releaseObjectGroup', { objectGroup: queryGroup });
    }
    if (stop.aborted) throw new Interrupted(await this.detach());
  }

  /** Watches the pools found (`watch` false: lists them only). */
  adopt(watch: boolean): Promise<FoundSummary[]> {
    return this.#value('function (name, watch) { return this.adopt(name, watch); }', [{ value: this.#name }, { value: watch }]);
  }

  holders(timeoutMs?: number): Promise<PoolHolders[]> {
    return this.#value('function (name) { return this.holders(name); }', [{ value: this.#name }], timeoutMs);
  }

  /** Whether the target still counts this session. */
  ping(): Promise<boolean> {
    return this.#value('function (name) { return this.ping(name); }', [{ value: this.#name }]);
  }

  /**
   * Ends the session: the last one out unwatches (unless kept) and closes the inspector if an
   * attach opened it. Resolves with what happened, and whether the inspector is closed now.
   */
  async detach(): Promise<EndResult & { inspectorClosed: boolean }> {
    if (this.#ended) return { closeInspector: false, kept: false, unwatched: 0, sessionsLeft: 0, inspectorClosed: false };
    this.#ended = true;
    const ended = await this.#value<EndResult>('function (name) { return this.end(name); }', [{ value: this.#name }]);
    await this.#cdp.send('Runtime.removeBinding', { name: this.#name }).catch(() => {});
    await this.#cdp.send('Runtime.releaseObjectGroup', { objectGroup: agentGroup }).catch(() => {});
    if (!ended.closeInspector) {
      await this.#cdp.close();
      return { ...ended, inspectorClosed: false };
    }
    return { ...ended, inspectorClosed: await closeInspector(this.#cdp, this.inspector.port) };
  }

  /** Drops the connection without ending the session (the target ends it when its pings stop). */
  async abandon(): Promise<void> {
    this.#ended = true;
    await this.#cdp.close();
  }

  async #object(body: string, args: object[]): Promise<RemoteObject> {
    const reply = await this.#cdp.send<EvaluateResult>('Runtime.callFunctionOn', { objectId: this.#agent, functionDeclaration: body, arguments: args, objectGroup: queryGroup, silent: true });
    if (reply.exceptionDetails !== undefined) throw new AttachError('POOLWATCH_ATTACH_TARGET_FAILED', `the agent failed in pid ${this.pid}: ${describeException(reply)}`);
    return reply.result;
  }

  #value<T>(body: string, args: object[], timeoutMs?: number): Promise<T> {
    return call<T>(this.#cdp, this.#agent, body, args, true, timeoutMs);
  }
}

/** Asks the target to close its inspector, closes this connection, and tells whether the port is closed now. */
async function closeInspector(cdp: Cdp, port: number): Promise<boolean> {
  await cdp.send('Runtime.evaluate', { expression: closer, includeCommandLineAPI: true }, 5_000).catch(() => {});
  await Promise.race([cdp.closed, new Promise((resolve) => setTimeout(resolve, 3_000).unref())]);
  await cdp.close();
  for (let tries = 0; tries < 20; tries++) {
    if ((await probe(port, 500)) === undefined) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

function evaluate(cdp: Cdp, expression: string, objectGroup?: string): Promise<EvaluateResult> {
  return cdp.send<EvaluateResult>('Runtime.evaluate', { expression, includeCommandLineAPI: true, silent: true, returnByValue: objectGroup === undefined, objectGroup });
}

async function call<T>(cdp: Cdp, objectId: string, body: string, args: unknown[] | object[], wrapped = false, timeoutMs?: number): Promise<T> {
  const argumentsList = wrapped ? args : args.map((value) => ({ value }));
  const reply = await cdp.send<EvaluateResult>('Runtime.callFunctionOn', { objectId, functionDeclaration: body, arguments: argumentsList, returnByValue: true, silent: true }, timeoutMs);
  if (reply.exceptionDetails !== undefined) throw new AttachError('POOLWATCH_ATTACH_TARGET_FAILED', `the agent failed in the target: ${describeException(reply)}`);
  return reply.result.value as T;
}

function describeException(reply: EvaluateResult): string {
  const details = reply.exceptionDetails!;
  const text = details.exception?.description ?? details.text ?? 'an exception';
  return text.split('\n')[0]!;
}
