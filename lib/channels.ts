import { channel, type Channel } from 'node:diagnostics_channel';

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
