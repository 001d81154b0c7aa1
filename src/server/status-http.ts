import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StatusAddress } from '../config/status-address.ts';
import { escapeControls } from '../util/escape.ts';
import type { Logger } from '../util/log.ts';
import { extend } from '../util/objects.ts';
import { type FailureRecord, RECENT_FAILURES, type ServerMetrics } from './metrics.ts';
import { bySessionNumber, type SessionInfo } from './session.ts';
import {
  MAX_LISTED,
  renderStatusPage,
  STATUS_CSS,
  STATUS_JS,
  type StatusSession,
  type StatusSnapshot,
} from './status-page.ts';

/**
 * The status listener (`--status ADDR:PORT`, pptpd.conf `status`): GET /metrics for Prometheus,
 * GET / for the live page, GET /api/status for its script, POST /api/kill for its kill buttons.
 *
 * Protection of the kill button against other web sites and other users:
 * - a per-process random token is required by POST /api/kill, with a JSON body (a cross-site form
 *   cannot send one without a CORS preflight, which we never grant) and an Origin header naming
 *   this listener;
 * - on a loopback listener the page carries the token, and every request must name this listener
 *   in its Host header (a DNS-rebound name gets 421, so a foreign page cannot read the token);
 * - on any other address the page does not carry it: /api/status and /api/kill need it (header
 *   X-Poptop-Token), and the admin opens the page as http://ADDR:PORT/#token=..., with the token
 *   from the file the start-up log names (root only). /metrics stays open there, as Prometheus
 *   expects; it carries no user names or addresses.
 */

export function isLoopback(host: string): boolean {
  return host.startsWith('127.');
}

/** What the listener reads and does (server/server.ts PptpServer, through makeStatusSource). */
export interface StatusSource {
  readonly liveSessions: Iterable<{ readonly id: string; info(): SessionInfo; kill(reason: string): void }>;
  readonly leases: { readonly poolSize: number; readonly poolFree: number };
  readonly currentSettings: { readonly maxConnections: number };
}

export const KILL_REASON = 'closed by the administrator (status page)';

/** The page's data: at most MAX_LISTED sessions, network text made visible. */
export function buildSnapshot(
  src: StatusSource,
  metrics: ServerMetrics,
  tokenRequired: boolean,
  now = Date.now(),
): StatusSnapshot {
  const sessions: StatusSession[] = [];
  let count = 0;
  for (const s of src.liveSessions) {
    count++;
    if (sessions.length >= MAX_LISTED) continue;
    const i = s.info();
    sessions.push(extend(i, { user: i.user === null ? null : escapeControls(i.user) }));
  }
  return {
    now,
    startedAt: metrics.startedAt,
    sessions,
    sessionCount: count,
    sessionLimit: src.currentSettings.maxConnections,
    pool: { size: src.leases.poolSize, free: src.leases.poolFree },
    totals: metrics.totals(),
    failures: [...metrics.recentFailures()],
    tokenRequired,
  };
}

/**
 * Where the listener gets what it shows and how it kills: one process's server and metrics
 * (localStatus), or a primary gathering them from its workers (server/workers/primary.ts). The
 * answers may be promises (the workers are asked over IPC).
 */
export interface StatusProvider {
  /** The Prometheus text of GET /metrics. */
  metrics(): string | Promise<string>;
  snapshot(tokenRequired: boolean): StatusSnapshot | Promise<StatusSnapshot>;
  /** Ends session `id` (an exact "s12"); false when there is none. */
  kill(id: string, reason: string): boolean | Promise<boolean>;
}

/** The provider of a single process: its own server and metrics. */
export function localStatus(src: StatusSource, metrics: ServerMetrics): StatusProvider {
  return {
    metrics: () => metrics.render(),
    snapshot: (tokenRequired) => buildSnapshot(src, metrics, tokenRequired),
    kill: (id, reason) => {
      for (const s of src.liveSessions) {
        if (s.id === id) {
          s.kill(reason);
          return true;
        }
      }
      return false;
    },
  };
}

