import { createSocket, type Socket } from 'node:dgram';
import type { Clock } from '../../util/clock.ts';
import { DropCounter } from '../../util/counters.ts';
import type { Logger } from '../../util/log.ts';
import { isProtocolError } from '../../wire/errors.ts';
import type { IPv4 } from '../../wire/ip.ts';
import { formatRate, type RateLimit } from '../rate-limit.ts';
import {
  attrText,
  attrU32,
  decodeRadiusPacket,
  findAllAttrs,
  findAttr,
  type RadiusAttribute,
  type RadiusPacket,
  signRadiusPacket,
  u32Attr,
  verifyRadiusRequest,
} from './codec.ts';
import {
  Attr,
  attributeName,
  codeName,
  ErrorCause,
  MikrotikAttr,
  RadiusCode,
  VENDOR_MIKROTIK,
} from './dictionary.ts';
import { readRateLimit } from './rate-limit-attrs.ts';

/** A server allowed to send Disconnect/CoA requests, with its shared secret. */
export interface DynAuthClient {
  host: string;
  secret: string;
}

/** What Disconnect/CoA can find and change: the live RADIUS sessions. */
export interface DynAuthSession {
  readonly acctSessionId: string;
  readonly userName: string | undefined;
  readonly framedIp: IPv4 | undefined;
  readonly callingStationId: string;
  readonly nasPort: number;
  disconnect(reason: string): void;
  /** CoA: new limits, counted from when the session came up; undefined leaves one as it is. */
  changeLimits(limits: CoaChanges): void;
}

/** What a CoA-Request changes (undefined: left as it is). */
export interface CoaChanges {
  sessionTimeoutS?: number;
  idleTimeoutS?: number;
  /** New rate limits (Mikrotik-Rate-Limit or Filter-Id), with the attribute they came from. */
  rate?: { limit: RateLimit; source: string };
}

export interface DynAuthOptions {
  clients: DynAuthClient[];
  /** The live sessions (RadiusService.liveSessions). */
  sessions: () => Iterable<DynAuthSession>;
  /** Our NAS-Identifier / NAS-IP-Address: a request naming another NAS is refused (403). */
  nasIdentifier?: string;
  nasIpAddress?: IPv4;
  clock: Clock;
  log: Logger;
  /** Wall-clock time in ms since the epoch, for Event-Timestamp (default Date.now). */
  wallNow?: () => number;
}

/** Attributes that identify a session (RFC 5176 §3). */
const SESSION_KEYS = new Set<number>([
  Attr.AcctSessionId,
  Attr.UserName,
  Attr.FramedIpAddress,
  Attr.CallingStationId,
  Attr.NasPort,
]);
/** Attributes that identify the NAS. */
const NAS_KEYS = new Set<number>([Attr.NasIdentifier, Attr.NasIpAddress]);
/** Attributes any request may carry besides those. */
const ALWAYS_OK = new Set<number>([
  Attr.MessageAuthenticator,
  Attr.ProxyState,
  Attr.EventTimestamp,
  Attr.ReplyMessage,
  Attr.State,
  Attr.Class,
  Attr.AcctTerminateCause,
]);
/** What a CoA-Request may change (standard attributes; Mikrotik-Rate-Limit is checked apart). */
const COA_CHANGES = new Set<number>([Attr.SessionTimeout, Attr.IdleTimeout, Attr.FilterId]);

/** Whether a CoA-Request may carry `a`. */
function coaCarries(a: RadiusAttribute): boolean {
  if (a.vendor === VENDOR_MIKROTIK) return a.type === MikrotikAttr.RateLimit;
  return a.vendor === undefined && COA_CHANGES.has(a.type);
}

/** How long an answer is kept to answer a retransmission the same way (RFC 5176 §2.3). */
const DUPLICATE_WINDOW_MS = 30_000;

/** How far an Event-Timestamp may be from now before the request is a replay (RFC 5176 §6.3). */
export const EVENT_TIMESTAMP_WINDOW_S = 300;

/**
 * Dynamic authorization (RFC 5176): Disconnect-Request ends the sessions it identifies,
 * CoA-Request changes their Session-Timeout / Idle-Timeout and rate limits (Mikrotik-Rate-Limit,
 * or Filter-Id in accel-ppp's "down/up" kbit/s form). Only from configured clients (their
 * source address), with a valid Request Authenticator (and Message-Authenticator when present).
 * Answers: ACK, or NAK with Error-Cause: 401 Unsupported-Attribute, 402 Missing-Attribute (no
 * session identification), 403 NAS-Identification-Mismatch, 407 Invalid-Attribute-Value (a
 * malformed value), 503 Session-Context-Not-Found. A retransmission gets the same answer again.
 * A request whose Event-Timestamp is more than EVENT_TIMESTAMP_WINDOW_S from now is silently
 * discarded (and counted): RFC 5176 §6.3 replay protection.
 */
