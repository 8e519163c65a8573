import { lookup } from 'node:dns/promises';
import { get } from 'node:http';
import { isIP } from 'node:net';
import createDebug from 'debug';
import { AttachError } from './attach-error.js';
import { inspectorOptionsOf, isLoopbackAddress, listenerOf, reachableFromLoopback, socketsOf, statusOf, threadNamesOf, type TcpSocket } from './proc.js';

/**
 * Opens a running Node.js process's inspector the way `node inspect -p <pid>` does: SIGUSR1
 * (`process._debugProcess`), then the inspector's HTTP endpoint on 127.0.0.1 says where its
 * WebSocket is. On Linux, /proc says which port the target itself opened (so a port taken by
 * another process, or `--inspect-port=0`, is told apart); elsewhere the port is the one the
 * target was told (`--port`, default 9229), and the CLI checks `process.pid` once connected.
 *
 * The inspector is opened on loopback only: SIGUSR1 opens it on the host of the target's
 * `--inspect-port` (or the last `inspector.open(port, host)`), so a target told another host
 * is sent nothing, and one that opens it elsewhere all the same is found out and closed.
 */

/** Marks each step, for `DEBUG=poolwatch:attach`. */
export const log = createDebug('poolwatch:attach');

export interface OpenedInspector {
  readonly port: number;
  /** The target's WebSocket: on 127.0.0.1, unless the inspector listens on another address only. */
  readonly webSocketUrl: string;
  /** The address other than loopback the inspector opened on now (then it is to be closed at once). */
  readonly exposedOn: string | undefined;
  /** Whether its options were read (and their host found loopback) before the signal. */
  readonly hostChecked: boolean;
  /** Whether SIGUSR1 opened it now (else it was open already: `--inspect`, or another attach). */
  readonly openedNow: boolean;
  /** Whether /proc showed that the port is the target's own: else check `process.pid` once connected. */
  readonly ownPort: boolean;
}

export interface OpenOptions {
  /** The port the target opens its inspector on, when /proc cannot say it. */
  readonly port?: number | undefined;
  /** How long to wait for the inspector to appear. */
  readonly timeoutMs?: number | undefined;
  /** Whether SIGUSR1 may be sent to open it (else only an inspector open already will do). */
  readonly signal: boolean;
  /** Called just before SIGUSR1 is sent. */
  readonly beforeSignal?: (() => void) | undefined;
  /** Once aborted, no signal is sent (POOLWATCH_ATTACH_INTERRUPTED); once sent, the inspector is waited for all the same, to be closed. */
  readonly stop?: AbortSignal | undefined;
}

// The local ports of this CLI's own requests to the inspector, so they are not taken for another debugger.
const ownClientPorts = new Set<number>();

/** The inspector's WebSocket URL if `port` on `host` (127.0.0.1 unless said) is a Node.js inspector, else undefined. */
export function probe(port: number, timeoutMs = 1_000, host = '127.0.0.1'): Promise<string | undefined> {
  const authority = hostPort(host, port);
  return new Promise((resolve) => {
    const request = get({ host, port, path: '/json/list', timeout: timeoutMs, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body.length < 1_000_000 ? (body += chunk) : response.destroy()));
      response.on('end', () => {
        try {
          const targets = JSON.parse(body) as Array<{ type?: unknown; webSocketDebuggerUrl?: unknown }>;
          const target = Array.isArray(targets) ? targets.find((t) => t?.type === 'node' && typeof t.webSocketDebuggerUrl === 'string') : undefined;
          // Only the address asked, whatever host the inspector names.
          const path = target === undefined ? undefined : new URL(target.webSocketDebuggerUrl as string).pathname;
          resolve(path === undefined ? undefined : `ws://${authority}${path}`);
        } catch {
          resolve(undefined);
        }
      });
      response.on('error', () => resolve(undefined));
    });
    request.on('socket', (socket) => socket.on('connect', () => socket.localPort !== undefined && ownClientPorts.add(socket.localPort)));
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(undefined));
  });
}

