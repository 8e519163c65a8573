/**
 * What the no-secrets tests read: every debug line, every event payload poolwatch emits,
 * leak reports and what snapshot(), leases(), stats() and check() show.
 */
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import createDebug from 'debug';
import type { Test } from 'tap';
import { LeakReport, type Detector } from '../../lib/index.js';

/**
 * A password or query value that no output holds by chance, so a match can only be a
 * leak: long, random, with a fixed marker. Only characters a URL, a shell word and a
 * JSON string carry unchanged (letters, digits, `-`, `_`), so a leak shows as this very text.
 */
export function distinctive(prefix: string): string {
  return `${prefix}-Zq7xK3-${randomBytes(12).toString('base64url')}`;
}

/** Shorter than this, a secret could match some other text by accident. */
export const distinctiveLength = 16;

/** Turns on `DEBUG=poolwatch*` for this test and collects its lines; restored at teardown. */
export function captureDebug(t: Test): string[] {
  const lines: string[] = [];
  const previous = createDebug.disable();
  const log = createDebug.log;
  createDebug.enable('poolwatch*');
  createDebug.log = (...args: unknown[]) => lines.push(args.map(String).join(' '));
  t.teardown(() => {
    createDebug.log = log;
    createDebug.disable();
    if (previous) createDebug.enable(previous);
  });
  return lines;
}

/** Every event that carries a payload. */
export const payloadEvents = ['acquire', 'release', 'destroy', 'leak', 'leak-released', 'misuse', 'exhausted', 'slow'] as const;
export type PayloadEvent = (typeof payloadEvents)[number];

/** Collects the payload of every event the detector emits. */
export function recordEvents(detector: Detector): unknown[] {
  const seen: unknown[] = [];
  for (const event of payloadEvents) {
    detector.on(event, (payload: unknown) => seen.push(payload));
  }
  return seen;
}

/** Everything a secrecy test looks through, collected as the test runs. */
export interface SecretProbe {
  /** The payload of every event, in order. */
  readonly payloads: unknown[];
  /** The event name of each payload. */
  readonly names: PayloadEvent[];
  /** Every debug line (`DEBUG=poolwatch*`). */
  readonly debug: string[];
  /** What look() saw: where, and its text. */
  readonly views: Array<[string, string]>;
  /** Records what snapshot(), leases(), stats() and check() show now: call it while leases are open. */
  look(): void;
}

const deep = { depth: Infinity, showHidden: true } as const;

function json(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch (error) {
    return `(JSON.stringify threw: ${String(error)})`;
  }
}

/** Turns on debug output and records every event of `detector` and, on look(), its views. */
export function probeSecrets(t: Test, detector: Detector): SecretProbe {
  const payloads: unknown[] = [];
  const names: PayloadEvent[] = [];
  for (const name of payloadEvents) {
    detector.on(name, (payload: unknown) => {
      payloads.push(payload);
      names.push(name);
    });
  }
  const views: Array<[string, string]> = [];
  return {
    payloads,
    names,
    debug: captureDebug(t),
    views,
    look() {
      const leases = detector.leases();
      if (leases.length === 0) throw new Error('look() while leases are open: snapshot() and leases() show none now');
      for (const [what, value] of [
        ['snapshot()', detector.snapshot()],
        ['leases()', leases],
        ['stats()', detector.stats()],
        ['check()', detector.check()],
      ] as const) {
        views.push([`${what} (JSON)`, json(value)], [`${what} (util.inspect)`, inspect(value, deep)]);
      }
    },
  };
}

/**
 * Asserts that no secret appears in a leak report (format(), JSON, message and stack),
 * an event payload (util.inspect with every hidden property at any depth, and JSON), a
 * debug line, or what look() saw; and first that there was something to look at: each
 * of `events` was emitted, a leak reported, debug lines written, and look() called.
 */
export function expectNoSecrets(t: Test, probe: SecretProbe, secrets: Record<string, string>, events: readonly PayloadEvent[]): void {
  for (const [what, value] of Object.entries(secrets)) {
    t.ok(value.length >= distinctiveLength, `the ${what} is distinctive (${value.length} characters): a match can only be it`);
  }
  for (const name of events) t.ok(probe.names.includes(name), `a '${name}' event was emitted`);
  t.ok(probe.views.length > 0, 'snapshot(), leases(), stats() and check() were looked at while leases were open');
  t.ok(probe.debug.length > 0, 'debug output was captured');
  const reports = probe.payloads.filter((payload): payload is LeakReport => payload instanceof LeakReport);
  t.ok(reports.length > 0, 'a leak was reported');

  const places: Array<[string, string]> = [
    ['leak report format()', reports.map((report) => report.format()).join('\n')],
    ['leak report JSON', reports.map(json).join('\n')],
    ['leak report message and stack', reports.map((report) => `${report.message}\n${report.stack}`).join('\n')],
    ['debug output', probe.debug.join('\n')],
    ...probe.views,
  ];
  for (const name of payloadEvents) {
    const payloads = probe.payloads.filter((_, i) => probe.names[i] === name);
    if (payloads.length === 0) continue;
    places.push([`'${name}' payload (util.inspect)`, payloads.map((payload) => inspect(payload, deep)).join('\n')]);
    places.push([`'${name}' payload (JSON)`, payloads.map(json).join('\n')]);
  }
  for (const [what, value] of Object.entries(secrets)) {
    const found = places.filter(([, text]) => text.includes(value)).map(([where]) => where);
    t.same(found, [], `no ${what} in any report, payload, debug line, snapshot(), leases(), stats() or check()`);
  }
}
