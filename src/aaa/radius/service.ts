import { randomBytes } from 'node:crypto';
import type { AuthSuccess, RemoteAuthenticator } from '../../ppp/auth/types.ts';
import type { Clock, TimerHandle } from '../../util/clock.ts';
import { quote } from '../../util/escape.ts';
import type { Logger } from '../../util/log.ts';
import { extend } from '../../util/objects.ts';
import { formatIPv4, type IPv4 } from '../../wire/ip.ts';
import type { LeaseAnswer, LeaseHolder, LeaseManager } from '../leases.ts';
import type { RateLimit } from '../rate-limit.ts';
import { AccountingQueue, terminateCause } from './accounting.ts';
import {
  nasAttributes,
  RadiusAuthenticator,
  type RadiusGrant,
  type RadiusSessionContext,
  sessionAttributes,
} from './authenticate.ts';
import { RadiusClient, type RadiusServer, type RadiusTransport, udpTransport } from './client.ts';
import { bytesAttr, type RadiusAttribute, textAttr, u32Attr } from './codec.ts';
import {
  AcctAuthentic,
  AcctStatus,
  Attr,
  codeName,
  RadiusCode,
  TerminateCause,
  type TerminateCauseValue,
} from './dictionary.ts';
import {
  type CoaChanges,
  type DynAuthClient,
  DynAuthHandler,
  DynAuthServer,
  type DynAuthSession,
} from './dynauth.ts';
import { type FramedRoute, parseFramedRoute } from './framed-route.ts';
import { formatRadattr } from './radattr.ts';

/** RADIUS as configured (radiusclient.conf + servers, see config.ts). */
export interface RadiusSettings {
  authServers: RadiusServer[];
  /** Empty: no accounting. */
  acctServers: RadiusServer[];
  /** Seconds to wait for one answer (radiusclient `radius_timeout`). */
  timeoutS: number;
  /** Transmissions per server (radiusclient `radius_retries`). */
  tries: number;
  /** Seconds a server that stopped answering is tried last (radiusclient `radius_deadtime`). */
  deadtimeS: number;
  nasIdentifier?: string;
  nasIpAddress?: IPv4;
  /** Local address for the RADIUS socket (radiusclient `bindaddr`). */
  bindAddress?: string;
  /** Where the settings came from, for log lines. */
  origin: string;
  /**
   * UDP port for Disconnect-Request / CoA-Request (RFC 5176) from the configured RADIUS servers;
   * 0 = off. Default 3799.
   */
  dynauthPort?: number;
  /** pppd `plugin radattr.so`: write each session's Access-Accept attributes to a file for ip-up. */
  radattr?: boolean;
  /** Where the radattr files go. @default '/var/run' */
  radattrDir?: string;
}

/** What the RADIUS layer needs from a session (server/session.ts implements it). */
export interface RadiusSessionHandle extends LeaseHolder {
  readonly id: string;
  readonly peer: IPv4;
  readonly log: Logger;
  kill(reason: string): void;
  info(): { bytesIn: number; bytesOut: number; packetsIn: number; packetsOut: number };
  /** New rate limits for the running session (CoA); `why` names where they came from. */
  setRateLimit(limit: RateLimit, why: string): void;
}

export interface RadiusServiceDeps {
  clock: Clock;
  log: Logger;
  /** Sockets (tests); default a UDP socket per client. */
  transport?: (purpose: 'authentication' | 'accounting') => RadiusTransport;
  /**
   * Whether this process speaks for the NAS: Accounting-On when it starts, Accounting-Off when it
   * stops, and the Disconnect/CoA listener. Default true; a worker leaves them to its primary
   * (server/workers/), since an Accounting-On from a restarted worker would tell the RADIUS server
   * that every session of every worker ended.
   */
  nasEvents?: boolean;
  /** The sessions Disconnect/CoA act on, when they are held elsewhere (a primary's workers'). */
  sessions?: () => Iterable<DynAuthSession>;
}

/**
 * What a worker tells its primary of a RADIUS session that is up: enough for Disconnect/CoA to find
 * it, and for the primary to send its Stop should the worker die (JSON-safe).
 */
