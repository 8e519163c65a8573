import { subscribe } from 'node:diagnostics_channel';
import { channelNames } from '../channels.js';
import { jsonFields, reportedEvents, textFormatter } from '../log-format.js';
import type { LogFormat } from './env.js';
import { escapeJson, escapeLines } from '../escape.js';

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

/**
 * Writes what every detector in the process reports to stderr, as `format` says. It
 * listens on poolwatch's diagnostics channels, so pools an app watches with its own
 * detector are logged too. Acquire and release are never subscribed: they stay free.
 */
export function startLog(format: LogFormat): void {
  if (format === 'off') return;
  const text = textFormatter();
  for (const event of reportedEvents) {
    subscribe(
      channelNames[event],
      format === 'json'
        ? (message) => {
            try {
              write(escapeJson(JSON.stringify({ poolwatch: event, time: new Date().toISOString(), ...jsonFields(message) })));
            } catch {
              // A payload that cannot be serialised is skipped, never thrown into the pool.
            }
          }
        : (message) => {
            const line = text(event, message);
            if (line !== undefined) write(line);
          },
    );
  }
}