export class DynAuthHandler {
  readonly drops: DropCounter;
  private readonly opts: DynAuthOptions;
  private readonly recent = new Map<string, { at: number; reply: Uint8Array }>();
  private readonly encoder = new TextEncoder();

  constructor(opts: DynAuthOptions) {
    this.opts = opts;
    this.drops = new DropCounter(opts.log, 'RADIUS Disconnect/CoA request');
  }

  /** The answer to a datagram from host:port, or undefined when it is dropped. */
  handle(bytes: Uint8Array, host: string, port: number): Uint8Array | undefined {
    const client = this.opts.clients.find((c) => c.host === host);
    if (!client) {
      this.drops.drop('request from an address that is not a configured RADIUS server', host);
      return undefined;
    }
    let req: RadiusPacket;
    try {
      req = decodeRadiusPacket(bytes);
    } catch (e) {
      if (!isProtocolError(e)) throw e;
      this.drops.drop(`malformed request: ${e.code}`, `${e.message}, from ${host}`);
      return undefined;
    }
    if (req.code !== RadiusCode.DisconnectRequest && req.code !== RadiusCode.CoaRequest) {
      this.drops.drop(`${codeName(req.code)} sent to the Disconnect/CoA port`, `from ${host}`);
      return undefined;
    }
    const secret = this.encoder.encode(client.secret);
    const problem = verifyRadiusRequest(bytes, secret);
    if (problem) {
      this.drops.drop(`${codeName(req.code)} refused: ${problem}`, `from ${host}`);
      return undefined;
    }
    const stale = this.staleTimestamp(req);
    if (stale !== undefined) {
      this.drops.drop(
        `${codeName(req.code)} with an Event-Timestamp not within ${EVENT_TIMESTAMP_WINDOW_S} s of now (a replay?)`,
        `${stale}, from ${host}`,
      );
      return undefined;
    }
    const now = this.opts.clock.now();
    for (const [k, v] of this.recent) if (now - v.at > DUPLICATE_WINDOW_MS) this.recent.delete(k);
    const key = `${host}:${port}:${req.id}:${Buffer.from(req.authenticator).toString('hex')}`;
    const seen = this.recent.get(key);
    if (seen) return seen.reply;
    const reply = this.answer(req, secret, host);
    this.recent.set(key, { at: now, reply });
    return reply;
  }

  /** How the Event-Timestamp is not current (outside the window, or malformed); undefined when fine or absent. */
  private staleTimestamp(req: RadiusPacket): string | undefined {
    const ts = findAttr(req.attributes, Attr.EventTimestamp);
    if (!ts) return undefined;
    if (ts.value.length !== 4) return `an Event-Timestamp of ${ts.value.length} octets`;
    const off = attrU32(ts) - Math.floor((this.opts.wallNow ?? Date.now)() / 1000);
    return Math.abs(off) > EVENT_TIMESTAMP_WINDOW_S ? `${off} s off` : undefined;
  }

