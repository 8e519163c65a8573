import { describeHeldBefore, formatHolders, type PoolHolders } from '../attach/holders.js';
import type { EndResult, FoundSummary } from '../attach/host.js';
import { Interrupted, Session } from '../attach/session.js';
import { formatDuration } from '../report.js';

/** Where a command writes: reports and tables to `out`, notices to `err`. */
export interface Io {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  /** Aborted on Ctrl-C (or SIGTERM; the signal's name is its reason): detach now. */
  readonly stop: AbortSignal;
}

export interface AttachCommand {
  readonly pid: number;
  readonly port: number | undefined;
  readonly thresholdMs: number | undefined;
  readonly forSeconds: number | undefined;
  readonly json: boolean;
  readonly keep: boolean;
  /** False for --no-signal: attach only to an inspector open already. */
  readonly signal: boolean;
}

// How long a target that is exiting is asked for its holders before it is let go.
const holdersAtExitMs = 1_500;

// How often the CLI tells the target it is still there.
const pingEveryMs = 2_000;

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

function describeFound(found: FoundSummary): string {
  const size = found.capacity === undefined ? '' : `, max ${found.capacity}`;
  if (found.problem !== undefined) return `poolwatch: could not watch pool "${found.pool}" (${found.kind}${size}): ${found.problem}`;
  if (found.watchedBy === 'app') return `poolwatch: a ${found.kind} pool is watched by the app's own poolwatch: not watched twice; its reports are shown here too`;
  if (found.joined) return `poolwatch: pool "${found.pool}" (${found.kind}${size}) is watched already by another attach: joined`;
  const before = found.before.count === 0 ? '' : `; ${describeHeldBefore(found.before)}`;
  return `poolwatch: watching pool "${found.pool}" (${found.kind}${size})${before}`;
}

function printHolders(io: Io, json: boolean, pid: number, pools: readonly PoolHolders[], when: string): void {
  if (json) io.out(JSON.stringify({ poolwatch: 'holders', time: new Date().toISOString(), pid, pools }));
  else io.out(`poolwatch: who holds the connections of pid ${pid}, ${when}:\n${formatHolders(pools)}`);
}

// Said before SIGUSR1 goes: an app's own SIGUSR1 listener would take it, and nothing can tell beforehand.
function beforeSignal(io: Io, pid: number): () => void {
  return () =>
    io.err(
      `poolwatch: sending SIGUSR1 to pid ${pid} to open its inspector on 127.0.0.1 (as node inspect -p does); a SIGUSR1 listener of the app's own would take it instead (--no-signal sends none)`,
    );
}

/**
 * Until the attach is complete, Ctrl-C is acknowledged at once (undoing it may wait on the
 * target); returns the function that ends that.
 */
function acknowledgeStop(io: Io, pid: number): () => void {
  const onStop = () => io.err(`poolwatch: interrupted: undoing the attach to pid ${pid} (a second Ctrl-C leaves at once, with that undone only by the target, if at all)`);
  io.stop.addEventListener('abort', onStop, { once: true });
  return () => io.stop.removeEventListener('abort', onStop);
}

/** The exit code after `signal` (Ctrl-C: SIGINT), as a shell reports a process it ended: 130, or 143 for SIGTERM. */
export function exitCodeOf(signal: unknown): number {
  return signal === 'SIGTERM' ? 143 : 130;
}
const interruptedCode = (io: Io) => exitCodeOf(io.stop.reason);

function describeInterrupted(pid: number, error: Interrupted): string {
  return `poolwatch: interrupted before the attach to pid ${pid} was complete; ${error.ended === undefined ? 'nothing was sent to it' : describeEnd(error.ended)}`;
}

