import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/**
 * What Linux's /proc says about a process: its state, whether it handles SIGUSR1, the TCP
 * sockets it holds, and how it was told to open its inspector. Every reader returns
 * undefined where /proc cannot say (another OS, or another user's process).
 */

/** A TCP socket a process holds. */
export interface TcpSocket {
  readonly inode: number;
  readonly address: string;
  readonly port: number;
  readonly remotePort: number;
  readonly state: 'listen' | 'established' | 'other';
}

/** A process as /proc/<pid>/status shows it. */
export interface ProcessStatus {
  readonly name: string;
  readonly zombie: boolean;
  /** Whether it has a handler for SIGUSR1: Node.js has one, to open its inspector. */
  readonly catchesSigusr1: boolean;
}

const sigusr1 = 10n;

export function statusOf(pid: number): ProcessStatus | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const caught = field('SigCgt');
  if (caught === undefined || !/^[0-9a-f]+$/i.test(caught)) return undefined;
  return {
    name: field('Name') ?? '',
    zombie: field('State')?.startsWith('Z') === true,
    catchesSigusr1: ((BigInt(`0x${caught}`) >> (sigusr1 - 1n)) & 1n) === 1n,
  };
}

/** The names of `pid`'s threads (Node.js names its own from version 22 or so: `MainThread`, `InspectorIo`, …). */
export function threadNamesOf(pid: number): string[] | undefined {
  try {
    return readdirSync(`/proc/${pid}/task`).map((tid) => {
      try {
        return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      } catch {
        return '';
      }
    });
  } catch {
    return undefined;
  }
}