export interface RemoteRadiusSession {
  acctSessionId: string;
  userName: string | undefined;
  framedIp: IPv4 | undefined;
  callingStationId: string;
  nasPort: number;
  /** When it came up (the worker's clock: the same monotonic clock on one machine). */
  upAt: number;
  /** Class attributes of the Access-Accept, hex (echoed in accounting, RFC 2865 §5.25). */
  classes: string[];
  /** Whether its login was a RADIUS one (Acct-Authentic). */
  radiusLogin: boolean;
}

const TWO_32 = 2 ** 32;

/**
 * RADIUS for one server process: the authentication client, the accounting client and its queue,
 * and the sessions that authenticated through it. Accounting-On when it starts, Accounting-Off
 * and a flush of the queue (the Stops) when it stops.
 */
export class RadiusService {
  readonly settings: RadiusSettings;
  readonly auth: RadiusClient;
  readonly accounting: AccountingQueue | undefined;
  private readonly acctClient: RadiusClient | undefined;
  readonly clock: Clock;
  readonly log: Logger;
  /** Distinguishes this process's Acct-Session-Ids from an earlier run's. */
  private readonly boot = randomBytes(4).toString('hex').toUpperCase();

  /** Request counters of the authentication and accounting clients, for metrics. */
  clientStats(): { purpose: string; stats: RadiusClient['stats']; down: number }[] {
    const out = [{ purpose: this.auth.purpose, stats: this.auth.stats, down: this.auth.downServers.length }];
    if (this.acctClient) {
      out.push({
        purpose: this.acctClient.purpose,
        stats: this.acctClient.stats,
        down: this.acctClient.downServers.length,
      });
    }
    return out;
  }
  private readonly sessions = new Map<string, RadiusSession>();
  private stopped = false;
  private dynauth: DynAuthServer | undefined;
  /** The Disconnect/CoA handler (also for tests). */
  readonly dynauthHandler: DynAuthHandler;
  private readonly nasEvents: boolean;

  constructor(settings: RadiusSettings, deps: RadiusServiceDeps) {
    this.settings = settings;
    this.clock = deps.clock;
    this.log = deps.log;
    this.nasEvents = deps.nasEvents ?? true;
    const common = {
      timeoutMs: settings.timeoutS * 1000,
      tries: settings.tries,
      deadtimeMs: settings.deadtimeS * 1000,
      clock: deps.clock,
      log: deps.log,
    };
    this.auth = new RadiusClient(
      extend(common, {
        servers: settings.authServers,
        purpose: 'authentication',
        transport: deps.transport ? deps.transport('authentication') : udpTransport(settings.bindAddress),
      }),
    );
    if (settings.acctServers.length > 0) {
      this.acctClient = new RadiusClient(
        extend(common, {
          servers: settings.acctServers,
          purpose: 'accounting',
          transport: deps.transport ? deps.transport('accounting') : udpTransport(settings.bindAddress),
        }),
      );
      this.accounting = new AccountingQueue(this.acctClient, { clock: deps.clock, log: deps.log });
    }
    // Disconnect/CoA from the servers we use, with the secret we share with each.
    const clients: DynAuthClient[] = [];
    for (const s of [...settings.authServers, ...settings.acctServers]) {
      if (!clients.some((c) => c.host === s.host)) clients.push({ host: s.host, secret: s.secret });
    }
    this.dynauthHandler = new DynAuthHandler({
      clients,
      sessions: deps.sessions ?? (() => this.liveSessions()),
      ...this.nas,
      clock: deps.clock,
      log: deps.log,
    });
  }

  /** Sessions that are up (what Disconnect/CoA can act on). */
  liveSessions(): DynAuthSession[] {
    return [...this.sessions.values()].filter((s) => s.isUp);
  }

  get nas(): { nasIdentifier?: string; nasIpAddress?: IPv4 } {
    const out: { nasIdentifier?: string; nasIpAddress?: IPv4 } = {};
    if (this.settings.nasIdentifier !== undefined) out.nasIdentifier = this.settings.nasIdentifier;
    if (this.settings.nasIpAddress !== undefined) out.nasIpAddress = this.settings.nasIpAddress;
    return out;
  }

