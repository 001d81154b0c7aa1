import { readFileSync } from 'node:fs';
import { type ControlReply, DEFAULT_CONTROL_SOCKET, queryControlSocket } from '../server/control-socket.ts';
import { formatReloadReport, type ReloadReport } from '../server/reload.ts';
import { escapeControls, terminalJson, terminalText } from '../util/escape.ts';
import { type FlagSpec, flag, has, type ParsedArgs, UsageError } from './args.ts';

export const RELOAD_FLAGS = [
  { name: 'control-socket', value: true },
  { name: 'pidfile', short: ['p'], value: true },
  { name: 'json', value: false },
] as const satisfies readonly FlagSpec[];

/** What the command touches outside itself (tests replace it). */
export interface ReloadIo {
  out(text: string): void;
  err(text: string): void;
  query(path: string): Promise<ControlReply>;
  readFile(path: string): string;
  signal(pid: number): void;
}

const processIo: ReloadIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  query: (path) => queryControlSocket(path, { cmd: 'reload' }, 30_000),
  readFile: (path) => readFileSync(path, 'utf8'),
  signal: (pid) => process.kill(pid, 'SIGHUP'),
};

/**
 * `poptop reload`: ask the running server to read its configuration again, over the control socket,
 * and print what happened: reloaded (with what changed, what waits for a restart, sessions kept) or
 * the errors with file:line (the running configuration is kept). Exit status 0 when reloaded, 1 when
 * not. `--pidfile FILE` sends SIGHUP to the pid in FILE instead; the server does the same reload and
 * logs the result, but the command cannot see it.
 */
export async function reloadCommand(args: ParsedArgs, io: ReloadIo = processIo): Promise<number> {
  if (args.positional.length > 0)
    throw new UsageError(`reload takes no arguments (got "${args.positional[0]}")`);
  const pidfile = flag(args, 'pidfile');
  if (pidfile !== undefined) {
    if (has(args, 'control-socket') || has(args, 'json'))
      throw new UsageError(
        'reload --pidfile sends SIGHUP; it cannot be combined with --control-socket or --json',
      );
    return sighup(pidfile, io);
  }
  const path = flag(args, 'control-socket') ?? DEFAULT_CONTROL_SOCKET;
  const reply = await io.query(path);
  const report = reply.data as ReloadReport | undefined;
  if (!isReport(report)) {
    const why = reply.ok ? 'an answer without a reload report' : reply.error;
    throw new Error(
      why === 'malformed request'
        ? `the server on ${path} does not know "reload" (started before an upgrade?); send SIGHUP instead: poptop reload --pidfile FILE`
        : `reload failed: ${why}`,
    );
  }
  if (has(args, 'json')) io.out(`${terminalJson(report, 2)}\n`);
  else if (report.ok) io.out(terminalText(formatReloadReport(report)));
  else io.err(terminalText(formatReloadReport(report)));
  return report.ok ? 0 : 1;
}

function sighup(pidfile: string, io: ReloadIo): number {
  let text: string;
  try {
    text = io.readFile(pidfile);
  } catch (e) {
    throw new Error(`cannot read pid file ${pidfile}: ${(e as Error).message}`);
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`pid file ${pidfile} does not hold a process id`);
  // A stale pid file may name an unrelated process, which SIGHUP would usually end: check it is poptop.
  let cmdline: string | undefined;
  try {
    cmdline = io.readFile(`/proc/${pid}/cmdline`).replaceAll('\0', ' ');
  } catch {
    throw new Error(`no process ${pid} (from ${pidfile}) is running: is poptop running?`);
  }
  if (!/poptop/.test(cmdline)) {
    throw new Error(
      `process ${pid} (from ${pidfile}) is not poptop (${escapeControls(cmdline.trim().slice(0, 80))}); not signalling it`,
    );
  }
  try {
    io.signal(pid);
  } catch (e) {
    throw new Error(`cannot signal process ${pid}: ${(e as Error).message}`);
  }
  io.out(`sent SIGHUP to poptop (pid ${pid}); it reloads and logs the result (errors with file:line)\n`);
  return 0;
}

function isReport(v: unknown): v is ReloadReport {
  return typeof v === 'object' && v !== null && typeof (v as ReloadReport).ok === 'boolean';
}