function decodeAddress(hex: string): string {
  if (hex.length === 8) return [...Array(4).keys()].map((i) => parseInt(hex.slice(6 - 2 * i, 8 - 2 * i), 16)).join('.');
  // IPv6: four 32-bit words, each in the host's (little-endian) byte order.
  const bytes: number[] = [];
  for (let word = 0; word < 4; word++) for (let i = 3; i >= 0; i--) bytes.push(parseInt(hex.slice(word * 8 + i * 2, word * 8 + i * 2 + 2), 16));
  const zeros = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  if (zeros(0, 16)) return '::';
  if (zeros(0, 15) && bytes[15] === 1) return '::1';
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${bytes.slice(12).join('.')}`;
  return [...Array(8).keys()].map((i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16)).join(':');
}

/** Whether `address` (an IP address) is this machine's loopback, unreachable from others. */
export function isLoopbackAddress(address: string): boolean {
  return /^127\.\d+\.\d+\.\d+$/.test(address) || address === '::1' || /^::ffff:127\.\d+\.\d+\.\d+$/i.test(address);
}

/** Whether a socket listening on `address` takes connections to 127.0.0.1. */
export function reachableFromLoopback(address: string): boolean {
  return address === '127.0.0.1' || address === '0.0.0.0' || address === '::' || address === '::ffff:127.0.0.1';
}

function inodesOf(pid: number): Set<number> | undefined {
  const inodes = new Set<number>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match !== null) inodes.add(Number(match[1]));
    } catch {
      // Closed meanwhile.
    }
  }
  return inodes;
}

function tcpTable(pid: number | 'self'): TcpSocket[] {
  const sockets: TcpSocket[] = [];
  for (const file of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const [address = '', port = ''] = fields[1]!.split(':');
      const remotePort = fields[2]!.split(':')[1] ?? '0';
      sockets.push({
        inode: Number(fields[9]),
        address: decodeAddress(address),
        port: parseInt(port, 16),
        remotePort: parseInt(remotePort, 16),
        state: fields[3] === '0A' ? 'listen' : fields[3] === '01' ? 'established' : 'other',
      });
    }
  }
  return sockets;
}

/** The TCP sockets `pid` holds. */
export function socketsOf(pid: number): TcpSocket[] | undefined {
  const inodes = inodesOf(pid);
  if (inodes === undefined) return undefined;
  return tcpTable(pid).filter((socket) => inodes.has(socket.inode));
}

/** Which process (of those this user can see) listens on `port`; null when none does, undefined when /proc cannot say. */
export function listenerOf(port: number): number | null | undefined {
  let table: TcpSocket[];
  try {
    readdirSync('/proc/self/fd');
    table = tcpTable('self');
  } catch {
    return undefined;
  }
  const socket = table.find((s) => s.state === 'listen' && s.port === port);
  if (socket === undefined) return null;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (inodesOf(Number(entry))?.has(socket.inode) === true) return Number(entry);
  }
  return undefined;
}

// Node options that take their value as the next argument: what follows them is not the script.
const valued = new Set([
  '-r', '--require', '--import', '--loader', '--experimental-loader', '-e', '--eval', '-p', '--print', '-C', '--conditions', '--env-file', '--input-type', '--title', '--stack-size',
  '--max-old-space-size', '--inspect-port', '--debug-port',
]);

/** How a process was told to open its inspector, from its command line and NODE_OPTIONS. */
export interface InspectorOptions {
  /** The host SIGUSR1 opens the inspector on (Node.js's default: 127.0.0.1). */
  readonly host: string;
  /** The port (Node.js's default: 9229; 0 is any free port). */
  readonly port: number;
  /** Whether whoever set `host` said so (else it is the default). */
  readonly hostGiven: boolean;
  /** Started with --disable-sigusr1: SIGUSR1 cannot open its inspector. */
  readonly sigusr1Disabled: boolean;
}

// NODE_OPTIONS as Node.js splits it: on white space, except inside "…", where \ escapes.
function splitNodeOptions(text: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted && c === '\\' && i + 1 < text.length) word = (word ?? '') + text[++i];
    else if (c === '"') {
      quoted = !quoted;
      word ??= '';
    } else if (!quoted && /\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}

// Node.js's own reading of `[host:]port`, `host` or `[ipv6]` (SplitHostPort in src/node_options.cc).
function splitHostPort(value: string): { host: string | undefined; port: number | undefined } {
  const bracketed = /^\[(.*)\]$/.exec(value);
  if (bracketed !== null) return { host: bracketed[1], port: undefined };
  const colon = value.lastIndexOf(':');
  if (colon === -1) return /^\d+$/.test(value) ? { host: undefined, port: Number(value) } : { host: value, port: undefined };
  const host = value.slice(0, colon);
  return { host: /^\[(.*)\]$/.exec(host)?.[1] ?? host, port: Number(value.slice(colon + 1)) };
}

/**
 * Where `--inspect-port`, `--debug-port` and `--inspect[-brk|-wait]=` tell the inspector to
 * open: NODE_OPTIONS first, then the command line, each one setting the host and the port it
 * names, as Node.js applies them. Undefined where /proc cannot say. A host set at run time
 * (`inspector.open(port, host)`) is not here.
 */
export function inspectorOptionsOf(pid: number): InspectorOptions | undefined {
  const words: string[] = [];
  try {
    const options = /(?:^|\0)NODE_OPTIONS=([^\0]*)/.exec(readFileSync(`/proc/${pid}/environ`, 'utf8'))?.[1];
    if (options !== undefined) words.push(...splitNodeOptions(options));
  } catch {
    // Another user's environment: the command line alone.
  }
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(1);
    for (let i = 0; i < argv.length; i++) {
      const word = argv[i]!;
      if (!word.startsWith('-') || word === '--') break;
      words.push(word);
      if (valued.has(word) && i + 1 < argv.length) words.push(argv[++i]!);
    }
  } catch {
    return undefined;
  }
  let host = '127.0.0.1';
  let hostGiven = false;
  let port = 9229;
  let sigusr1Disabled = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--disable-sigusr1') sigusr1Disabled = true;
    const match = /^--(?:inspect-port|debug-port|inspect|inspect-brk|inspect-wait)(?:=(.*))?$/.exec(word);
    if (match === null) continue;
    const value = match[1] ?? (/^--(?:inspect-port|debug-port)$/.test(word) ? words[++i] : undefined);
    if (value === undefined) continue;
    const given = splitHostPort(value);
    if (given.host !== undefined && given.host !== '') {
      host = given.host;
      hostGiven = true;
    }
    if (given.port !== undefined && Number.isInteger(given.port)) port = given.port;
  }
  return { host, port, hostGiven, sigusr1Disabled };
}