  /**
   * Start: Accounting-On (RFC 2866 §5.1), the Disconnect/CoA listener, and a log line naming the
   * servers. Resolves with the Disconnect/CoA port (undefined when off or unavailable).
   */
  async start(): Promise<number | undefined> {
    const list = (s: RadiusServer[]) => s.map((x) => `${x.host}:${x.port}`).join(', ');
    const acct = this.accounting ? `accounting to ${list(this.settings.acctServers)}` : 'no accounting';
    if (!this.nasEvents) {
      this.log.debug(
        `RADIUS (${this.settings.origin}): authentication by ${list(this.settings.authServers)}; ${acct}; Accounting-On/Off and Disconnect/CoA by the primary`,
      );
      return undefined;
    }
    this.accounting?.add(AcctStatus.AccountingOn, this.nasRecord(), 'for this server');
    const port = this.settings.dynauthPort ?? 3799;
    let bound: number | undefined;
    if (port > 0) {
      this.dynauth = new DynAuthServer(this.dynauthHandler, this.log);
      bound = await this.dynauth.listen(port, this.settings.bindAddress);
    }
    const dae = bound === undefined ? 'no Disconnect/CoA' : `Disconnect/CoA on UDP ${bound}`;
    this.log.info(
      `RADIUS (${this.settings.origin}): authentication by ${list(this.settings.authServers)}; ${acct}; ${dae}`,
    );
    return bound;
  }

  /** Stop: Accounting-Off after the sessions' Stops, then wait up to `graceMs` for the queue. */
  async stop(graceMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.accounting) {
      if (this.nasEvents) {
        this.accounting.add(
          AcctStatus.AccountingOff,
          [...this.nasRecord(), u32Attr(Attr.AcctTerminateCause, TerminateCause.AdminReboot)],
          'for this server',
        );
      }
      const done = await this.accounting.flush(graceMs);
      if (!done) {
        this.log.warn(
          `RADIUS accounting: ${this.accounting.length} records not answered within ${graceMs / 1000} s of stopping; they are lost`,
        );
      }
    }
    this.dynauth?.close();
    this.accounting?.close();
    this.auth.close();
    this.acctClient?.close();
  }

  /** The RADIUS side of one session. */
  session(handle: RadiusSessionHandle): RadiusSession {
    const s = new RadiusSession(this, handle, `${this.boot}${handle.id.replace(/^s/, '').padStart(8, '0')}`);
    this.sessions.set(s.acctSessionId, s);
    return s;
  }

  forget(s: RadiusSession): void {
    this.sessions.delete(s.acctSessionId);
  }

  /**
   * The Stop of a session whose worker died with it (its primary sends it): the time it was up and
   * Acct-Terminate-Cause NAS-Error, without counters (they died with the worker). Without it, a
   * RADIUS server's session table and address pool would keep the session open.
   */
  lostSessionStop(s: RemoteRadiusSession): void {
    const q = this.accounting;
    if (!q) return;
    const ctx = { acctSessionId: s.acctSessionId, nasPort: s.nasPort, callingStationId: s.callingStationId };
    const attrs = recordAttributes(this.nas, ctx, {
      user: s.userName,
      ip: s.framedIp,
      classes: s.classes.map((c) => Buffer.from(c, 'hex')),
      radiusLogin: s.radiusLogin,
    });
    attrs.push(
      u32Attr(Attr.AcctSessionTime, Math.max(0, Math.floor((this.now() - s.upAt) / 1000))),
      u32Attr(Attr.AcctTerminateCause, TerminateCause.NasError),
    );
    q.add(
      AcctStatus.Stop,
      attrs,
      `for ${s.acctSessionId}${s.userName ? ` (${quote(s.userName)})` : ''}, lost with its worker`,
    );
  }

  now(): number {
    return this.clock.now();
  }

  private nasRecord(): RadiusAttribute[] {
    return [...nasAttributes(this.nas), textAttr(Attr.AcctSessionId, this.boot)];
  }
}

