import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from '../util/log.ts';

/**
 * The local control socket behind `poptop sessions`, `kill` and `reload`: a UNIX stream socket,
 * mode 0600 in a root-only directory, carrying one JSON request line and one JSON reply line.
 */
export const DEFAULT_CONTROL_SOCKET = '/run/poptop/control.sock';

export type ControlRequest =
  | { cmd: 'sessions' }
  | { cmd: 'kill'; target: string }
  | { cmd: 'status' }
  | { cmd: 'reload' };
export type ControlReply = { ok: true; data: unknown } | { ok: false; error: string; data?: unknown };

/** Answers a request; with workers the answer is gathered from each of them (a promise). */
export type ControlHandler = (req: ControlRequest) => ControlReply | Promise<ControlReply>;

const MAX_REQUEST = 4096;

export function parseControlRequest(line: string): ControlRequest | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (o.cmd === 'sessions' || o.cmd === 'status' || o.cmd === 'reload') return { cmd: o.cmd };
  if (o.cmd === 'kill' && typeof o.target === 'string' && o.target.length > 0)
    return { cmd: 'kill', target: o.target };
  return undefined;
}

/** Listen on `path`; only root (the owner) can connect. Returns the server for closing. */
export function listenControlSocket(path: string, handler: ControlHandler, log: Logger): Promise<Server> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (existsSync(path)) unlinkSync(path);
  const server = createServer((sock: Socket) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST) {
        sock.end(`${JSON.stringify({ ok: false, error: 'request too large' })}\n`);
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const req = parseControlRequest(buf.slice(0, nl));
      buf = '';
      sock.pause();
      const answer = (reply: ControlReply): void => {
        if (!sock.destroyed) sock.end(`${JSON.stringify(reply)}\n`);
      };
      const failed = (e: unknown): void => answer({ ok: false, error: (e as Error).message });
      if (!req) answer({ ok: false, error: 'malformed request' });
      else {
        try {
          const reply = handler(req);
          if (reply instanceof Promise) reply.then(answer, failed);
          else answer(reply);
        } catch (e) {
          failed(e);
        }
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      chmodSync(path, 0o600);
      log.debug(`control socket listening on ${path}`);
      server.off('error', reject);
      server.on('error', (e) => log.warn(`control socket: ${e.message}`));
      resolve(server);
    });
  });
}

/** Send one request to a running server. */
export function queryControlSocket(
  path: string,
  req: ControlRequest,
  timeoutMs = 5000,
): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer from ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('data', (d: string) => {
      buf += d;
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
        reject(new Error(`no poptop server is running (nothing listens on ${path})`));
      } else if (e.code === 'EACCES') {
        reject(new Error(`permission denied on ${path}: the control socket is for root only`));
      } else reject(e);
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf.trim()) as ControlReply);
      } catch {
        reject(new Error(`malformed answer from ${path}`));
      }
    });
  });
}
