import { readFileSync, statSync } from 'node:fs';
import { flag, has, type ParsedArgs, UsageError } from './args.ts';

/**
 * Where `poptop connect` / `poptop load` get the password from, in this order of preference:
 *
 *   --password-file FILE   the first line of FILE (one trailing newline removed)
 *   --password-file -      standard input (the same as --password-stdin)
 *   --password-stdin       standard input; on a terminal, a prompt without echo
 *   POPTOP_PASSWORD        the environment (removed from it once read, so that no child inherits it)
 *   --password P           the command line: works, with a warning, because every local user can
 *                          read it (ps, /proc/PID/cmdline)
 *
 * Giving more than one of the flags is a usage error.
 */
export const PASSWORD_FLAGS = [
  { name: 'password', short: ['p'], value: true },
  { name: 'password-file', value: true },
  { name: 'password-stdin', value: false },
] as const;

export const ENV_PASSWORD = 'POPTOP_PASSWORD';

export const ARGV_PASSWORD_WARNING =
  'a password given with --password can be read by every local user (ps, /proc/PID/cmdline); ' +
  `use --password-file FILE, --password-stdin or ${ENV_PASSWORD} instead`;

/** What password resolution needs from the process (injected by tests). */
export interface PasswordIo {
  env: Record<string, string | undefined>;
  readFile(path: string): string;
  /** File mode bits, to warn about a password file others can read (undefined: unknown). */
  fileMode(path: string): number | undefined;
  /** All of standard input, or one line typed without echo when it is a terminal. */
  readStdin(): Promise<string>;
  warn(message: string): void;
}

export const processPasswordIo: PasswordIo = {
  env: process.env,
  readFile: (path) => readFileSync(path, 'utf8'),
  fileMode: (path) => {
    try {
      return statSync(path).mode;
    } catch {
      return undefined;
    }
  },
  readStdin: () =>
    process.stdin.isTTY ? promptHidden('password: ') : Promise.resolve(readFileSync(0, 'utf8')),
  warn: (message) => process.stderr.write(`poptop: warning: ${message}\n`),
};

/** The password for `command` from the sources above; UsageError when there is none or several. */
export async function resolvePassword(
  args: ParsedArgs,
  command: string,
  io: PasswordIo = processPasswordIo,
): Promise<string> {
  const given = (['password', 'password-file', 'password-stdin'] as const).filter((f) => has(args, f));
  if (given.length > 1) {
    throw new UsageError(
      `${command}: give the password one way only, not ${given.map((f) => `--${f}`).join(' and ')}`,
    );
  }
  const file = flag(args, 'password-file');
  let password: string;
  let source: string;
  if (has(args, 'password-stdin') || file === '-') {
    source = 'standard input';
    password = oneLine(await io.readStdin(), source);
  } else if (file !== undefined) {
    source = file;
    let text: string;
    try {
      text = io.readFile(file);
    } catch (e) {
      throw new Error(`${command}: cannot read the password file ${file}: ${(e as Error).message}`);
    }
    password = oneLine(text, file);
    const mode = io.fileMode(file);
    if (mode !== undefined && (mode & 0o077) !== 0) {
      io.warn(
        `the password file ${file} can be read by other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it`,
      );
    }
  } else if (has(args, 'password')) {
    source = '--password';
    password = flag(args, 'password') ?? '';
    io.warn(ARGV_PASSWORD_WARNING);
  } else if (io.env[ENV_PASSWORD] !== undefined) {
    source = ENV_PASSWORD;
    password = io.env[ENV_PASSWORD] ?? '';
    delete io.env[ENV_PASSWORD];
  } else {
    throw new UsageError(
      `${command} needs a password: --password-file FILE, --password-stdin, or ${ENV_PASSWORD} in the environment`,
    );
  }
  if (password === '') throw new UsageError(`${command}: the password from ${source} is empty`);
  return password;
}

/** The text with one trailing line break removed; more than one line is an error. */
function oneLine(text: string, source: string): string {
  const line = text.replace(/\r?\n$/, '');
  if (/[\r\n]/.test(line)) {
    throw new UsageError(`the password from ${source} has more than one line; put only the password in it`);
  }
  return line;
}

/** Read one line from the terminal without echoing it (Enter ends it, Ctrl-C or Ctrl-D aborts). */
function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let typed = '';
    const finish = (err?: Error): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          finish();
          return;
        }
        if (ch === '\u0003' || ch === '\u0004') {
          finish(new Error('no password entered'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') typed = Array.from(typed).slice(0, -1).join('');
        else if (ch >= ' ') typed += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}