/**
 * One session's RADIUS life: the authenticator for its login, the lease and IPCP servers from the
 * Access-Accept, Session-Timeout and Idle-Timeout, and accounting (Start at network up,
 * Interim-Update every Acct-Interim-Interval, Stop with the counters and the cause at the end).
 */
export class RadiusSession implements DynAuthSession {
  readonly acctSessionId: string;
  private readonly service: RadiusService;
  private readonly handle: RadiusSessionHandle;
  private grant: RadiusGrant | undefined;
  private user: string | undefined;
  private callId = 0;
  private ip: IPv4 | undefined;
  private upAt: number | undefined;
  private sessionTimer: TimerHandle | undefined;
  private idleTimer: TimerHandle | undefined;
  private interimTimer: TimerHandle | undefined;
  private ended = false;
  /** Acct-Terminate-Cause of an end this session caused itself (the first kill it asked for). */
  private ownCause: TerminateCauseValue | undefined;
  /**
   * The Framed-IP-Address of an Access-Accept not yet in use (the network layer is not up). If the
   * session ends so, a Stop still goes out for it: without one, a server-side pool keeps the address
   * allocated until its lease runs out. `keep` is set when the address was refused because a session
   * here already has it: releasing it would have the pool give it out again at once.
   */
  private offered: { ip: IPv4; user: string; grant: RadiusGrant; keep?: boolean } | undefined;

  constructor(service: RadiusService, handle: RadiusSessionHandle, acctSessionId: string) {
    this.service = service;
    this.handle = handle;
    this.acctSessionId = acctSessionId;
  }

  get userName(): string | undefined {
    return this.user;
  }
  get framedIp(): IPv4 | undefined {
    return this.ip;
  }
  get callingStationId(): string {
    return formatIPv4(this.handle.peer);
  }
  get nasPort(): number {
    return this.callId;
  }
  /** What the Access-Request and the Accounting-Requests say about this session (NAS-Port `callId`). */
  private context(callId: number): RadiusSessionContext {
    return { acctSessionId: this.acctSessionId, nasPort: callId, callingStationId: this.callingStationId };
  }

  /** Up and not ended: what Disconnect/CoA act on. */
  get isUp(): boolean {
    return this.upAt !== undefined && !this.ended;
  }

  /**
   * The authenticator for the login on `callId` (NAS-Port). An Access-Accept's Framed-IP-Address
   * is noted at once: from then on the RADIUS server (e.g. FreeRADIUS sqlippool) counts that
   * address as this session's, whether or not poptop goes on to use it.
   */
  authenticator(callId: number): RemoteAuthenticator {
    this.callId = callId;
    const relay = new RadiusAuthenticator(this.service.auth, this.service.nas, this.context(callId));
    return {
      verify: (req, done) =>
        relay.verify(req, (verdict) => {
          const grant = verdict.ok ? (verdict.grant as RadiusGrant | undefined) : undefined;
          if (grant && typeof grant.framedIp === 'number' && this.upAt === undefined) {
            this.offered = { ip: grant.framedIp, user: req.rawUser, grant };
          }
          done(verdict);
        }),
    };
  }

  /**
   * Notes what the Access-Accept of a login granted (logging what poptop does not use), and returns
   * the address it asks for: Framed-IP-Address, or undefined for the pool. Undefined as a whole when
   * the login was not a RADIUS one (the caller leases as usual).
   */
  accept(r: AuthSuccess): { ip: IPv4 | undefined } | undefined {
    const grant = r.grant as RadiusGrant | undefined;
    if (!grant || typeof grant !== 'object' || !('server' in grant)) return undefined;
    this.grant = grant;
    this.user = r.rawUser;
    if (grant.framedPool !== undefined) {
      this.handle.log.debug(
        `RADIUS Framed-Pool ${quote(grant.framedPool)} ignored: poptop has one pool (remoteip)`,
      );
    }
    if (grant.rate.problem) this.handle.log.warn(`RADIUS: ${grant.rate.problem}; no rate limit from RADIUS`);
    for (const name of grant.rate.notRates) {
      this.handle.log.debug(`RADIUS Filter-Id ${name} ignored: not a rate (poptop has no filter lists)`);
    }
    return { ip: grant.framedIp === 'pool' ? undefined : grant.framedIp };
  }

