import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import type { Clock, TimerHandle } from '../../util/clock.ts';
import { DropCounter } from '../../util/counters.ts';
import type { Logger } from '../../util/log.ts';
import { isProtocolError } from '../../wire/errors.ts';
import {
  decodeRadiusPacket,
  type RadiusAttribute,
  type RadiusPacket,
  signRadiusPacket,
  verifyRadiusResponse,
} from './codec.ts';
import { codeName, RadiusCode } from './dictionary.ts';

/** One RADIUS server: where it is and the secret shared with it. */
export interface RadiusServer {
  host: string;
  port: number;
  secret: string;
}

/** Datagrams to and from the RADIUS servers (a real UDP socket, or a test's). */
export interface RadiusTransport {
  send(bytes: Uint8Array, host: string, port: number): void;
  onMessage(fn: (bytes: Uint8Array, host: string, port: number) => void): void;
  /** While requests are pending the transport keeps the process alive (SIGTERM flushes). */
  setBusy(busy: boolean): void;
  close(): void;
}

/**
 * A UDP socket on an ephemeral port (of `bindAddress`, pppd radiusclient's `bindaddr`), opened at
 * the first request: a process that never sends one (the primary of `workers N` for
 * authentication: its workers ask) holds no socket for it.
 */
export function udpTransport(bindAddress?: string): RadiusTransport {
  let socket: Socket | undefined;
  const handlers: ((bytes: Uint8Array, host: string, port: number) => void)[] = [];
  let busy = false;
  let closed = false;
  const open = (): Socket => {
    const s = createSocket('udp4');
    s.bind(0, bindAddress);
    if (!busy) s.unref();
    s.on('error', () => {
      // Send errors (EHOSTUNREACH...) show up as timeouts of the request; nothing to do here.
    });
    s.on('message', (msg, rinfo) => {
      const bytes = new Uint8Array(msg);
      for (const fn of handlers) fn(bytes, rinfo.address, rinfo.port);
    });
    return s;
  };
  return {
    send: (bytes, host, port) => {
      if (closed) return;
      socket ??= open();
      socket.send(bytes, port, host);
    },
    onMessage: (fn) => {
      handlers.push(fn);
    },
    setBusy: (b) => {
      busy = b;
      if (b) socket?.ref();
      else socket?.unref();
    },
    close: () => {
      closed = true;
      socket?.close();
      socket = undefined;
    },
  };
}

export interface RadiusClientOptions {
  /** Servers in order of preference: the first that answers is used. */
  servers: RadiusServer[];
  /** Wait for an answer to one transmission (radiusclient `radius_timeout`, seconds there). */
  timeoutMs: number;
  /** Transmissions to one server before it counts as down and the next is tried (`radius_retries`). */
  tries: number;
  /** How long a server that stopped answering is tried only after the others (`radius_deadtime`). */
  deadtimeMs: number;
  /** "authentication" or "accounting": named in log lines. */
  purpose: string;
  clock: Clock;
  log: Logger;
  transport?: RadiusTransport;
  random?: (n: number) => Uint8Array;
}

/** What a request builder is given for one transmission to one server. */
export interface BuildContext {
  server: RadiusServer;
  secret: Uint8Array;
  /** The Request Authenticator (Access-Request: random, known before the attributes are). */
  authenticator: Uint8Array;
  /** Milliseconds since the request was first sent (Acct-Delay-Time). */
  elapsedMs: number;
}

export interface RadiusRequest {
  code: number;
  /** The attributes for one server (hidden values depend on its secret and the authenticator). */
  attributes: (ctx: BuildContext) => RadiusAttribute[];
}

export interface RadiusReply {
  packet: RadiusPacket;
  server: RadiusServer;
  secret: Uint8Array;
  /** The Request Authenticator of the request answered (needed to decrypt MPPE keys). */
  requestAuthenticator: Uint8Array;
}

/** No server answered. */
export class RadiusTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RadiusTimeoutError';
  }
}

/** The request was cancelled by its sender (the session it was for ended). */
export class RadiusCancelledError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RadiusCancelledError';
  }
}

/** All 256 Identifiers of a server were in use and too many requests were already waiting for one. */
export class RadiusBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RadiusBusyError';
  }
}

/** Requests that may wait for a free Identifier of one server before new ones are refused. */
export const MAX_ID_WAITERS = 1024;