/** `poolwatch attach <pid>`: watch, report as it happens, print the holders at the end. Returns the exit code. */
export async function attach(command: AttachCommand, io: Io): Promise<number> {
  const { pid, json } = command;
  const acknowledged = acknowledgeStop(io, pid);
  let session: Session;
  try {
    session = await Session.open({
      pid,
      port: command.port,
      thresholdMs: command.thresholdMs,
      json,
      keep: command.keep,
      onReport: io.out,
      signal: command.signal,
      beforeSignal: beforeSignal(io, pid),
      stop: io.stop,
    });
  } catch (error) {
    acknowledged();
    if (!(error instanceof Interrupted)) throw error;
    io.err(describeInterrupted(pid, error));
    return interruptedCode(io);
  }
  let gone = false;
  void session.closed.then(() => (gone = true));
  try {
    await session.discover(io.stop);
    acknowledged();
    const found = await session.adopt(true);
    const { began } = session;
    const watching = found.filter((f) => f.watchedBy === 'attach').length;
    const theirs = found.filter((f) => f.watchedBy === 'app').length;
    if (json) io.out(JSON.stringify({ poolwatch: 'attached', time: new Date().toISOString(), pid, node: began.node, thresholdMs: began.thresholdMs, pools: found }));
    else for (const f of found) io.out(describeFound(f));
    const joined = began.reused ? `; joined the attach already there (${plural(began.sessions, 'session', 'sessions')})` : '';
    if (began.reused && command.thresholdMs !== undefined && command.thresholdMs !== began.thresholdMs) {
      io.err(`poolwatch: --threshold ${formatDuration(command.thresholdMs)} does not apply: the watch already in place uses ${formatDuration(began.thresholdMs)}`);
    }
    const until = command.forSeconds === undefined ? 'Ctrl-C to detach' : `detaching in ${formatDuration(command.forSeconds * 1000)}`;
    io.err(
      `poolwatch: attached to pid ${pid} (Node ${began.node}) through its inspector on 127.0.0.1:${session.inspector.port}${joined}; ` +
        `watching ${plural(watching, 'pool', 'pools')}, leak threshold ${formatDuration(began.thresholdMs)}` +
        `${theirs === 0 ? '' : ` (and ${theirs} the app's own poolwatch watches)`}; ${until}`,
    );
    if (found.length === 0) {
      const ended = await session.detach();
      io.err(`poolwatch: no pool of a supported library (pg, mysql2, mariadb, generic-pool, tarn, knex, sequelize, postgres.js, mssql) was found in pid ${pid}; detached: ${describeEnd(ended)}`);
      return 1;
    }

    const why = await waitForEnd(session, command.forSeconds, io.stop);
    if (why === 'exited') {
      // Its JavaScript has ended, but the inspector still answers while it waits: the holders at its exit, if they come at once.
      const pools = await session.holders(holdersAtExitMs).catch(() => undefined);
      if (pools !== undefined) printHolders(io, json, pid, pools, 'at its exit');
      await session.abandon();
      io.err(`poolwatch: pid ${pid} is exiting: disconnected so that it can; nothing more to report`);
      return 1;
    }
    if (why === 'gone' || gone) {
      io.err(`poolwatch: the inspector of pid ${pid} closed (the process exited, or something closed its inspector); nothing more to report`);
      return 1;
    }
    if (why === 'expired') {
      io.err(`poolwatch: pid ${pid} ended this attach: it missed the CLI's pings for 15 s (was this machine suspended?)`);
      await session.abandon();
      return 1;
    }
    printHolders(io, json, pid, await session.holders(), 'at detach');
    const ended = await session.detach();
    io.err(`poolwatch: detached from pid ${pid}; ${describeEnd(ended)}`);
    return 0;
  } catch (error) {
    acknowledged();
    if (error instanceof Interrupted) {
      io.err(describeInterrupted(pid, error));
      return interruptedCode(io);
    }
    // Undone now if the target still answers; else the target undoes it when the pings stop.
    await session.detach().catch(() => session.abandon().catch(() => {}));
    throw error;
  }
}

function describeEnd(ended: EndResult & { inspectorClosed: boolean }): string {
  const others = ended.sessionsLeft > 0 ? ` for the other ${ended.sessionsLeft === 1 ? 'attach' : 'attaches'} still running` : '';
  const watch = ended.kept
    ? "the watch stays (--keep): its reports go to the target's stderr"
    : others !== ''
      ? `the watch stays${others}`
      : ended.unwatched === 0
        ? 'nothing was watched by the attach'
        : `the watch is removed (${plural(ended.unwatched, 'pool', 'pools')} unwatched)`;
  const inspector = ended.inspectorClosed
    ? 'its inspector is closed'
    : ended.closeInspector
      ? 'its inspector did not close in time'
      : `its inspector stays open${others === '' ? ', as it was before the attach' : others}`;
  return `${watch}; ${inspector}`;
}

type End = 'stop' | 'for' | 'gone' | 'expired' | 'exited';

/** Waits for Ctrl-C, `--for`, the target's exiting or going away, or the target's forgetting this session. */
function waitForEnd(session: Session, forSeconds: number | undefined, stop: AbortSignal): Promise<End> {
  return new Promise((resolve) => {
    let ended = false;
    const timers: Array<ReturnType<typeof setTimeout>> = [];
    const pinger = setInterval(() => {
      session.ping().then(
        (alive) => alive || done('expired'),
        () => {},
      );
    }, pingEveryMs);
    const onStop = () => done('stop');
    function done(why: End): void {
      if (ended) return;
      ended = true;
      for (const timer of timers) clearTimeout(timer);
      clearInterval(pinger);
      stop.removeEventListener('abort', onStop);
      resolve(why);
    }
    if (stop.aborted) return done('stop');
    stop.addEventListener('abort', onStop, { once: true });
    if (forSeconds !== undefined) timers.push(setTimeout(() => done('for'), forSeconds * 1000));
    void session.exiting.then(() => done('exited'));
    void session.closed.then(() => done('gone'));
  });
}

/** `poolwatch status <pid>`: the holders table once; nothing is watched. */
export async function status(command: { pid: number; port: number | undefined; json: boolean; signal: boolean }, io: Io): Promise<number> {
  const { pid, json } = command;
  const acknowledged = acknowledgeStop(io, pid);
  let session: Session;
  try {
    session = await Session.open({ pid, port: command.port, json, keep: undefined, onReport: () => {}, signal: command.signal, beforeSignal: beforeSignal(io, pid), stop: io.stop });
  } catch (error) {
    acknowledged();
    if (!(error instanceof Interrupted)) throw error;
    io.err(describeInterrupted(pid, error));
    return interruptedCode(io);
  }
  try {
    await session.discover(io.stop);
    acknowledged();
    await session.adopt(false);
    printHolders(io, json, pid, await session.holders(), 'now');
    const ended = await session.detach();
    if (!ended.inspectorClosed && session.inspector.openedNow && ended.closeInspector) io.err(`poolwatch: the inspector of pid ${pid} did not close in time`);
    return 0;
  } catch (error) {
    acknowledged();
    if (error instanceof Interrupted) {
      io.err(describeInterrupted(pid, error));
      return interruptedCode(io);
    }
    // Undone now if the target still answers; else the target undoes it when the pings stop.
    await session.detach().catch(() => session.abandon().catch(() => {}));
    throw error;
  }
}