  /**
   * The address RADIUS gave (`ip`) is refused because session `holder` here still has it. No Stop
   * is sent for it then: it would have the RADIUS server's pool give it out again at once.
   */
  addressHeldBy(ip: IPv4, holder: string): void {
    const offered = this.offered;
    if (offered === undefined || offered.ip !== ip) return;
    offered.keep = true;
    this.handle.log.warn(
      `RADIUS server ${offered.grant.server} gave ${formatIPv4(ip)}, which session ${holder} here still has: its pool must think that address free (did its lease expire? keep Acct-Interim-Interval below the pool's lease time); no Stop is sent for it, so it stays allocated there`,
    );
  }

  /**
   * The address for a login RADIUS accepted: Framed-IP-Address, or the pool. Undefined when the
   * login was not a RADIUS one (the caller leases as usual).
   */
  lease(r: AuthSuccess, leases: LeaseManager): LeaseAnswer | undefined {
    const want = this.accept(r);
    if (!want) return undefined;
    const answer = leases.leaseFromRadiusNamingHolder(this.handle, r.user, want.ip);
    if (answer.heldBy !== undefined && want.ip !== undefined) this.addressHeldBy(want.ip, answer.heldBy);
    return answer;
  }

  /** What the primary keeps of this session once it is up (workers), or undefined before. */
  remote(): RemoteRadiusSession | undefined {
    if (this.upAt === undefined || this.ended) return undefined;
    return {
      acctSessionId: this.acctSessionId,
      userName: this.user,
      framedIp: this.ip,
      callingStationId: this.callingStationId,
      nasPort: this.callId,
      upAt: this.upAt,
      classes: (this.grant?.classes ?? []).map((c) => Buffer.from(c).toString('hex')),
      radiusLogin: this.grant !== undefined,
    };
  }

  /** The rate limit the Access-Accept set (Mikrotik-Rate-Limit, Filter-Id), with its source. */
  rateLimit(): { limit: RateLimit; source: string } | undefined {
    const r = this.grant?.rate;
    return r?.limit && r.source ? { limit: r.limit, source: r.source } : undefined;
  }

  /**
   * The Framed-Routes of the Access-Accept for a client at `ip`. A malformed value, or a gateway
   * other than 0.0.0.0 and the client's own address, is left out with a warning in words; the
   * session comes up without it.
   */
  framedRoutes(ip: IPv4): FramedRoute[] {
    const out: FramedRoute[] = [];
    for (const text of this.grant?.framedRoutes ?? []) {
      const r = parseFramedRoute(text);
      if (typeof r === 'string') {
        this.handle.log.warn(`RADIUS ${r}; route not added`);
      } else if (r.gateway !== 0 && r.gateway !== ip) {
        this.handle.log.warn(
          `RADIUS Framed-Route ${quote(text, 80)} names gateway ${formatIPv4(r.gateway)}, not the client's ${formatIPv4(ip)} (or 0.0.0.0): poptop routes a subnet only to the client that has it; route not added`,
        );
      } else out.push(r);
    }
    return out;
  }

  /**
   * The radattr file for this session (`plugin radattr.so`): `<dir>/radattr.<ifname>.<session>`,
   * one per session since every session shares the TUN device. Undefined without the plugin or a
   * RADIUS login.
   */
  radattrFile(ifname: string): { path: string; text: string } | undefined {
    const g = this.grant;
    if (!g || !this.service.settings.radattr) return undefined;
    const dir = this.service.settings.radattrDir ?? '/var/run';
    return { path: `${dir}/radattr.${ifname}.${this.handle.id}`, text: formatRadattr(g.attributes) };
  }

  /** DNS and NBNS servers RADIUS gave (IPCP options 129-132), or undefined to keep ms-dns/ms-wins. */
  ipcpServers(): [IPv4 | undefined, IPv4 | undefined, IPv4 | undefined, IPv4 | undefined] | undefined {
    const g = this.grant;
    if (!g) return undefined;
    const all = [...g.dns, ...g.nbns] as [
      IPv4 | undefined,
      IPv4 | undefined,
      IPv4 | undefined,
      IPv4 | undefined,
    ];
    return all.some((x) => x !== undefined) ? all : undefined;
  }