  private answer(req: RadiusPacket, secret: Uint8Array, host: string): Uint8Array {
    const disconnect = req.code === RadiusCode.DisconnectRequest;
    const what = disconnect ? 'Disconnect-Request' : 'CoA-Request';
    const nak = (cause: number, why: string) => {
      this.opts.log.warn(`RADIUS ${what} from ${host} refused: ${why}`);
      return this.reply(req, secret, disconnect ? RadiusCode.DisconnectNak : RadiusCode.CoaNak, cause);
    };
    for (const a of req.attributes) {
      const known =
        (a.vendor === undefined &&
          (SESSION_KEYS.has(a.type) || NAS_KEYS.has(a.type) || ALWAYS_OK.has(a.type))) ||
        (!disconnect && coaCarries(a));
      if (!known)
        return nak(ErrorCause.UnsupportedAttribute, `${attributeName(a.type, a.vendor)} is not supported`);
    }
    try {
      const nasId = findAttr(req.attributes, Attr.NasIdentifier);
      const nasIp = findAttr(req.attributes, Attr.NasIpAddress);
      if (
        (nasId && attrText(nasId) !== this.opts.nasIdentifier) ||
        (nasIp && attrU32(nasIp) !== this.opts.nasIpAddress)
      ) {
        return nak(ErrorCause.NasIdentificationMismatch, 'it names another NAS');
      }
      const keys = req.attributes.filter((a) => a.vendor === undefined && SESSION_KEYS.has(a.type));
      if (keys.length === 0) {
        return nak(
          ErrorCause.MissingAttribute,
          'it identifies no session (Acct-Session-Id, User-Name, Framed-IP-Address...)',
        );
      }
      const matches = [...this.opts.sessions()].filter((s) => keys.every((k) => identifies(k, s)));
      if (matches.length === 0) return nak(ErrorCause.SessionContextNotFound, 'no such session');
      // What a CoA-Request changes (a Disconnect-Request carrying any of it was refused above).
      const limits: CoaChanges = {};
      const changed: string[] = [];
      if (!disconnect) {
        const st = findAttr(req.attributes, Attr.SessionTimeout);
        const it = findAttr(req.attributes, Attr.IdleTimeout);
        if (st) limits.sessionTimeoutS = attrU32(st);
        if (it) limits.idleTimeoutS = attrU32(it);
        if (st) changed.push(`Session-Timeout ${limits.sessionTimeoutS} s`);
        if (it) changed.push(`Idle-Timeout ${limits.idleTimeoutS} s`);
        // A rate limit is applied whole or refused: the server must not believe it took effect.
        const rate = readRateLimit(req.attributes);
        if (rate.problem) return nak(ErrorCause.InvalidAttributeValue, rate.problem);
        if (rate.notRates.length > 0) {
          return nak(
            ErrorCause.InvalidAttributeValue,
            `Filter-Id ${rate.notRates[0]} is not a rate DOWN[/UP] in kbit/s (poptop has no filter lists)`,
          );
        }
        if (rate.limit && rate.source) {
          limits.rate = { limit: rate.limit, source: rate.source };
          changed.push(
            `rate limit ${formatRate(rate.limit.downBps)} down, ${formatRate(rate.limit.upBps)} up (${rate.source})`,
          );
        }
      }
      for (const s of matches) {
        if (disconnect) s.disconnect(`disconnected by RADIUS (Disconnect-Request from ${host})`);
        else s.changeLimits(limits);
      }
      this.opts.log.info(
        `RADIUS ${what} from ${host}: ${matches.length} session${matches.length === 1 ? '' : 's'} ${disconnect ? 'disconnected' : `changed (${changed.join(', ') || 'nothing to change'})`}`,
      );
      return this.reply(req, secret, disconnect ? RadiusCode.DisconnectAck : RadiusCode.CoaAck);
    } catch (e) {
      if (!isProtocolError(e)) throw e;
      return nak(ErrorCause.InvalidAttributeValue, e.message);
    }
  }

  private reply(req: RadiusPacket, secret: Uint8Array, code: number, cause?: number): Uint8Array {
    const attrs: RadiusAttribute[] = [];
    if (cause !== undefined) attrs.push(u32Attr(Attr.ErrorCause, cause));
    attrs.push(...findAllAttrs(req.attributes, Attr.ProxyState));
    return signRadiusPacket(
      { code, id: req.id, authenticator: new Uint8Array(16), attributes: attrs },
      secret,
      {
        requestAuthenticator: req.authenticator,
        messageAuthenticator: true,
      },
    );
  }
}

function identifies(a: RadiusAttribute, s: DynAuthSession): boolean {
  switch (a.type) {
    case Attr.AcctSessionId:
      return attrText(a) === s.acctSessionId;
    case Attr.UserName:
      return attrText(a) === s.userName;
    case Attr.FramedIpAddress:
      return s.framedIp !== undefined && attrU32(a) === s.framedIp;
    case Attr.CallingStationId:
      return attrText(a) === s.callingStationId;
    case Attr.NasPort:
      return attrU32(a) === s.nasPort;
    default:
      return false;
  }
}

/** The Disconnect/CoA listener: UDP `port` (3799) on `bindAddress`. */
export class DynAuthServer {
  private readonly socket: Socket;
  private readonly handler: DynAuthHandler;
  private readonly log: Logger;

  constructor(handler: DynAuthHandler, log: Logger) {
    this.handler = handler;
    this.log = log;
    this.socket = createSocket('udp4');
    this.socket.on('message', (msg, rinfo) => {
      const reply = this.handler.handle(new Uint8Array(msg), rinfo.address, rinfo.port);
      if (reply) this.socket.send(reply, rinfo.port, rinfo.address);
    });
  }

  /** Resolves with the bound port; a failure is logged (Disconnect/CoA then unavailable), not thrown. */
  listen(port: number, bindAddress?: string): Promise<number | undefined> {
    return new Promise((resolve) => {
      const onError = (e: Error) => {
        this.log.warn(
          `RADIUS Disconnect/CoA: cannot listen on UDP ${bindAddress ?? '0.0.0.0'}:${port}: ${e.message}; Disconnect-Request and CoA-Request are not available`,
        );
        resolve(undefined);
      };
      this.socket.once('error', onError);
      this.socket.bind(port, bindAddress, () => {
        this.socket.off('error', onError);
        this.socket.on('error', (e) => this.log.debug(`RADIUS Disconnect/CoA socket: ${e.message}`));
        this.socket.unref();
        resolve(this.socket.address().port);
      });
    });
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}
