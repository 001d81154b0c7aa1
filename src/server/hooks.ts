import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { escapeControls } from '../util/escape.ts';
import type { Logger } from '../util/log.ts';

/**
 * pppd-compatible ip-up / ip-down scripts: called with
 *   interface-name tty-device speed local-IP-address remote-IP-address ipparam
 * and the environment pppd sets (IFNAME, IPLOCAL, IPREMOTE, PEERNAME, SPEED, ORIG_UID, PPPLOGNAME,
 * CONNECT_TIME, BYTES_SENT, BYTES_RCVD for ip-down, DNS1/DNS2 when known), plus poptop's
 * POPTOP_SESSION and, with `plugin radattr.so`, RADATTR (the session's attributes file).
 *
 * PEERNAME is the name the peer sent, and ipparam may hold text from elsewhere: every argument and
 * environment value is passed through escapeControls(), so a script never receives a line feed, a
 * NUL (which execve cannot carry at all) or a terminal escape sequence from the network; they arrive
 * as visible backslash escapes (`\n`, `\x00`, `\x1b`).
 */
export interface HookContext {
  ifname: string;
  localIp: string;
  remoteIp: string;
  peerName: string;
  ipparam: string;
  speed: number;
  /** Session id for log lines. */
  sessionId: string;
  connectTimeS?: number;
  bytesSent?: number;
  bytesReceived?: number;
  dns?: string[];
  /** The session's RADIUS attributes file (`plugin radattr.so`), passed as RADATTR. */
  radattr?: string;
}

export function hookEnvironment(ctx: HookContext): Record<string, string> {
  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin',
    IFNAME: ctx.ifname,
    DEVICE: ctx.ifname,
    IPLOCAL: ctx.localIp,
    IPREMOTE: ctx.remoteIp,
    PEERNAME: ctx.peerName,
    SPEED: String(ctx.speed),
    ORIG_UID: '0',
    PPPLOGNAME: 'root',
    IPPARAM: ctx.ipparam,
    POPTOP_SESSION: ctx.sessionId,
  };
  if (ctx.connectTimeS !== undefined) env.CONNECT_TIME = String(Math.round(ctx.connectTimeS));
  if (ctx.bytesSent !== undefined) env.BYTES_SENT = String(ctx.bytesSent);
  if (ctx.bytesReceived !== undefined) env.BYTES_RCVD = String(ctx.bytesReceived);
  if (ctx.radattr !== undefined) env.RADATTR = ctx.radattr;
  ctx.dns?.forEach((d, i) => {
    env[`DNS${i + 1}`] = d;
  });
  for (const k of Object.keys(env)) env[k] = escapeControls(env[k]!);
  return env;
}

/** pppd's argv for ip-up/ip-down: interface tty-device speed local-IP remote-IP ipparam (escaped). */
export function hookArguments(ctx: HookContext): string[] {
  return [ctx.ifname, ctx.ifname, String(ctx.speed), ctx.localIp, ctx.remoteIp, ctx.ipparam].map(
    escapeControls,
  );
}

/** Whether each script was there, and when that was looked at (a burst of sessions asks once). */
const seen = new Map<string, { exists: boolean; at: number }>();
/** How long an answer about a script's presence holds: one added or removed is seen within it. */
export const HOOK_PRESENCE_MS = 1000;

function scriptPresent(script: string): boolean {
  const now = Date.now();
  const known = seen.get(script);
  if (known && now - known.at < HOOK_PRESENCE_MS) return known.exists;
  const exists = existsSync(script);
  if (seen.size >= 16 && !known) seen.clear();
  seen.set(script, { exists, at: now });
  return exists;
}

/**
 * Run a hook script if it exists (looked at once a second at most); its failure is logged, never
 * fatal. Resolves when it exits.
 */
export function runHook(script: string, ctx: HookContext, log: Logger, timeoutMs = 30_000): Promise<void> {
  if (!script || !scriptPresent(script)) return Promise.resolve();
  const args = hookArguments(ctx);
  return new Promise((resolve) => {
    execFile(script, args, { env: hookEnvironment(ctx), timeout: timeoutMs }, (err, _stdout, stderr) => {
      if (err) {
        log.warn(
          `${script} failed: ${err.message.split('\n')[0]}${stderr ? ` (${stderr.trim().slice(0, 200)})` : ''}`,
        );
      } else log.debug(`${script} done`);
      resolve();
    });
  });
}