  /** The network layer is up with `ip`: enforce the grant, start accounting and the timers. */
  up(ip: IPv4, mppeBits: number | undefined): void {
    if (this.upAt !== undefined || this.ended) return;
    this.ip = ip;
    this.upAt = this.service.now();
    const g = this.grant;
    if (g?.mppe) {
      const ok =
        mppeBits === undefined
          ? !g.mppe.required
          : (mppeBits === 40 && g.mppe.allow40) || (mppeBits === 128 && g.mppe.allow128);
      if (!ok) {
        const got = mppeBits === undefined ? 'no encryption' : `MPPE ${mppeBits}-bit`;
        this.kill(
          TerminateCause.ServiceUnavailable,
          `RADIUS requires ${g.mppe.required ? 'encryption' : 'another encryption'}: the session has ${got}`,
        );
        return;
      }
    }
    this.sendAccounting(AcctStatus.Start);
    if (g?.sessionTimeoutS) this.armSessionTimeout(g.sessionTimeoutS);
    if (g?.idleTimeoutS) this.watchIdle(g.idleTimeoutS);
    const interim = g?.acctInterimIntervalS;
    if (interim && this.service.accounting) this.interim(Math.max(1, interim));
  }

  /** Disconnect-Request. */
  disconnect(reason: string): void {
    this.kill(TerminateCause.AdminReset, reason);
  }

  /** End the session for a RADIUS reason; its Stop carries `cause`, whatever the reason's words. */
  private kill(cause: TerminateCauseValue, reason: string): void {
    this.ownCause ??= cause;
    this.handle.kill(reason);
  }

  /** The Acct-Terminate-Cause for an end for `reason`. */
  private causeOf(reason: string): TerminateCauseValue {
    return this.ownCause ?? terminateCause(reason);
  }

  /**
   * CoA-Request: new Session-Timeout / Idle-Timeout (0 = none), counted from when the session came
   * up, and new rate limits.
   */
  changeLimits(limits: CoaChanges): void {
    if (!this.isUp) return;
    if (limits.sessionTimeoutS !== undefined) this.armSessionTimeout(limits.sessionTimeoutS);
    if (limits.idleTimeoutS !== undefined) this.watchIdle(limits.idleTimeoutS);
    if (limits.rate) this.handle.setRateLimit(limits.rate.limit, `CoA, ${limits.rate.source}`);
  }

  /** The session ended for `reason`: Stop (when it had started), timers off. Runs once. */
  closed(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    for (const t of [this.sessionTimer, this.idleTimer, this.interimTimer]) t?.cancel();
    this.service.forget(this);
    if (this.upAt !== undefined) this.sendAccounting(AcctStatus.Stop, this.causeOf(reason));
    else if (this.offered && !this.offered.keep && this.service.accounting) {
      // Never up: a Stop with no time and the address RADIUS gave, which releases it there.
      this.user = this.offered.user;
      this.grant = this.offered.grant;
      this.ip = this.offered.ip;
      this.upAt = this.service.now();
      this.handle.log.info(
        `RADIUS: sending a Stop for ${formatIPv4(this.offered.ip)}, which the session never used, so that the RADIUS server can give it out again`,
      );
      this.sendAccounting(AcctStatus.Stop, this.causeOf(reason));
    }
  }

  /** Session-Timeout: `seconds` after the session came up (0: no limit). */
  private armSessionTimeout(seconds: number): void {
    this.sessionTimer?.cancel();
    this.sessionTimer = undefined;
    if (seconds <= 0) return;
    const left = Math.max(0, (this.upAt ?? this.service.now()) + seconds * 1000 - this.service.now());
    this.sessionTimer = this.service.clock.setTimer(left, () =>
      this.kill(TerminateCause.SessionTimeout, `Session-Timeout of ${seconds} s reached (RADIUS)`),
    );
  }

