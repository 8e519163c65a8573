import { describeHeldBefore, formatHolders, type PoolHolders } from '../attach/holders.js';
import type { EndResult, FoundSummary } from '../attach/host.js';
import { Session } from '../attach/session.js';
import { formatDuration } from '../report.js';

/** Where a command writes: reports and tables to `out`, notices to `err`. */
export interface Io {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  /** Aborted on Ctrl-C: detach now. */
  readonly stop: AbortSignal;
}

export interface AttachCommand {
  readonly pid: number;
  readonly port: number | undefined;
  readonly thresholdMs: number | undefined;
  readonly forSeconds: number | undefined;
  readonly json: boolean;
  readonly keep: boolean;
}

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

/** `poolwatch attach <pid>`: watch, report as it happens, print the holders at the end. Returns the exit code. */
export async function attach(command: AttachCommand, io: Io): Promise<number> {
  const { pid, json } = command;
  const session = await Session.open({ pid, port: command.port, thresholdMs: command.thresholdMs, json, keep: command.keep, onReport: io.out });
  let gone = false;
  void session.closed.then(() => (gone = true));
  try {
    await session.discover();
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

/** Waits for Ctrl-C, `--for`, the target's going away, or the target's forgetting this session. */
function waitForEnd(session: Session, forSeconds: number | undefined, stop: AbortSignal): Promise<'stop' | 'for' | 'gone' | 'expired'> {
  return new Promise((resolve) => {
    const timers: Array<ReturnType<typeof setTimeout>> = [];
    const done = (why: 'stop' | 'for' | 'gone' | 'expired') => {
      for (const timer of timers) clearTimeout(timer);
      clearInterval(pinger);
      stop.removeEventListener('abort', onStop);
      resolve(why);
    };
    const onStop = () => done('stop');
    if (stop.aborted) return done('stop');
    stop.addEventListener('abort', onStop, { once: true });
    if (forSeconds !== undefined) timers.push(setTimeout(() => done('for'), forSeconds * 1000));
    void session.closed.then(() => done('gone'));
    const pinger = setInterval(() => {
      session.ping().then(
        (alive) => alive || done('expired'),
        () => {},
      );
    }, pingEveryMs);
  });
}

/** `poolwatch status <pid>`: the holders table once; nothing is watched. */
export async function status(command: { pid: number; port: number | undefined; json: boolean }, io: Io): Promise<number> {
  const { pid, json } = command;
  const session = await Session.open({ pid, port: command.port, json, keep: undefined, onReport: () => {} });
  try {
    await session.discover();
    await session.adopt(false);
    printHolders(io, json, pid, await session.holders(), 'now');
    const ended = await session.detach();
    if (!ended.inspectorClosed && session.inspector.openedNow && ended.closeInspector) io.err(`poolwatch: the inspector of pid ${pid} did not close in time`);
    return 0;
  } catch (error) {
    // Undone now if the target still answers; else the target undoes it when the pings stop.
    await session.detach().catch(() => session.abandon().catch(() => {}));
    throw error;
  }
}