interface ServerState {
  server: RadiusServer;
  secret: Uint8Array;
  label: string;
  down: boolean;
  /** clock.now() until which the server is tried last. */
  skipUntil: number;
  nextId: number;
  pending: Map<number, Pending>;
  /** Requests waiting for an Identifier to be freed (all 256 in use), first come first served. */
  waiters: ((id: number) => void)[];
}

interface Pending {
  code: number;
  authenticator: Uint8Array;
  resolve(reply: RadiusReply): void;
}

/** The replies each request code accepts. */
const REPLY_CODES: Record<number, readonly number[]> = {
  [RadiusCode.AccessRequest]: [RadiusCode.AccessAccept, RadiusCode.AccessReject, RadiusCode.AccessChallenge],
  [RadiusCode.AccountingRequest]: [RadiusCode.AccountingResponse],
  [RadiusCode.StatusServer]: [RadiusCode.AccessAccept, RadiusCode.AccountingResponse],
};

/**
 * A RADIUS client for one purpose (authentication or accounting) over several servers.
 *
 * A request goes to the first server not known to be down, is sent again every `timeoutMs` up to
 * `tries` times (an Access-Request with the same Identifier and octets, RFC 5080 §2.2.1; an
 * Accounting-Request with a new Identifier and Acct-Delay-Time each time, RFC 2866 §5.2), then the
 * next server is tried. A server that gave no answer is down: that is logged once, in words, and it
 * is tried after the others for `deadtimeMs`; its first answer again is logged once too. When no
 * server answers the request fails with RadiusTimeoutError.
 *
 * Replies are matched by server address, port and Identifier, and must pass the Response
 * Authenticator check; Access-Accept/Reject/Challenge must carry a valid Message-Authenticator
 * (BlastRADIUS, CVE-2024-3596). Anything else is dropped and counted, each reason logged once.
 */
export class RadiusClient {
  readonly drops: DropCounter;
  private readonly opts: RadiusClientOptions;
  private readonly servers: ServerState[];
  private readonly transport: RadiusTransport;
  private readonly random: (n: number) => Uint8Array;
  private pendingCount = 0;
  private closed = false;

  constructor(opts: RadiusClientOptions) {
    if (opts.servers.length === 0) throw new Error(`no RADIUS ${opts.purpose} server configured`);
    this.opts = opts;
    this.drops = new DropCounter(opts.log, `RADIUS ${opts.purpose} reply`);
    this.random = opts.random ?? ((n) => new Uint8Array(randomBytes(n)));
    this.servers = opts.servers.map((server) => ({
      server,
      secret: new TextEncoder().encode(server.secret),
      label: `${server.host}:${server.port}`,
      down: false,
      skipUntil: 0,
      nextId: this.random(1)[0] ?? 0,
      pending: new Map(),
      waiters: [],
    }));
    this.transport = opts.transport ?? udpTransport();
    this.transport.onMessage((bytes, host, port) => this.receive(bytes, host, port));
  }

  /** Requests sent (each transmission, retransmissions included), replies, timeouts (metrics). */
  readonly stats = { transmissions: 0, replies: 0, timeouts: 0, failed: 0 };

  get purpose(): string {
    return this.opts.purpose;
  }

  /** Servers known to be down now (for status and tests). */
  get downServers(): string[] {
    return this.servers.filter((s) => s.down).map((s) => s.label);
  }

  /**
   * Send `req` until a server answers; rejects with RadiusTimeoutError when none does. Aborting
   * `signal` stops retransmission at once and frees the request's Identifier (RadiusCancelledError).
   * When all 256 Identifiers of a server are in use the request waits for one; when
   * MAX_ID_WAITERS requests already wait it fails with RadiusBusyError.
   */
  async send(req: RadiusRequest, signal?: AbortSignal): Promise<RadiusReply> {
    if (this.closed) throw new RadiusTimeoutError(`the RADIUS ${this.opts.purpose} client is closed`);
    const started = this.opts.clock.now();
    const tried: string[] = [];
    this.busy(+1);
    try {
      for (const s of this.order()) {
        if (signal?.aborted) break;
        const reply = await this.tryServer(s, req, started, signal);
        if (reply) return reply;
        if (signal?.aborted) break;
        tried.push(s.label);
        if (this.closed) break;
      }
    } finally {
      this.busy(-1);
    }
    if (signal?.aborted)
      throw new RadiusCancelledError(`the RADIUS ${this.opts.purpose} request was cancelled`);
    const each = `${this.opts.tries} ${this.opts.tries === 1 ? 'try' : 'tries'} of ${this.opts.timeoutMs / 1000} s each`;
    this.stats.failed++;
    throw new RadiusTimeoutError(
      `no RADIUS ${this.opts.purpose} server answered (${tried.join(', ')}; ${each})`,
    );
  }