  /** Idle-Timeout: no packet either way for `idleS` seconds ends the session (0: no limit). */
  private watchIdle(idleS: number): void {
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
    if (idleS <= 0) return;
    let last = this.activity();
    let lastChange = this.service.now();
    const period = Math.max(1, Math.ceil(idleS / 4)) * 1000;
    const check = () => {
      if (this.ended) return;
      const now = this.service.now();
      const a = this.activity();
      if (a !== last) {
        last = a;
        lastChange = now;
      } else if (now - lastChange >= idleS * 1000) {
        this.kill(TerminateCause.IdleTimeout, `Idle-Timeout of ${idleS} s reached (RADIUS): no traffic`);
        return;
      }
      this.idleTimer = this.service.clock.setTimer(period, check);
    };
    this.idleTimer = this.service.clock.setTimer(period, check);
  }

  private activity(): number {
    const i = this.handle.info();
    return i.packetsIn + i.packetsOut;
  }

  private interim(seconds: number): void {
    const tick = () => {
      if (this.ended) return;
      this.sendAccounting(AcctStatus.InterimUpdate);
      this.interimTimer = this.service.clock.setTimer(seconds * 1000, tick);
    };
    this.interimTimer = this.service.clock.setTimer(seconds * 1000, tick);
  }

  private sendAccounting(status: number, cause?: number): void {
    const q = this.service.accounting;
    if (!q) return;
    const attrs = recordAttributes(this.service.nas, this.context(this.callId), {
      user: this.user,
      ip: this.ip,
      classes: this.grant?.classes ?? [],
      radiusLogin: this.grant !== undefined,
    });
    if (status !== AcctStatus.Start) {
      const i = this.handle.info();
      const seconds = Math.floor((this.service.now() - (this.upAt ?? this.service.now())) / 1000);
      attrs.push(
        u32Attr(Attr.AcctSessionTime, seconds),
        u32Attr(Attr.AcctInputOctets, i.bytesIn % TWO_32),
        u32Attr(Attr.AcctOutputOctets, i.bytesOut % TWO_32),
        u32Attr(Attr.AcctInputGigawords, Math.floor(i.bytesIn / TWO_32)),
        u32Attr(Attr.AcctOutputGigawords, Math.floor(i.bytesOut / TWO_32)),
        u32Attr(Attr.AcctInputPackets, i.packetsIn % TWO_32),
        u32Attr(Attr.AcctOutputPackets, i.packetsOut % TWO_32),
      );
      if (cause !== undefined) attrs.push(u32Attr(Attr.AcctTerminateCause, cause));
    }
    const what = `for ${this.handle.id}${this.user ? ` (${quote(this.user)})` : ''}`;
    q.add(status, attrs, what);
    if (this.handle.log.debugEnabled) {
      this.handle.log.debug(
        `RADIUS: queued ${codeName(RadiusCode.AccountingRequest)} (status ${status}) ${what}`,
      );
    }
  }
}

/**
 * What every Accounting-Request about a session carries (RFC 2866 §5): User-Name first, the
 * session's and the NAS's attributes, Acct-Authentic, Event-Timestamp, Framed-IP-Address and the
 * Access-Accept's Class attributes echoed. Counters, time and cause are the caller's to add.
 */
function recordAttributes(
  nas: RadiusService['nas'],
  ctx: RadiusSessionContext,
  o: { user: string | undefined; ip: IPv4 | undefined; classes: readonly Uint8Array[]; radiusLogin: boolean },
): RadiusAttribute[] {
  const attrs: RadiusAttribute[] = [
    ...sessionAttributes(nas, ctx),
    u32Attr(Attr.AcctAuthentic, o.radiusLogin ? AcctAuthentic.Radius : AcctAuthentic.Local),
    u32Attr(Attr.EventTimestamp, Math.floor(Date.now() / 1000)),
  ];
  if (o.user !== undefined) attrs.unshift(textAttr(Attr.UserName, o.user));
  if (o.ip !== undefined) attrs.push(u32Attr(Attr.FramedIpAddress, o.ip));
  for (const c of o.classes) attrs.push(bytesAttr(Attr.Class, c));
  return attrs;
}
