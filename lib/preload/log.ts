import { subscribe } from 'node:diagnostics_channel';
import { channelNames } from '../channels.js';
import { jsonFields, reportedEvents, textFormatter } from '../log-format.js';
import { takeWarnings } from '../warn.js';
import type { LogFormat } from './env.js';
import { escapeJson, escapeLines } from '../escape.js';

// POOLWATCH_LOG=json: everything poolwatch writes is a JSON line, its own lines too.
let json = false;

/**
 * Text on stderr, ending its line; never a throw. Each line is escaped as one line (JSON
 * lines, already escaped, pass unchanged): nothing the app's data holds reaches the terminal raw.
 */
export function write(text: string): void {
  try {
    process.stderr.write(`${escapeLines((text.endsWith('\n') ? text.slice(0, -1) : text).split('\n'))}\n`);
  } catch {
    // A closed stderr must not break the app.
  }
}

function writeJson(event: string, fields: object): void {
  try {
    write(escapeJson(JSON.stringify({ poolwatch: event, time: new Date().toISOString(), ...fields })));
  } catch {
    // A payload that cannot be serialised is skipped, never thrown into the pool.
  }
}

/**
 * One line of poolwatch's own on stderr: what went wrong, with its code; under
 * POOLWATCH_LOG=json a `warning` line. Never a throw.
 */
export function say(message: string, code: string): void {
  if (json) writeJson('warning', { code, message });
  else write(`poolwatch: ${message}`);
}

/** Says where POOLWATCH_REPORT was written; under POOLWATCH_LOG=json a `report` line. */
export function sayReportWritten(path: string): void {
  if (json) writeJson('report', { path });
  else write(`poolwatch: report written to ${path}`);
}

/** Makes the preload's own lines (say(), sayReportWritten()) follow `format`. */
export function sayAs(format: LogFormat): void {
  json = format === 'json';
}

// What Node prints no warning for (--no-warnings, NODE_NO_WARNINGS=1, --disable-warning=<code
// or name>), poolwatch does not write either: undefined when every warning is off.
function disabledWarnings(): Set<string> | undefined {
  const args = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (process.env.NODE_NO_WARNINGS === '1' || args.includes('--no-warnings')) return undefined;
  const disabled = new Set<string>();
  args.forEach((arg, i) => {
    if (arg.startsWith('--disable-warning=')) disabled.add(arg.slice('--disable-warning='.length));
    else if (arg === '--disable-warning' && args[i + 1] !== undefined) disabled.add(args[i + 1]!);
  });
  return disabled;
}

/**
 * Writes what every detector in the process reports to stderr, as `format` says. It
 * listens on poolwatch's diagnostics channels, so pools an app watches with its own
 * detector are logged too. Acquire and release are never subscribed: they stay free.
 */
export function startLog(format: LogFormat): void {
  sayAs(format);
  // poolwatch's warnings (any copy's) are JSON lines too, instead of Node's text lines.
  const disabled = format === 'json' ? disabledWarnings() : undefined;
  if (disabled !== undefined) {
    takeWarnings(({ code, message, error }) => {
      if (disabled.has(code) || disabled.has(error?.name ?? 'Warning')) return;
      writeJson('warning', { code, message: message.replace(/^poolwatch: /, '') });
    });
  }
  if (format === 'off') return;
  const text = textFormatter();
  for (const event of reportedEvents) {
    subscribe(
      channelNames[event],
      format === 'json'
        ? (message) => writeJson(event, jsonFields(message))
        : (message) => {
            const line = text(event, message);
            if (line !== undefined) write(line);
          },
    );
  }
}
