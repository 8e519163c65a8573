import { channel, type Channel } from 'node:diagnostics_channel';
import { onRejected } from './rejections.js';

/** The `diagnostics_channel` names poolwatch publishes to, by event. */
export const channelNames = {
  acquire: 'poolwatch:acquire',
  release: 'poolwatch:release',
  destroy: 'poolwatch:destroy',
  leak: 'poolwatch:leak',
  'leak-released': 'poolwatch:leak-released',
  misuse: 'poolwatch:misuse',
  exhausted: 'poolwatch:exhausted',
  slow: 'poolwatch:slow',
} as const;

export type ChannelEvent = keyof typeof channelNames;

// Channels are process-wide by name, so every detector publishes to the same ones.
export const channels: { readonly [E in ChannelEvent]: Channel } = {
  acquire: channel(channelNames.acquire),
  release: channel(channelNames.release),
  destroy: channel(channelNames.destroy),
  leak: channel(channelNames.leak),
  'leak-released': channel(channelNames['leak-released']),
  misuse: channel(channelNames.misuse),
  exhausted: channel(channelNames.exhausted),
  slow: channel(channelNames.slow),
};

/** What is told of a subscriber that throws or rejects: the detector publishing. */
export interface SubscriberErrors {
  surface(source: object, what: string, error: unknown): void;
}

// Who is publishing now, read by the subscriber wrappers as Node calls them.
let publisher: SubscriberErrors | undefined;

/** Publishes `payload` on `ch`; what a subscriber throws or rejects with goes to `by`. */
export function publish(ch: Channel, payload: unknown, by: SubscriberErrors): void {
  const before = publisher;
  publisher = by;
  try {
    ch.publish(payload);
  } finally {
    publisher = before;
  }
}

// A subscriber is the app's code that Node calls inside publish(): one that throws becomes
// an uncaughtException on the next tick (Node's rule for every channel), an async one's
// rejection an unhandled rejection, either of which ends the process. So each function
// subscribed to a poolwatch channel (after poolwatch is loaded) is wrapped as it
// subscribes, and what it throws or rejects with is surfaced like a listener's: to the
// publishing detector's 'error' listeners, else once as a process warning.
const wrappers = new WeakMap<Function, (message: unknown, name: string | symbol) => void>();
const isWrapper = new WeakSet<Function>();

function wrap(subscriber: unknown): unknown {
  if (typeof subscriber !== 'function' || isWrapper.has(subscriber)) return subscriber;
  let wrapper = wrappers.get(subscriber);
  if (wrapper === undefined) {
    const fn = subscriber as (message: unknown, name: string | symbol) => unknown;
    wrapper = (message, name) => {
      const by = publisher;
      // Published by someone other than a detector: Node's own rules apply.
      if (by === undefined) return void fn(message, name);
      try {
        const result = fn(message, name);
        if (result !== undefined) onRejected(result, (error) => by.surface(fn, `a '${String(name)}' subscriber rejected`, error));
      } catch (error) {
        by.surface(fn, `a '${String(name)}' subscriber threw`, error);
      }
    };
    isWrapper.add(wrapper);
    wrappers.set(subscriber, wrapper);
  }
  return wrapper;
}

const guarded = Symbol.for('poolwatch.guardedChannel');

for (const ch of Object.values(channels)) {
  if (Object.hasOwn(ch, guarded)) continue;
  // Own properties outlive the prototype swaps Node makes as a channel gains and loses subscribers.
  Object.defineProperties(ch, {
    [guarded]: { value: true },
    subscribe: {
      value: function subscribe(this: Channel, subscriber: unknown) {
        return (Object.getPrototypeOf(this) as Channel).subscribe.call(this, wrap(subscriber) as never);
      },
      configurable: true,
      writable: true,
    },
    unsubscribe: {
      value: function unsubscribe(this: Channel, subscriber: unknown) {
        const wrapper = typeof subscriber === 'function' ? wrappers.get(subscriber) : undefined;
        return (Object.getPrototypeOf(this) as Channel).unsubscribe.call(this, (wrapper ?? subscriber) as never);
      },
      configurable: true,
      writable: true,
    },
  });
}
