#!/usr/bin/env node
/**
 * The `poolwatch` command: `attach` to a running Node.js process to find its connection
 * leaks now, with no restart and no code change; `status` for who holds its pools.
 */
import { parseArgs } from 'node:util';
import { AttachError } from '../attach/attach-error.js';
import { attach, exitCodeOf, status, type AttachCommand, type Io } from './commands.js';
import { escapeJson, escapeLines } from '../escape.js';

const usage = `Usage:
  poolwatch attach <pid> [--threshold <ms>] [--for <seconds>] [--json] [--keep] [--port <port>] [--no-signal]
  poolwatch status <pid> [--json] [--port <port>] [--no-signal]

attach   Watches every pool of a supported library in the running Node.js process <pid>
         and prints leak reports, misuse and exhaustion as they happen. On Ctrl-C, or
         when --for ends, prints who holds each pool's connections, then detaches.
status   Prints who holds each pool's connections once, and detaches.

Options:
  --threshold <ms>   a lease held longer is a leak (default 30000)
  --for <seconds>    detach after this long (default: at Ctrl-C)
  --json             one JSON line per event, and for the holders table
  --keep             leave the watch in place after detaching; reports then go to
                     the target's stderr
  --port <port>      the port the target opens its inspector on, where /proc cannot
                     tell (default: its --inspect-port, else 9229)
  --no-signal        send no SIGUSR1: attach only to an inspector open already
  -h, --help         this text

poolwatch opens the target's inspector on 127.0.0.1 (as \`node inspect -p <pid>\` does,
with SIGUSR1) only while it runs, and closes it when it detaches. A target told to open
it on another host (--inspect-port=0.0.0.0:0) is sent nothing. A SIGUSR1 listener of the
app's own takes that signal in place of Node.js (its listener runs, no inspector opens):
nothing can tell beforehand, so poolwatch says so as it sends it; --no-signal sends none.
Ctrl-C before the attach is complete undoes it (exit code 130).`;

class UsageError extends Error {}

interface Parsed extends AttachCommand {
  readonly command: 'attach' | 'status' | 'help';
}

function positive(option: string, value: string | undefined, unit: string, integer = false): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : NaN;
  if (!(n > 0) || (integer && !Number.isInteger(n))) throw new UsageError(`--${option} must be a positive ${integer ? 'whole ' : ''}number of ${unit}, got ${JSON.stringify(value)}`);
  return n;
}

/** Reads the command line; a mistake is a UsageError naming the option or value. */
export function parse(args: readonly string[]): Parsed {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        threshold: { type: 'string' },
        for: { type: 'string' },
        json: { type: 'boolean' },
        keep: { type: 'boolean' },
        port: { type: 'string' },
        'no-signal': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    const text = (error as Error).message;
    const option = /'(-[^' ]+)/.exec(text)?.[1];
    const code = (error as { code?: string }).code;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option ${option ?? text}`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      if (/does not take an argument/.test(text)) throw new UsageError(`${option} takes no value`);
      throw new UsageError(/ambiguous/.test(text) ? `${option} needs a value (for one that starts with "-", write ${option}=<value>)` : `${option} needs a value`);
    }
    throw new UsageError(text.split('\n')[0]!);
  }
  const { values, positionals } = parsed;
  const none = { pid: 0, port: undefined, thresholdMs: undefined, forSeconds: undefined, json: false, keep: false, signal: true };
  if (values.help === true) return { command: 'help', ...none };
  const [command, pidText, ...extra] = positionals;
  if (command === undefined) throw new UsageError('missing command: attach or status');
  if (command !== 'attach' && command !== 'status') throw new UsageError(`unknown command ${JSON.stringify(command)}: attach or status`);
  if (pidText === undefined) throw new UsageError(`${command} needs the pid of a Node.js process`);
  if (!/^\d+$/.test(pidText) || Number(pidText) <= 0 || !Number.isSafeInteger(Number(pidText))) throw new UsageError(`the pid must be a positive whole number, got ${JSON.stringify(pidText)}`);
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  if (command === 'status') {
    for (const option of ['threshold', 'for', 'keep'] as const) {
      if (values[option] !== undefined) throw new UsageError(`--${option} is an option of attach, not of status`);
    }
  }
  const port = positive('port', values.port, 'port', true);
  if (port !== undefined && port > 65_535) throw new UsageError(`--port must be at most 65535, got ${JSON.stringify(values.port)}`);
  return {
    command,
    pid: Number(pidText),
    port,
    thresholdMs: positive('threshold', values.threshold, 'milliseconds'),
    forSeconds: positive('for', values.for, 'seconds'),
    json: values.json === true,
    keep: values.keep === true,
    signal: values['no-signal'] !== true,
  };
}

// Text from the target (its labels, queries, paths, pool names) reaches this terminal: each
// line is escaped as one line, or for JSON, what JSON.stringify leaves raw is \u-escaped.
const asText = (text: string) => escapeLines(text.split('\n'));

// A closed stdout (`| head`) must not turn into an uncaught error.
function writer(stream: NodeJS.WriteStream, escape: (text: string) => string = asText): (line: string) => void {
  stream.on('error', () => {});
  return (line) => {
    const text = escape(line.endsWith('\n') ? line.slice(0, -1) : line);
    stream.write(`${text}\n`);
  };
}

export async function main(args: readonly string[]): Promise<number> {
  const err = writer(process.stderr);
  let parsed: Parsed;
  try {
    parsed = parse(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    err(`poolwatch: ${error.message} (see poolwatch --help)`);
    return 2;
  }
  if (parsed.command === 'help') {
    writer(process.stdout)(usage);
    return 0;
  }
  const controller = new AbortController();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    // A second Ctrl-C leaves at once; the target ends the session when its pings stop.
    if (interrupted) process.exit(exitCodeOf(signal));
    interrupted = true;
    controller.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const io: Io = { out: writer(process.stdout, parsed.json ? escapeJson : asText), err, stop: controller.signal };
  try {
    return parsed.command === 'status' ? await status(parsed, io) : await attach(parsed, io);
  } catch (error) {
    if (error instanceof AttachError) {
      err(`poolwatch: ${error.message}`);
      return 1;
    }
    err(`poolwatch: failed: ${(error as Error)?.stack ?? String(error)}`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
    // Nothing should keep the process alive now; a stray handle must not hold the shell.
    setTimeout(() => process.exit(code), 1_000).unref();
  });
}