  close(): void {
    this.closed = true;
    for (const s of this.servers) {
      s.pending.clear();
      for (const wake of s.waiters.splice(0)) wake(-1);
    }
    this.transport.close();
  }

  /** Servers up (or whose dead time is over) in configured order, then the others. */
  private order(): ServerState[] {
    const now = this.opts.clock.now();
    const first = this.servers.filter((s) => !s.down || s.skipUntil <= now);
    const last = this.servers.filter((s) => s.down && s.skipUntil > now);
    return [...first, ...last];
  }

  /** Up to `tries` transmissions to one server; undefined when it never answered. */
  private async tryServer(
    s: ServerState,
    req: RadiusRequest,
    started: number,
    signal: AbortSignal | undefined,
  ): Promise<RadiusReply | undefined> {
    const random = req.code === RadiusCode.AccessRequest || req.code === RadiusCode.StatusServer;
    let bytes: Uint8Array | undefined;
    let id = -1;
    let authenticator: Uint8Array = new Uint8Array(16);
    for (let attempt = 0; attempt < this.opts.tries && !this.closed && !signal?.aborted; attempt++) {
      if (!bytes || !random) {
        if (id >= 0) this.releaseId(s, id);
        // Synchronously when an Identifier is free (the first transmission leaves at once).
        id = s.waiters.length === 0 ? this.allocateId(s) : -1;
        if (id < 0) id = await this.waitForId(s, signal);
        if (id < 0) return undefined; // cancelled or closed while waiting for an Identifier
        authenticator = random ? this.random(16) : new Uint8Array(16);
        const ctx = {
          server: s.server,
          secret: s.secret,
          authenticator,
          elapsedMs: this.opts.clock.now() - started,
        };
        bytes = signRadiusPacket(
          { code: req.code, id, authenticator, attributes: req.attributes(ctx) },
          s.secret,
          { messageAuthenticator: true },
        );
        if (!random) authenticator = bytes.slice(4, 20);
      }
      this.stats.transmissions++;
      const reply = await this.exchange(s, id, req.code, authenticator, bytes, signal);
      if (reply) {
        this.stats.replies++;
        this.releaseId(s, id);
        this.markUp(s);
        return reply;
      }
      if (!signal?.aborted) this.stats.timeouts++;
    }
    if (id >= 0) this.releaseId(s, id);
    if (!this.closed && !signal?.aborted) this.markDown(s);
    return undefined;
  }

