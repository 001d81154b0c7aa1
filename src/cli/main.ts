import { readFileSync } from 'node:fs';
import { ntPasswordHash } from '../crypto/mschap.ts';
import { DEFAULT_CONTROL_SOCKET, queryControlSocket } from '../server/control-socket.ts';
import type { SessionInfo } from '../server/session.ts';
import { escapeControls, terminalJson, terminalText } from '../util/escape.ts';
import { type FlagSpec, flag, has, parseArgs, suggest, UsageError } from './args.ts';
import { CONNECT_FLAGS, connect } from './connect.ts';
import { DOCTOR_FLAGS, doctor } from './doctor.ts';
import { commandHelp, USAGE, wantsHelp } from './help.ts';
import { LOAD_FLAGS, load } from './load.ts';
import { RELOAD_FLAGS, reloadCommand } from './reload.ts';
import { SERVE_FLAGS, serve } from './serve.ts';

export const COMMANDS = [
  'serve',
  'connect',
  'load',
  'doctor',
  'sessions',
  'kill',
  'reload',
  'hash-password',
  'help',
  'version',
] as const;

/** Entry point of the `poptop` executable; resolves with the exit code. */
export async function run(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd !== undefined && cmd in COMMAND_FLAGS && wantsHelp(rest)) {
      process.stdout.write(commandHelp(cmd));
      return 0;
    }
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
      case 'reload':
        return await reloadCommand(parseArgs(rest, RELOAD_FLAGS));
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
        process.stdout.write(commandHelp(rest[0] ?? 'help'));
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

/** The flags each command accepts (`--help` and the man page document them; test/cli/help.test.ts). */
export const COMMAND_FLAGS: Record<(typeof COMMANDS)[number], readonly FlagSpec[]> = {
  serve: SERVE_FLAGS,
  connect: CONNECT_FLAGS,
  load: LOAD_FLAGS,
  sessions: ADMIN_FLAGS,
  kill: ADMIN_FLAGS,
  reload: RELOAD_FLAGS,
  doctor: DOCTOR_FLAGS,
  'hash-password': [],
  help: [],
  version: [],
};

async function sessions(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ADMIN_FLAGS);
  const reply = await queryControlSocket(flag(args, 'control-socket') ?? DEFAULT_CONTROL_SOCKET, {
    cmd: 'sessions',
  });
  if (!reply.ok) throw new Error(reply.error);
  const list = reply.data as SessionInfo[];
  if (has(args, 'json')) {
    process.stdout.write(`${terminalJson(list, 2)}\n`);
    return 0;
  }
  process.stdout.write(formatSessions(list));
  return 0;
}

/**
 * The sessions as a table for the terminal. The user name is what the peer sent: every cell is
 * passed through escapeControls(), so a name cannot break the table or send escape sequences to
 * the terminal (`--json` output goes through terminalJson(), which does the same in JSON).
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
  if (has(args, 'json')) {
    process.stdout.write(`${terminalJson(reply.data)}\n`);
    return 0;
  }
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
