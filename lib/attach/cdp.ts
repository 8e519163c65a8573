import WebSocket from 'ws';
import { AttachError } from './attach-error.js';

/**
 * A Chrome DevTools Protocol client over the inspector's WebSocket: numbered requests, their
 * replies, and events by method. Each request has a deadline: a target paused in a debugger,
 * or one whose inspector went away, is an error, not a hang.
 */

/** A value as the protocol returns it (`Runtime.RemoteObject`). */
export interface RemoteObject {
  readonly type: string;
  readonly subtype?: string;
  readonly value?: unknown;
  readonly objectId?: string;
  readonly description?: string;
}

/** The result of `Runtime.evaluate` and `Runtime.callFunctionOn`. */
export interface EvaluateResult {
  readonly result: RemoteObject;
  readonly exceptionDetails?: { readonly text?: string; readonly exception?: RemoteObject };
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  readonly method: string;
}

export class Cdp {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, Pending>();
  readonly #handlers = new Map<string, (params: unknown) => void>();
  #nextId = 0;
  /** Settles when the connection has closed, for whatever reason. */
  readonly closed: Promise<void>;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('message', (data) => this.#receive(String(data)));
    socket.on('close', () => {
      for (const [id, pending] of this.#pending) {
        clearTimeout(pending.timer);
        pending.reject(new AttachError('POOLWATCH_ATTACH_TARGET_FAILED', `the target's inspector closed the connection during ${pending.method} (did the process exit?)`));
        this.#pending.delete(id);
      }
    });
    // After the handshake, errors end in 'close', which rejects what is pending.
    socket.on('error', () => {});
  }

  /** Connects to `url` (a `ws://127.0.0.1:…` inspector URL). */
  static connect(url: string, timeoutMs = 5_000): Promise<Cdp> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs, maxPayload: 256 * 1024 * 1024 });
      const fail = (why: string, cause?: unknown) => {
        socket.removeAllListeners();
        socket.on('error', () => {});
        socket.terminate();
        reject(new AttachError('POOLWATCH_ATTACH_INSPECTED', `the target's inspector refused the connection (${why}): another debugger may hold it`, { cause }));
      };
      socket.once('open', () => {
        socket.removeAllListeners();
        resolve(new Cdp(socket));
      });
      socket.once('unexpected-response', (_request, response) => fail(`HTTP ${response.statusCode ?? '?'}`));
      socket.once('error', (error) => fail(error.message, error));
    });
  }

  /** Sends `method`; resolves with its result, or rejects with the protocol's error. */
  send<T = unknown>(method: string, params: object = {}, timeoutMs = 15_000): Promise<T> {
    const id = ++this.#nextId;
    return new Promise<T>((resolve, reject) => {
      if (this.#socket.readyState !== WebSocket.OPEN) {
        reject(new AttachError('POOLWATCH_ATTACH_TARGET_FAILED', `the target's inspector connection is closed (sending ${method})`));
        return;
      }
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new AttachError('POOLWATCH_ATTACH_TARGET_FAILED', `the target did not answer ${method} within ${Math.round(timeoutMs / 1000)} s: is it paused in a debugger, or is its event loop blocked?`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer, method });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Calls `handler` with the params of every `method` event (one handler per method). */
  on(method: string, handler: (params: unknown) => void): void {
    this.#handlers.set(method, handler);
  }

  /** Closes the connection; resolves once it is closed. */
  close(): Promise<void> {
    if (this.#socket.readyState === WebSocket.OPEN || this.#socket.readyState === WebSocket.CONNECTING) this.#socket.close();
    const timer = setTimeout(() => this.#socket.terminate(), 2_000);
    return this.closed.finally(() => clearTimeout(timer));
  }

  #receive(text: string): void {
    let message: { id?: number; result?: unknown; error?: { message?: string; code?: number }; method?: string; params?: unknown };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      return;
    }
    if (message.id !== undefined) {
      const pending = this.#pending.get(message.id);
      if (pending === undefined) return;
      this.#pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.error !== undefined) {
        pending.reject(new AttachError('POOLWATCH_ATTACH_TARGET_FAILED', `${pending.method} failed in the target: ${message.error.message ?? 'unknown error'}`));
      } else pending.resolve(message.result);
      return;
    }
    if (message.method !== undefined) this.#handlers.get(message.method)?.(message.params);
  }
}