/**
 * The workers' snapshots as one: their sessions (at most MAX_LISTED, in session order), counts and
 * traffic summed, the newest failures of all; what only the primary knows (start, limit, pool) in
 * `primary`.
 */
export function mergeSnapshots(
  parts: readonly StatusSnapshot[],
  primary: Pick<StatusSnapshot, 'now' | 'startedAt' | 'sessionLimit' | 'pool' | 'tokenRequired'>,
): StatusSnapshot {
  const totals = { bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0 };
  let sessionCount = 0;
  const sessions: StatusSession[] = [];
  const failures: FailureRecord[] = [];
  for (const p of parts) {
    sessionCount += p.sessionCount;
    sessions.push(...p.sessions);
    failures.push(...p.failures);
    totals.bytesIn += p.totals.bytesIn;
    totals.bytesOut += p.totals.bytesOut;
    totals.packetsIn += p.totals.packetsIn;
    totals.packetsOut += p.totals.packetsOut;
  }
  sessions.sort(bySessionNumber);
  failures.sort((a, b) => a.at - b.at);
  return extend(primary, {
    sessions: sessions.slice(0, MAX_LISTED),
    sessionCount,
    totals,
    failures: failures.slice(-RECENT_FAILURES),
  });
}

const COMMON_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
};

const PAGE_HEADERS = extend(COMMON_HEADERS, {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
});

const MAX_BODY = 1024;

/** Connections the status listener holds at once; more are closed as they come. */
export const STATUS_MAX_CONNECTIONS = 32;

export class StatusHttpServer {
  readonly token: string;
  private readonly provider: StatusProvider;
  private readonly log: Logger;
  private readonly address: StatusAddress;
  private readonly loopback: boolean;
  private readonly http: Server;
  private port = 0;

  constructor(o: { address: StatusAddress; provider: StatusProvider; log: Logger; token?: string }) {
    this.address = o.address;
    this.provider = o.provider;
    this.log = o.log;
    this.loopback = isLoopback(o.address.host);
    this.token = o.token ?? randomBytes(24).toString('hex');
    this.http = createServer((req, res) => {
      const failed = (e: unknown): void => {
        this.log.warn(
          `status listener: ${req.method} ${escapeControls(req.url ?? '')}: ${(e as Error).message}`,
        );
        if (!res.headersSent) this.send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
        else res.destroy();
      };
      try {
        this.handle(req, res).catch(failed);
      } catch (e) {
        failed(e);
      }
    });
    this.http.headersTimeout = 10_000;
    this.http.requestTimeout = 15_000;
    this.http.maxHeadersCount = 64;
    // Anyone who can reach the port may connect (off loopback too): idle sockets are bounded.
    this.http.maxConnections = STATUS_MAX_CONNECTIONS;
  }

  /** Start listening; resolves with the bound port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.address.port, this.address.host, () => {
        this.http.off('error', reject);
        this.http.on('error', (e) => this.log.warn(`status listener: ${e.message}`));
        this.port = (this.http.address() as AddressInfo).port;
        resolve(this.port);
      });
    });
  }

  close(): void {
    this.http.close();
    this.http.closeAllConnections();
  }

  /** The Host header values a loopback listener answers to. */
  private hostAllowed(host: string | undefined): boolean {
    if (!this.loopback) return true;
    return (
      host === `${this.address.host}:${this.port}` ||
      host === `localhost:${this.port}` ||
      host === `127.0.0.1:${this.port}`
    );
  }

