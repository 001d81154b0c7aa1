import { readFileSync } from 'node:fs';
import { ntPasswordHash } from '../crypto/mschap.ts';
import { DEFAULT_CONTROL_SOCKET, queryControlSocket } from '../server/control-socket.ts';
import type { SessionInfo } from '../server/session.ts';
import { escapeControls } from '../util/escape.ts';
import { flag, has, parseArgs, suggest, UsageError } from './args.ts';
import { CONNECT_FLAGS, connect } from './connect.ts';
import { DOCTOR_FLAGS, doctor } from './doctor.ts';
import { LOAD_FLAGS, load } from './load.ts';
import { SERVE_FLAGS, serve } from './serve.ts';

const USAGE = `poptop - PPTP VPN server and client

Usage:
  poptop serve [-c /etc/pptpd.conf] [--fg] [-d] [-l ADDR] [-o OPTIONS] [--secrets FILE] [--tun NAME] [--status ADDR:PORT]
      Run the server. Without -c: the built-in configuration (MS-CHAPv2 + MPPE-128, pool 10.77.0.10-250,
      a generated user printed once). Without --fg it detaches and logs to /var/log/poptop.log.
      --status ADDR:PORT: Prometheus metrics (/metrics) and a live status page (/) on ADDR:PORT
      (PORT alone: 127.0.0.1); off by default.
  poptop connect SERVER --user U --password-file F|- [--mppe 128|56|40|none] [--stateful] [--auth LIST] [-d]
      Connect to a PPTP server, bring up a TUN device with the address it assigns; Ctrl-C disconnects.
      The password: --password-file FILE, --password-file - or --password-stdin (a terminal prompts),
      or POPTOP_PASSWORD; --password P works but every local user can see it in ps.
  poptop load SERVER --user U --password-file F|- [-n SESSIONS] [-c CONCURRENCY] [--hold S] [--json]
      Load generator: many sessions from this host (no TUN each), set-up rate and failures.
  poptop doctor [-c /etc/pptpd.conf] [--json]
      Check the host for what stops PPTP clients (forwarding, firewall for TCP 1723 and GRE, port 1723,
      secrets file, pool, MTU, TUN, address clashes); each finding with its fix. Exit 1 on a blocker.
  poptop sessions [--json]          List live sessions (id, user, peer, IP, auth, MPPE, uptime, traffic).
  poptop kill ID|USER|IP            End a session cleanly.
  poptop hash-password [PASSWORD]   Print the $NT$ form of a password for chap-secrets (reads stdin if omitted).
  poptop help | version
`;

const COMMANDS = [
  'serve',
  'connect',
  'load',
  'doctor',
  'sessions',
  'kill',
  'hash-password',
  'help',
  'version',
];

/** Entry point of the `poptop` executable; resolves with the exit code. */
export async function run(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'serve':
        return await serve(parseArgs(rest, SERVE_FLAGS));
      case 'connect':
        return await connect(parseArgs(rest, CONNECT_FLAGS));
      case 'load':
        return await load(parseArgs(rest, LOAD_FLAGS));
      case 'doctor':
        return doctor(parseArgs(rest, DOCTOR_FLAGS));
      case 'sessions':
        return await sessions(rest);
      case 'kill':
        return await kill(rest);
      case 'hash-password':
        return hashPassword(rest);
      case 'version':
      case '--version':
        process.stdout.write(`poptop ${version()}\n`);
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return 0;
      default: {
        const hint = suggest(cmd, COMMANDS);
        throw new UsageError(`unknown command "${cmd}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
      }
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`poptop: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`poptop: ${terminalText((e as Error).message)}\n`);
    return 1;
  }
}

/** A message for the terminal: its lines kept, every control character in them escaped. */
export function terminalText(text: string): string {
  return text.split('\n').map(escapeControls).join('\n');
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

const ADMIN_FLAGS = [
  { name: 'json', value: false },
  { name: 'control-socket', value: true },
] as const;

async function sessions(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ADMIN_FLAGS);
  const reply = await queryControlSocket(flag(args, 'control-socket') ?? DEFAULT_CONTROL_SOCKET, {
    cmd: 'sessions',
  });
  if (!reply.ok) throw new Error(reply.error);
  const list = reply.data as SessionInfo[];
  if (has(args, 'json')) {
    process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(formatSessions(list));
  return 0;
}

/**
 * The sessions as a table for the terminal. The user name is what the peer sent: every cell is
 * passed through escapeControls(), so a name cannot break the table or send escape sequences to
 * the terminal (`--json` output is JSON, which escapes control characters itself).
 */
export function formatSessions(list: SessionInfo[]): string {
  if (list.length === 0) return 'no sessions\n';
  const rows = [
    ['ID', 'USER', 'PEER', 'IP', 'AUTH', 'MPPE', 'STATE', 'UPTIME', 'IN', 'OUT'],
    ...list.map((s) =>
      [
        s.id,
        s.user ?? '-',
        s.peer,
        s.ip ?? '-',
        s.auth ?? '-',
        s.mppe ?? '-',
        s.state,
        formatDuration(s.uptimeS),
        `${formatBytes(s.bytesIn)}/${s.packetsIn}p`,
        `${formatBytes(s.bytesOut)}/${s.packetsOut}p`,
      ].map((cell) => escapeControls(String(cell))),
    ),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return `${rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

function formatDuration(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}K`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)}M`;
  return `${(n / 1024 ** 3).toFixed(2)}G`;
}

async function kill(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ADMIN_FLAGS);
  const target = args.positional[0];
  if (!target || args.positional.length > 1)
    throw new UsageError('kill takes one session id, user name or IP address');
  const reply = await queryControlSocket(flag(args, 'control-socket') ?? DEFAULT_CONTROL_SOCKET, {
    cmd: 'kill',
    target,
  });
  if (!reply.ok) throw new Error(reply.error);
  process.stdout.write(`closing ${escapeControls((reply.data as string[]).join(', '))}\n`);
  return 0;
}

function hashPassword(argv: string[]): number {
  const password = argv[0] ?? readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  if (!password) throw new UsageError('hash-password needs a password (argument or stdin)');
  const hex = Buffer.from(ntPasswordHash(password)).toString('hex').toUpperCase();
  process.stdout.write(`$NT$${hex}\n`);
  return 0;
}