  /** One transmission: resolves with the reply, or undefined after timeoutMs. */
  private exchange(
    s: ServerState,
    id: number,
    code: number,
    authenticator: Uint8Array,
    bytes: Uint8Array,
    signal: AbortSignal | undefined,
  ): Promise<RadiusReply | undefined> {
    return new Promise((resolve) => {
      let timer: TimerHandle | undefined;
      const onAbort = () => {
        timer?.cancel();
        resolve(undefined);
      };
      const settle = (reply: RadiusReply | undefined) => {
        signal?.removeEventListener('abort', onAbort);
        timer?.cancel();
        resolve(reply);
      };
      s.pending.set(id, { code, authenticator, resolve: settle });
      timer = this.opts.clock.setTimer(this.opts.timeoutMs, () => settle(undefined));
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.opts.log.debugEnabled) {
        this.opts.log.debug(`RADIUS: sent ${codeName(code)} id ${id} to ${s.label}`);
      }
      this.transport.send(bytes, s.server.host, s.server.port);
    });
  }

  /**
   * All 256 Identifiers of `s` are in use: the next one freed, reserved (first come first served).
   * -1 when `signal` is aborted or the client closed while waiting.
   */
  private waitForId(s: ServerState, signal: AbortSignal | undefined): Promise<number> {
    if (signal?.aborted) return Promise.resolve(-1);
    if (s.waiters.length >= MAX_ID_WAITERS) {
      return Promise.reject(
        new RadiusBusyError(
          `all 256 RADIUS ${this.opts.purpose} request identifiers for ${s.label} are in use and ${MAX_ID_WAITERS} more requests are already waiting for one`,
        ),
      );
    }
    return new Promise((resolve) => {
      const wake = (got: number) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(got);
      };
      const onAbort = () => {
        const at = s.waiters.indexOf(wake);
        if (at >= 0) s.waiters.splice(at, 1);
        resolve(-1);
      };
      s.waiters.push(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Free Identifier `id` of `s`: it goes to the first request waiting for one, if any. */
  private releaseId(s: ServerState, id: number): void {
    const wake = s.waiters.shift();
    if (!wake) {
      s.pending.delete(id);
      return;
    }
    // Still reserved (a late reply to the old request is dropped) until the new one is sent.
    s.pending.set(id, { code: -1, authenticator: new Uint8Array(16), resolve: () => {} });
    wake(id);
  }

  private allocateId(s: ServerState): number {
    for (let i = 0; i < 256; i++) {
      const id = (s.nextId + i) & 0xff;
      if (!s.pending.has(id)) {
        s.nextId = (id + 1) & 0xff;
        // Reserve it now: the pending entry is filled in by exchange().
        s.pending.set(id, { code: -1, authenticator: new Uint8Array(16), resolve: () => {} });
        return id;
      }
    }
    return -1;
  }

  private receive(bytes: Uint8Array, host: string, port: number): void {
    const s = this.servers.find((x) => x.server.host === host && x.server.port === port);
    if (!s) {
      this.drops.drop('datagram from an address that is not a configured server', `${host}:${port}`);
      return;
    }
    if (bytes.length < 20) {
      this.drops.drop('datagram too short for a RADIUS packet', `${bytes.length} octets from ${s.label}`);
      return;
    }
    const pending = s.pending.get(bytes[1]!);
    if (!pending || pending.code < 0) {
      this.drops.drop('reply that answers no pending request (late or duplicate)', `from ${s.label}`);
      return;
    }
    let packet: RadiusPacket;
    try {
      packet = decodeRadiusPacket(bytes);
    } catch (e) {
      if (!isProtocolError(e)) throw e;
      this.drops.drop(`malformed reply: ${e.code}`, `${e.message}, from ${s.label}`);
      return;
    }
    if (!REPLY_CODES[pending.code]?.includes(packet.code)) {
      this.drops.drop(`${codeName(packet.code)} in answer to ${codeName(pending.code)}`, `from ${s.label}`);
      return;
    }
    const requireMa = pending.code === RadiusCode.AccessRequest;
    const problem = verifyRadiusResponse(bytes, pending.authenticator, s.secret, {
      requireMessageAuthenticator: requireMa,
    });
    if (problem) {
      this.drops.drop(`${codeName(packet.code)} refused: ${problem}`, `from ${s.label}`);
      return;
    }
    if (this.opts.log.debugEnabled) {
      this.opts.log.debug(`RADIUS: received ${codeName(packet.code)} id ${packet.id} from ${s.label}`);
    }
    pending.resolve({
      packet,
      server: s.server,
      secret: s.secret,
      requestAuthenticator: pending.authenticator,
    });
  }

  private markDown(s: ServerState): void {
    s.skipUntil = this.opts.clock.now() + this.opts.deadtimeMs;
    if (s.down) return;
    s.down = true;
    const others = this.servers.filter((x) => !x.down).map((x) => x.label);
    const next =
      others.length > 0 ? `; trying ${others.join(', ')} instead` : '; no other server is answering';
    this.opts.log.warn(
      `RADIUS ${this.opts.purpose} server ${s.label} is not answering (no reply to ${this.opts.tries} ${this.opts.tries === 1 ? 'try' : 'tries'}, ${this.opts.timeoutMs / 1000} s each)${next}`,
    );
  }

  private markUp(s: ServerState): void {
    if (!s.down) return;
    s.down = false;
    s.skipUntil = 0;
    this.opts.log.info(`RADIUS ${this.opts.purpose} server ${s.label} is answering again`);
  }

  private busy(delta: number): void {
    const before = this.pendingCount;
    this.pendingCount += delta;
    if (before === 0 && this.pendingCount > 0) this.transport.setBusy(true);
    else if (before > 0 && this.pendingCount === 0) this.transport.setBusy(false);
  }
}