  private tokenMatches(req: IncomingMessage): boolean {
    const given = req.headers['x-poptop-token'];
    if (typeof given !== 'string') return false;
    const a = Buffer.from(given);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.hostAllowed(req.headers.host)) {
      this.send(res, 421, 'text/plain; charset=utf-8', 'this listener answers only to its own address\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0]!;
    const method = req.method ?? 'GET';
    if (path === '/api/kill') {
      if (method !== 'POST') {
        this.json(res, 405, { error: 'POST only' }, { Allow: 'POST' });
        return;
      }
      this.kill(req, res);
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      this.json(res, 405, { error: 'GET only' }, { Allow: 'GET, HEAD' });
      return;
    }
    switch (path) {
      case '/metrics': {
        this.send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', await this.provider.metrics());
        return;
      }
      case '/':
      case '/index.html': {
        const snap = await this.provider.snapshot(!this.loopback);
        if (!this.loopback) {
          // Without the token, the page shows no names or addresses; its script fetches them with it.
          snap.sessions = [];
          snap.failures = [];
        }
        const html = renderStatusPage(snap, this.loopback ? this.token : undefined);
        this.send(res, 200, 'text/html; charset=utf-8', html, PAGE_HEADERS);
        return;
      }
      case '/status.js': {
        this.send(res, 200, 'text/javascript; charset=utf-8', STATUS_JS);
        return;
      }
      case '/favicon.ico': {
        res.writeHead(204, COMMON_HEADERS);
        res.end();
        return;
      }
      case '/status.css': {
        this.send(res, 200, 'text/css; charset=utf-8', STATUS_CSS);
        return;
      }
      case '/api/status': {
        if (!this.loopback && !this.tokenMatches(req)) {
          this.json(res, 401, { error: 'this listener needs the token (header X-Poptop-Token)' });
        } else this.json(res, 200, await this.provider.snapshot(!this.loopback));
        return;
      }
      default: {
        this.send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
        return;
      }
    }
  }

  /** Why a POST /api/kill is not from our own page, or undefined when it is. */
  private crossSite(req: IncomingMessage): string | undefined {
    const origin = req.headers.origin;
    if (origin !== `http://${req.headers.host}`) return 'the request does not come from this page (Origin)';
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin') return 'the request comes from another site';
    if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return 'JSON body expected';
    if (!this.tokenMatches(req)) return 'missing or wrong token';
    return undefined;
  }

  private kill(req: IncomingMessage, res: ServerResponse): void {
    const refusal = this.crossSite(req);
    if (refusal) {
      this.log.warn(`status page: kill refused: ${refusal}`);
      req.resume();
      this.json(res, 403, { error: refusal });
      return;
    }
    let body = '';
    let tooLarge = false;
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
      if (body.length > MAX_BODY) tooLarge = true;
    });
    req.on('end', async () => {
      if (tooLarge) {
        this.json(res, 413, { error: 'request too large' });
        return;
      }
      let id: unknown;
      try {
        id = (JSON.parse(body) as { id?: unknown }).id;
      } catch {
        id = undefined;
      }
      if (typeof id !== 'string' || !/^s\d{1,12}$/.test(id)) {
        this.json(res, 400, { error: 'expected {"id": "s12"}' });
        return;
      }
      let found: boolean;
      try {
        found = await this.provider.kill(id, KILL_REASON);
      } catch (e) {
        this.log.warn(`status page: closing ${id} failed: ${(e as Error).message}`);
        this.json(res, 500, { error: 'internal error' });
        return;
      }
      if (!found) {
        this.json(res, 404, { error: `no session ${id}` });
        return;
      }
      this.log.info(`status page: closing ${id}`);
      this.json(res, 200, { closed: [id] });
    });
  }

  private json(
    res: ServerResponse,
    status: number,
    value: unknown,
    extra: Record<string, string> = {},
  ): void {
    this.send(
      res,
      status,
      'application/json; charset=utf-8',
      JSON.stringify(value),
      extend(COMMON_HEADERS, extra),
    );
  }

  private send(
    res: ServerResponse,
    status: number,
    type: string,
    body: string,
    headers: Record<string, string> = COMMON_HEADERS,
  ): void {
    res.writeHead(
      status,
      extend(headers, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) }),
    );
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }
}