/** Checks that `pid` is a process this user may signal and that SIGUSR1 will not end. */
export function checkProcess(pid: number): void {
  if (pid === process.pid) throw new AttachError('POOLWATCH_ATTACH_NOT_NODE', `pid ${pid} is this poolwatch process itself`);
  try {
    process.kill(pid, 0);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') throw new AttachError('POOLWATCH_ATTACH_NO_PROCESS', `no process has pid ${pid}`, { cause: error });
    if (code === 'EPERM') {
      throw new AttachError('POOLWATCH_ATTACH_NOT_PERMITTED', `not permitted to signal pid ${pid} (EPERM): it belongs to another user; run poolwatch as that user`, { cause: error });
    }
    throw error;
  }
  const status = statusOf(pid);
  if (status?.zombie === true) throw new AttachError('POOLWATCH_ATTACH_NO_PROCESS', `pid ${pid} has exited (a zombie waiting for its parent)`);
  // Sent to a process without a handler, SIGUSR1 ends it: then send nothing. (A Node.js
  // process whose app added a SIGUSR1 listener and removed it is one: libuv put the default back.)
  if (status !== undefined && !status.catchesSigusr1) {
    throw new AttachError(
      'POOLWATCH_ATTACH_NOT_NODE',
      `pid ${pid} (${status.name}) is not a Node.js process that can open its inspector: it has no SIGUSR1 handler (started with --disable-sigusr1?); nothing was sent to it`,
    );
  }
}

/**
 * Whether every address `host` names is loopback. A name is resolved as the target's
 * inspector resolves it (it listens on each address); one that does not resolve is not.
 */
export async function isLoopbackHost(host: string): Promise<boolean> {
  if (isIP(host) !== 0) return isLoopbackAddress(host);
  try {
    const addresses = await lookup(host, { all: true });
    return addresses.length > 0 && addresses.every((a) => isLoopbackAddress(a.address));
  } catch {
    return false;
  }
}

