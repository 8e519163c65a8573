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
const valued = new Set(['-r', '--require', '--import', '--loader', '--experimental-loader', '-e', '--eval', '-p', '--print', '-C', '--conditions', '--env-file', '--input-type', '--title', '--stack-size', '--max-old-space-size']);

/** Where `--inspect-port`, `--inspect[-brk|-wait]` or `--debug-port` (command line, then NODE_OPTIONS) tell the inspector to open. */
export function inspectPortOf(pid: number): { host: string; port: number } | undefined {
  const words: string[] = [];
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(1);
    for (let i = 0; i < argv.length; i++) {
      const word = argv[i]!;
      if (!word.startsWith('-')) break;
      words.push(word);
      if (valued.has(word)) i++;
    }
  } catch {
    return undefined;
  }
  try {
    const options = /(?:^|\0)NODE_OPTIONS=([^\0]*)/.exec(readFileSync(`/proc/${pid}/environ`, 'utf8'))?.[1];
    if (options !== undefined) words.push(...options.split(/\s+/));
  } catch {
    // Another user's environment: the command line alone.
  }
  let found: { host: string; port: number } | undefined;
  for (const word of words) {
    const match = /^--(?:inspect-port|debug-port|inspect|inspect-brk|inspect-wait)=(?:\[?([^\]]*?)\]?:)?(\d+)$/.exec(word);
    if (match !== null && found === undefined) found = { host: match[1] ?? '127.0.0.1', port: Number(match[2]) };
  }
  return found;
}