const listeningOn = (sockets: readonly TcpSocket[]) => sockets.filter((s) => s.state === 'listen' && reachableFromLoopback(s.address));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `host:port`, an IPv6 address in brackets. */
export function hostPort(host: string, port: number): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/** Opens `pid`'s inspector, or finds it open. */
export async function openInspector(pid: number, options: OpenOptions): Promise<OpenedInspector> {
  checkProcess(pid);
  const told = inspectorOptionsOf(pid);
  const port = options.port ?? told?.port ?? 9229;
  const before = socketsOf(pid);

  // Open already: the port the target was told is its own and answers as an inspector. A
  // Node.js that names its threads has an InspectorIo thread while its inspector is open:
  // without one, none of its sockets is probed (with port 0 each would be, the app's own
  // servers included, each asked for /json/list).
  const threads = threadNamesOf(pid);
  const inspectorThread = threads?.includes('MainThread') === true ? threads.includes('InspectorIo') : undefined;
  if (before !== undefined) {
    const open = inspectorThread === false ? [] : listeningOn(before).filter((s) => s.port === port || port === 0);
    for (const socket of open) {
      const url = await probe(socket.port);
      if (url !== undefined) return { port: socket.port, webSocketUrl: url, exposedOn: undefined, hostChecked: false, openedNow: false, ownPort: true };
    }
  } else {
    const url = await probe(port);
    if (url !== undefined) return { port, webSocketUrl: url, exposedOn: undefined, hostChecked: false, openedNow: false, ownPort: false };
  }

  if (!options.signal) {
    throw new AttachError(
      'POOLWATCH_ATTACH_NO_INSPECTOR',
      `pid ${pid} has no inspector open, and --no-signal forbids opening one with SIGUSR1; start it with --inspect=127.0.0.1:0 (then no signal is needed), or attach without --no-signal`,
    );
  }
  if (told?.sigusr1Disabled === true) {
    throw new AttachError(
      'POOLWATCH_ATTACH_NO_INSPECTOR',
      `pid ${pid} was started with --disable-sigusr1: SIGUSR1 cannot open its inspector; nothing was sent to it`,
    );
  }
  if (told !== undefined && !(await isLoopbackHost(told.host))) {
    throw new AttachError(
      'POOLWATCH_ATTACH_NOT_LOOPBACK',
      `pid ${pid} would open its inspector on ${told.host} (as its --inspect-port says), reachable from other machines: poolwatch opens an inspector on loopback only, and sent nothing; ` +
        'start it with --inspect-port=127.0.0.1:0, or open its inspector yourself and attach to it',
    );
  }

  if (options.stop?.aborted === true) throw new AttachError('POOLWATCH_ATTACH_INTERRUPTED', `interrupted before anything was sent to pid ${pid}`);
  options.beforeSignal?.();
  log('sending SIGUSR1 to pid %d', pid);
  try {
    (process as unknown as { _debugProcess(pid: number): void })._debugProcess(pid);
  } catch (error) {
    checkProcess(pid);
    throw new AttachError('POOLWATCH_ATTACH_NOT_NODE', `could not signal pid ${pid} to open its inspector: ${(error as Error).message}`, { cause: error });
  }

  const deadline = Date.now() + (options.timeoutMs ?? 5_000);
  const known = new Set(before?.map((s) => s.inode));
  let listened = false;
  while (Date.now() < deadline) {
    await sleep(50);
    if (before !== undefined) {
      const now = socketsOf(pid);
      if (now === undefined) checkProcess(pid);
      // Every new listening socket, whatever its address: one on another address only is found (and closed) too.
      const fresh = (now ?? []).filter((s) => s.state === 'listen' && !known.has(s.inode));
      listened ||= fresh.length > 0;
      for (const socket of fresh) {
        const address = reachableFromLoopback(socket.address) ? '127.0.0.1' : socket.address;
        const url = await probe(socket.port, 1_000, address);
        if (url === undefined) continue;
        const exposedOn = fresh.find((s) => s.port === socket.port && !isLoopbackAddress(s.address))?.address;
        return { port: socket.port, webSocketUrl: url, exposedOn, hostChecked: told !== undefined, openedNow: true, ownPort: true };
      }
    } else {
      const url = await probe(port);
      if (url !== undefined) return { port, webSocketUrl: url, exposedOn: undefined, hostChecked: told !== undefined, openedNow: true, ownPort: false };
    }
  }
  checkProcess(pid);
  const holder = before === undefined || port === 0 ? undefined : listenerOf(port);
  if (typeof holder === 'number' && holder !== pid) {
    throw new AttachError(
      'POOLWATCH_ATTACH_PORT_TAKEN',
      `pid ${pid} could not open its inspector: port ${port} is taken by pid ${holder}; stop that, or start the target with --inspect-port=0 (any free port) or another port`,
    );
  }
  // It handles SIGUSR1, yet nothing listens, and nothing else holds its port: an app listener
  // replaces Node.js's handler (libuv's sigaction takes the place of Node.js's).
  if (before !== undefined && !listened && (port === 0 || holder === null)) {
    throw new AttachError(
      'POOLWATCH_ATTACH_SIGUSR1_TAKEN',
      `pid ${pid} opened no inspector on SIGUSR1 though it handles that signal: most likely a listener of the app's own (process.on('SIGUSR1')) took it in place of Node.js's, and ran; ` +
        'poolwatch sends nothing more; to attach, start it with --inspect=127.0.0.1:0 (then no signal is needed)',
    );
  }
  throw new AttachError(
    'POOLWATCH_ATTACH_NOT_NODE',
    `no inspector appeared for pid ${pid} within ${Math.round((options.timeoutMs ?? 5_000) / 1000)} s: it is not a Node.js process, or a SIGUSR1 listener of its own took the signal, or its inspector port (${port}) is not reachable on 127.0.0.1`,
  );
}

/**
 * How many connections other than this CLI's are open to the target's inspector now
 * (debuggers, other attaches); undefined where /proc cannot say.
 */
export function inspectorClients(pid: number, port: number): number | undefined {
  const sockets = socketsOf(pid);
  return sockets?.filter((s) => s.state === 'established' && s.port === port && !ownClientPorts.has(s.remotePort)).length;
}
