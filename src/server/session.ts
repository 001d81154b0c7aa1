import type { Credential } from '../aaa/credentials.ts';
import type { LeaseAnswer, LeaseManager } from '../aaa/leases.ts';
import type { AuthThrottle } from '../aaa/login-throttle.ts';
import type { CoaChanges } from '../aaa/radius/dynauth.ts';
import { describeFramedRoute, type FramedRoute } from '../aaa/radius/framed-route.ts';
import type { RadiusService, RadiusSession, RemoteRadiusSession } from '../aaa/radius/service.ts';
import { formatRate, type RateLimit, TokenBucket } from '../aaa/rate-limit.ts';
import type { GreHeader } from '../gre/codec.ts';
import type { GreEndpoint } from '../gre/demux.ts';
import type { TunDevice, TunDropList } from '../net/interfaces.ts';
import { createAuthenticator } from '../ppp/auth/index.ts';
import type { AuthMethod, AuthSuccess } from '../ppp/auth/types.ts';
import type { NetworkInfo } from '../ppp/link.ts';
import type { AuthorizeAnswer } from '../ppp/link-types.ts';
import type { CallIdAllocator } from '../pptp/call-ids.ts';
import type { CallInfo, CallRequestDecision } from '../pptp/control.ts';
import { ControlConnection } from '../pptp/control.ts';
import type { OutgoingCallRequest } from '../pptp/messages.ts';
import { TunnelCall } from '../tunnel/call.ts';
import type { Clock, TimerHandle } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import { extend } from '../util/objects.ts';
import {
  formatIPv4,
  IPV4_HEADER_MIN,
  IPV4_SOURCE_OFFSET,
  type IPv4,
  inPrefix,
  ipVersion,
  ipv4FromBytes,
} from '../wire/ip.ts';
import type { AdmissionLimits } from './admission.ts';
import { classifyEnd } from './end-reasons.ts';
import type { HookContext } from './hooks.ts';
import { HostAttachment } from './host-attachment.ts';
import { PrefixLogger } from './session-log.ts';
import type { ServerSettings } from './settings.ts';
import type { SystemOps } from './system.ts';
import type { WtmpEntry } from './wtmp.ts';

/** What a worker's session asks the primary once its peer is authenticated. */
export interface AuthorizeRequest {
  user: string;
  /** The secrets entry that matched (its client column and address column); null without one. */
  entry: Pick<Credential, 'user' | 'addresses'> | null;
  /** A second authentication on the same session (it keeps its lease when still permitted). */
  again: boolean;
  /** A RADIUS login: the Framed-IP-Address it gave (ip undefined: the pool). */
  radius?: { ip?: IPv4 };
}

/** Session order (s1, s2, ... s10): the number after the "s" of their ids. */
export function bySessionNumber(a: { id: string }, b: { id: string }): number {
  return Number(a.id.slice(1)) - Number(b.id.slice(1));
}

/** The primary's answer: the lease, or a refusal; `heldBy` names the session that has the address RADIUS gave. */
export type AuthorizeResult = LeaseAnswer & { heldBy?: string };

/**
 * Who decides, across worker processes, what must be decided once: single-session and the
 * address lease (server/workers/). The server tells it when a session is up and when it ends, and
 * of each failed login (the brake per user name covers every worker).
 */
export interface AddressAuthority {
  authorize(session: Session, req: AuthorizeRequest): Promise<AuthorizeResult>;
  sessionUp(session: Session): void;
  sessionClosed(session: Session): void;
  /** A failed login here: the other workers count it against the user name too. */
  loginFailed(source: string, user: string): void;
  /** A RADIUS session is up: what Disconnect/CoA and a lost-worker Stop need (the primary's). */
  radiusUp?(session: Session, radius: RemoteRadiusSession): void;
}

/** What a session needs from the server that owns it. */
export interface SessionHost {
  readonly clock: Clock;
  readonly log: Logger;
  readonly callIds: CallIdAllocator;
  readonly tun: TunDevice;
  /**
   * The kernel's drop list for the TUN device (net/tun-filter.ts), when it could be set up: a
   * session lists its address while its GRE send queue is full or its down rate limit is spent.
   */
  readonly tunDrops?: TunDropList | undefined;
  readonly system: SystemOps;
  sendGre(packet: Uint8Array, to: IPv4): void;
  /** Decide on an Outgoing-Call-Request (limits, pool). */
  admitCall(session: Session, req: OutgoingCallRequest): CallRequestDecision;
  /** Our call id now carries GRE for this session (or no longer). */
  bindCall(callId: number, session: Session | undefined): void;
  /** Client addresses: leased after authentication, confirmed when the network layer is up. */
  readonly leases: LeaseManager;
  /**
   * Workers (server/workers/): the primary, which decides single-session and leases addresses for
   * all of them; undefined in a single process, where `leases` and `sessionsOf` decide.
   */
  readonly authority?: AddressAuthority | undefined;
  /** Route TUN packets for `ip` to this session (or stop). */
  bindAddress(ip: IPv4, session: Session | undefined): void;
  /**
   * Route TUN packets for a subnet behind the client (RADIUS Framed-Route) to this session.
   * Undefined when done, or why not (it overlaps the pool, our addresses or another route).
   */
  claimFramedRoute(route: FramedRoute, session: Session): string | undefined;
  /** Stop routing that subnet to the session (nothing when it does not hold it). */
  releaseFramedRoute(route: FramedRoute, session: Session): void;
  /** Login back-off shared by every session (aaa/login-throttle.ts). */
  readonly loginThrottle: AuthThrottle;
  /** What unauthenticated peers may hold; the session applies the deadlines. */
  readonly limits: AdmissionLimits;
  /** RADIUS, when configured (aaa/radius/): authentication, addresses, accounting. */
  readonly radius?: RadiusService | undefined;
  sessionAuthenticated(session: Session): void;
  /** Other live sessions of `user` (single-session). */
  sessionsOf(user: string): readonly Session[];
  /** Our tunnel address for a client given `ip` (pptpd pairs localip with remoteip in order). */
  localAddressFor(ip: IPv4): IPv4;
  sessionUp(session: Session): void;
  sessionClosed(session: Session): void;
}

export interface SessionTransport {
  peer: IPv4;
  peerPort: number;
  write(bytes: Uint8Array): void;
  end(): void;
}

/** What `poptop sessions` shows of a session. */
export interface SessionInfo {
  id: string;
  user: string | null;
  peer: string;
  ip: string | null;
  auth: AuthMethod | null;
  mppe: string | null;
  state: string;
  uptimeS: number;
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  packetsOut: number;
}

const KILL_GRACE_MS = 10_000;
/** The session's own drop reasons (layerDrops().session): its rate limit each way, its source check. */
const RATE_LIMITED_DOWN = 'rate limit towards the client';
const RATE_LIMITED_UP = 'rate limit from the client';
const SPOOFED = 'source address not the one given to the client';
/** Reasons for our address to be in the host's TUN drop list: the GRE send queue is full; the down rate limit is spent. */
const TUN_DROP_QUEUE = 1;
const TUN_DROP_RATE = 2;
/** After the call is up, how long without any GRE from the peer before the log says so. */
export const GRE_SILENCE_MS = 5000;

/**
 * One client: a PPTP control connection (PAC role) and, once its call is up, the call's data path
 * (tunnel/call.ts: GRE channel + PPP link, server role), plus what the session holds elsewhere: an
 * address lease (aaa/leases.ts) and its attachment to the host (route, proxy ARP, hooks). Everything
 * it holds is released on every way it can end, exactly once.
 *
 *   TCP ── ControlConnection ──(call up)──> TunnelCall ──(network up)──> HostAttachment ── TUN
 */
export class Session implements GreEndpoint {
  readonly id: string;
  readonly peer: IPv4;
  readonly startedAt: number;
  private readonly host: SessionHost;
  private readonly settings: ServerSettings;
  readonly log: Logger;
  readonly control: ControlConnection;
  private call: CallInfo | undefined;
  private tunnel: TunnelCall | undefined;
  private readonly attachment: HostAttachment;
  private user: string | undefined;
  private method: AuthMethod | undefined;
  /** The leased address, from authentication on. */
  private ip: IPv4 | undefined;
  private addressBound = false;
  /** Why our address should be in the host's TUN drop list (TUN_DROP_* bits); 0: it should not. */
  private tunDropWhy = 0;
  /** Our address while it is in the list, and the reasons it was listed for. */
  private tunDropListed: IPv4 | undefined;
  private tunDropListedFor = 0;
  /** Ends the TUN_DROP_RATE reason once the down bucket has refilled (msUntilRefilled). */
  private rateRefill: TimerHandle | undefined;
  private mppe: string | undefined;
  private upAt: number | undefined;
  private dns: IPv4[] = [];
  private closed = false;
  /** The first reason the session started to end; the log's closing line reports it. */
  private endReason: string | undefined;
  private killTimer: TimerHandle | undefined;
  /** Call → network layer up (setup-deadline); accept → call placed is the control connection's. */
  private deadline: TimerHandle | undefined;
  private setupDeadlineS = 0;
  /** idle / maxconnect while up. */
  private idleTimer: TimerHandle | undefined;
  private maxTimer: TimerHandle | undefined;
  private idleSeen = { packets: -1, at: 0 };
  private localAddress: IPv4 = 0;
  private wtmpLine: string | undefined;
  private greWatch: TimerHandle | undefined;
  private readonly counters = {
    bytesIn: 0,
    bytesOut: 0,
    packetsIn: 0,
    packetsOut: 0,
    spoofed: 0,
    rateLimitedDown: 0,
    rateLimitedUp: 0,
  };
  /** Rate limit buckets (aaa/rate-limit.ts), from authentication on when the user has a limit. */
  private down: TokenBucket | undefined;
  private up: TokenBucket | undefined;
  /** The GRE and PPP drop counts as the data path stopped (layerDrops() after the call). */
  private dataPathDrops: { gre?: Record<string, number>; ppp?: Record<string, number> } = {};
  /** RADIUS hooks (aaa/radius/service.ts), when RADIUS is configured. */
  private readonly radius: RadiusSession | undefined;
  /** Subnets behind the client routed to it (RADIUS Framed-Route), from network up to release. */
  private framedRoutes: FramedRoute[] = [];
  /** The radattr file for ip-up / ip-down (`plugin radattr.so`), when there is one. */
  private radattrPath: string | undefined;
  /** From the first releaseNetwork() that had something on the host: resolves when it is gone. */
  private hostReleased: Promise<void> | undefined;

  constructor(id: number, host: SessionHost, settings: ServerSettings, transport: SessionTransport) {
    this.id = `s${id}`;
    this.host = host;
    this.settings = settings;
    this.peer = transport.peer;
    this.startedAt = host.clock.now();
    this.log = new PrefixLogger(host.log, () => this.prefix());
    this.attachment = new HostAttachment(host.system, this.log, { proxyArp: settings.proxyArp });
    this.control = new ControlConnection({
      role: 'pac',
      clock: host.clock,
      log: this.log.child('pptp:'),
      callIds: host.callIds,
      write: (b) => transport.write(b),
      close: () => transport.end(),
      hostName: settings.serverName,
      vendor: 'poptop',
      establishTimeoutMs: settings.startTimeoutS * 1000,
      stopTimeoutMs: 3000,
      echoIntervalMs: settings.pptpEchoIntervalS * 1000,
      callDeadlineMs: settings.callDeadlineS * 1000,
      onCallRequest: (req) => host.admitCall(this, req),
      onCallUp: (call) => this.onCallUp(call),
      onCallDown: (call, reason) => this.onCallDown(call, reason),
      onClosed: (reason) => this.finish(reason),
    });
    this.log.info(`connection from ${formatIPv4(this.peer)}:${transport.peerPort}`);
    this.setupDeadlineS = settings.setupDeadlineS;
    this.radius = host.radius?.session(this);
    this.control.start();
  }

  private prefix(): string {
    const parts = [this.id, this.user ?? '-', formatIPv4(this.peer)];
    if (this.ip !== undefined) parts.push(formatIPv4(this.ip));
    return `[${parts.join(' ')}]`;
  }

  /** TCP bytes from the client. */
  receiveTcp(bytes: Uint8Array): void {
    this.control.receive(bytes);
  }

  tcpClosed(): void {
    this.control.transportClosed();
  }

  /** A GRE packet for our call id, from the control connection's peer address (GreDemux). */
  receiveGre(packet: Uint8Array, header: GreHeader): void {
    this.tunnel?.receiveGre(packet, header);
  }

  /** An IP packet from the TUN device for this session's address; `headroom` as TunDevice's. */
  sendIp(packet: Uint8Array, headroom = 0): void {
    if (!this.tunnel) return;
    if (this.down && !this.down.take(packet.length, this.host.clock.now())) {
      this.rateLimited('down');
      this.rateSpent(this.down, packet.length);
      return;
    }
    this.counters.packetsOut++;
    this.counters.bytesOut += packet.length;
    this.tunnel.sendIp(packet, headroom);
  }

  get assignedIp(): IPv4 | undefined {
    return this.ip;
  }

  get userName(): string | undefined {
    return this.user;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** True once the user is known (the per-source limits count only the others). */
  get authenticated(): boolean {
    return this.user !== undefined;
  }

  /** True once the network layer came up. */
  get isUp(): boolean {
    return this.upAt !== undefined;
  }

  /**
   * Disconnect/CoA for this session (a worker's primary forwards them): `disconnect` ends it as
   * a Disconnect-Request does (its Stop says Admin-Reset), else `limits` change. False when it has
   * no RADIUS session up.
   */
  dynauth(change: { disconnect: string } | { limits: CoaChanges }): boolean {
    if (!this.radius?.isUp) return false;
    if ('disconnect' in change) this.radius.disconnect(change.disconnect);
    else this.radius.changeLimits(change.limits);
    return true;
  }

  /** End the session cleanly: LCP Terminate, then Call-Disconnect-Notify and Stop-Control-Connection. */
  kill(reason: string): void {
    if (this.closed) return;
    this.endReason ??= reason;
    this.log.info(`closing: ${reason}`);
    this.killTimer ??= this.host.clock.setTimer(KILL_GRACE_MS, () =>
      this.control.stop(`${reason} (peer did not finish in time)`),
    );
    if (this.tunnel && this.tunnel.phase !== 'dead') this.tunnel.close(reason);
    else this.hangUp(reason);
  }

  /** "up", or how far the set-up got: "ppp-authenticate", "pptp-wait-ctl-request"... */
  get state(): string {
    if (this.upAt !== undefined) return 'up';
    return this.tunnel ? `ppp-${this.tunnel.phase}` : `pptp-${this.control.state}`;
  }

  /** Traffic counters, live (read-only view, not a copy: cheap to read for every session). */
  get traffic(): Readonly<{ bytesIn: number; bytesOut: number; packetsIn: number; packetsOut: number }> {
    return this.counters;
  }

  /** Why the session ended (or started to end); undefined while it runs. */
  get closeReason(): string | undefined {
    return this.endReason;
  }

  /** Drops counted by this session's own layers, by reason (allocates: not for every packet). */
  layerDrops(): {
    pptp: Record<string, number>;
    gre?: Record<string, number>;
    ppp?: Record<string, number>;
    session?: Record<string, number>;
  } {
    const t = this.tunnel;
    const data = t ? t.dropSnapshots() : this.dataPathDrops;
    const out: ReturnType<Session['layerDrops']> = { pptp: this.control.drops.snapshot(), ...data };
    const c = this.counters;
    if (c.rateLimitedDown + c.rateLimitedUp + c.spoofed > 0) {
      // The session's own policing: the rate limit each way and the source address check.
      const own: Record<string, number> = {};
      if (c.rateLimitedDown > 0) own[RATE_LIMITED_DOWN] = c.rateLimitedDown;
      if (c.rateLimitedUp > 0) own[RATE_LIMITED_UP] = c.rateLimitedUp;
      if (c.spoofed > 0) own[SPOOFED] = c.spoofed;
      out.session = own;
    }
    return out;
  }

  info(): SessionInfo {
    return {
      id: this.id,
      user: this.user ?? null,
      peer: formatIPv4(this.peer),
      ip: this.ip !== undefined ? formatIPv4(this.ip) : null,
      auth: this.method ?? null,
      mppe: this.mppe ?? null,
      state: this.state,
      uptimeS: Math.round((this.host.clock.now() - this.startedAt) / 1000),
      bytesIn: this.counters.bytesIn,
      bytesOut: this.counters.bytesOut,
      packetsIn: this.counters.packetsIn,
      packetsOut: this.counters.packetsOut,
    };
  }

  private onCallUp(call: CallInfo): void {
    this.call = call;
    this.deadline?.cancel();
    const limit = this.setupDeadlineS;
    this.deadline = this.host.clock.setTimer(limit * 1000, () => {
      this.deadline = undefined;
      this.kill(`set-up not complete within ${limit} s of the call (LCP, authentication, CCP, IPCP)`);
    });
    this.host.bindCall(call.localCallId, this);
    this.log.debug(
      `call up: our call id ${call.localCallId}, peer call id ${call.peerCallId}, peer window ${call.peerRecvWindow}`,
    );
    this.tunnel = new TunnelCall({
      role: 'server',
      clock: this.host.clock,
      log: this.log,
      call,
      peer: this.peer,
      sendGre: (p, to) => this.host.sendGre(p, to),
      policy: extend(this.settings.policy, { localAddress: this.settings.localIps[0] ?? 0, peerAddress: 0 }),
      authenticator: (method, host) =>
        createAuthenticator(method, host, {
          credentials: this.settings.credentials,
          serverName: this.settings.serverName,
          stripDomain: this.settings.stripDomain,
          peerAddress: formatIPv4(this.peer),
          throttle: this.host.loginThrottle,
          ...(this.radius ? { remote: this.radius.authenticator(call.localCallId) } : {}),
        }),
      onAccepting: (accepting) => this.onAccepting(accepting),
      events: {
        onAuthenticated: (r) => this.onAuthenticated(r),
        onNetworkUp: (info) => this.onNetworkUp(info),
        onIp: (p) => this.onIpFromPeer(p),
        onDown: (reason) => this.onLinkDown(reason),
      },
    });
    this.tunnel.open();
    this.greWatch = this.host.clock.setTimer(GRE_SILENCE_MS, () => this.noGreYet());
  }

  /**
   * The GRE send queue is full (or has room again): while it is full, have the kernel drop what is
   * routed to our address, unread, rather than read each packet to drop it here; the kernel's count
   * joins the link's drops (a reason of its own) when the address comes off the list. Packets for subnets behind the
   * client (Framed-Route) are not listed: they are still read, then dropped before encryption.
   */
  private onAccepting(accepting: boolean): void {
    this.wantTunDrops(TUN_DROP_QUEUE, !accepting);
  }

  /**
   * The down rate limit is spent: the kernel drops what is routed to us until the bucket has
   * refilled a little (TokenBucket.msUntilRefilled: what then passes at once fits the GRE window,
   * and a slow client is not kept waiting long). A flood towards a limited client then costs no
   * reads and cannot fill the device's queue that every session shares.
   */
  private rateSpent(bucket: TokenBucket, refused: number): void {
    if (!this.host.tunDrops || this.tunDropWhy & TUN_DROP_RATE) return;
    this.wantTunDrops(TUN_DROP_RATE, true);
    this.rateRefill = this.host.clock.setTimer(bucket.msUntilRefilled(this.host.clock.now(), refused), () => {
      this.rateRefill = undefined;
      this.wantTunDrops(TUN_DROP_RATE, false);
    });
  }

  /** Sets or clears one reason; the address is listed while any holds (once it is bound to us). */
  private wantTunDrops(reason: number, on: boolean): void {
    const list = this.host.tunDrops;
    if (!list) return;
    this.tunDropWhy = on ? this.tunDropWhy | reason : this.tunDropWhy & ~reason;
    if (this.tunDropWhy === 0) this.unlistTunDrops();
    else if (this.tunDropListed !== undefined) {
      // Listed already, for other reasons: what the kernel dropped so far goes to those.
      if (this.tunDropWhy !== this.tunDropListedFor) {
        this.countTunDrops(list.remove(this.tunDropListed));
        this.tunDropListedFor = this.tunDropWhy;
        if (!list.add(this.tunDropListed)) this.tunDropListed = undefined;
      }
    } else if (this.addressBound && this.ip !== undefined && list.add(this.ip)) {
      this.tunDropListed = this.ip;
      this.tunDropListedFor = this.tunDropWhy;
    }
  }

  /** Off the list (every reason cleared): the kernel's count joins ours, under the reason listed for. */
  private unlistTunDrops(): void {
    this.tunDropWhy = 0;
    this.rateRefill?.cancel();
    this.rateRefill = undefined;
    const ip = this.tunDropListed;
    if (ip === undefined) return;
    this.tunDropListed = undefined;
    this.countTunDrops(this.host.tunDrops?.remove(ip) ?? 0);
  }

  /** The kernel's drops for us, under the reason the address was listed for (the rate's first). */
  private countTunDrops(dropped: number): void {
    if (dropped === 0) return;
    if (this.tunDropListedFor & TUN_DROP_RATE) this.rateLimited('down', dropped);
    else this.tunnel?.countSendQueueDrops(dropped);
  }

  /** The FAQ's "LCP: timeout sending Config-Requests" / Windows 619, said once per session. */
  private noGreYet(): void {
    this.greWatch = undefined;
    if (this.closed || !this.tunnel || this.tunnel.greReceived > 0) return;
    this.log.warn(
      `no GRE (IP protocol 47) from ${formatIPv4(this.peer)} within ${GRE_SILENCE_MS / 1000} s of the call: a firewall or NAT between you drops it (Windows error 619); allow protocol 47, or load nf_conntrack_pptp on the NAT router`,
    );
  }

  /**
   * The peer is authenticated: lease its address (the first time), or keep the lease it has (a
   * second authentication or an LCP renegotiation on the same session).
   */
  private onAuthenticated(r: AuthSuccess): AuthorizeAnswer | Promise<AuthorizeAnswer> {
    const again = this.user !== undefined;
    const authority = this.host.authority;
    if (authority) {
      // A worker: the primary decides single-session and the address, for every worker at once.
      this.user ??= r.user;
      this.host.sessionAuthenticated(this);
      this.method = r.method;
      const radius = this.radius?.accept(r);
      return authority
        .authorize(this, {
          user: r.user,
          entry: r.credential ? { user: r.credential.user, addresses: r.credential.addresses } : null,
          again,
          ...(radius ? { radius: radius.ip === undefined ? {} : { ip: radius.ip } } : {}),
        })
        .then((answer) => {
          if (answer.heldBy !== undefined && radius?.ip !== undefined)
            this.radius?.addressHeldBy(radius.ip, answer.heldBy);
          return this.authorized(r, again, answer);
        });
    }
    if (!again && this.settings.singleSession !== 'off') {
      const others = this.host.sessionsOf(r.user).filter((s) => s !== this && !s.isClosed);
      if (others.length > 0 && this.settings.singleSession === 'deny') {
        this.log.warn(
          `refusing ${r.user}: already connected (session ${others.map((s) => s.id).join(', ')}; single-session deny)`,
        );
        return false;
      }
      for (const old of others)
        old.kill(`replaced by a new session of ${r.user} (${this.id}; single-session replace)`);
    }
    this.user ??= r.user;
    this.host.sessionAuthenticated(this);
    this.method = r.method;
    const answer =
      this.radius?.lease(r, this.host.leases) ?? this.host.leases.lease(this, r.user, r.credential);
    return this.authorized(r, again, answer);
  }

  /** The address is decided (here, or by the primary for a worker): the session takes it. */
  private authorized(r: AuthSuccess, again: boolean, answer: LeaseAnswer): AuthorizeAnswer {
    if ('refuse' in answer) {
      this.log.warn(`refusing ${r.user}: ${answer.refuse}`);
      return false;
    }
    this.ip = answer.lease.ip;
    this.localAddress = this.host.localAddressFor(this.ip);
    const fromRadius = this.radius?.rateLimit();
    if (fromRadius) this.applyRateLimit(fromRadius.limit, `RADIUS ${fromRadius.source}`);
    else this.applyRateLimit(r.credential?.rateLimit ?? this.settings.rateLimit);
    if (again)
      this.log.info(`authenticated again with ${methodName(r.method)}; keeping ${formatIPv4(this.ip)}`);
    else this.log.debug(`authenticated with ${methodName(r.method)}; assigning ${formatIPv4(this.ip)}`);
    const servers = this.radius?.ipcpServers();
    return {
      peerAddress: this.ip,
      ...(this.localAddress ? { localAddress: this.localAddress } : {}),
      ...(servers ? { servers } : {}),
    };
  }

  private onNetworkUp(info: NetworkInfo): void {
    this.mppe = info.mppe
      ? `${info.mppe.bits}-bit ${info.mppe.stateless ? 'stateless' : 'stateful'}`
      : undefined;
    if (this.upAt !== undefined) {
      this.log.info('network layer renegotiated');
      return;
    }
    const ip = info.peerAddress;
    if (this.ip !== undefined && ip !== this.ip) {
      // IPCP settles on the address we offered; anything else would leave route and lease apart.
      this.tunnel?.close(`IPCP settled on ${formatIPv4(ip)}, not the leased ${formatIPv4(this.ip)}`);
      return;
    }
    this.upAt = this.host.clock.now();
    this.deadline?.cancel();
    this.deadline = undefined;
    this.host.sessionUp(this);
    this.dns = info.dns;
    this.ip = ip;
    this.host.leases.confirm(this);
    this.host.bindAddress(ip, this);
    this.addressBound = true;
    const mppe = this.mppe ? `MPPE ${this.mppe}` : 'no encryption';
    const dns = info.dns.length ? `, DNS ${info.dns.map(formatIPv4).join(' ')}` : '';
    this.log.info(
      `session up: ${methodName(this.method)}, ${mppe}, ${formatIPv4(info.localAddress)} <-> ${formatIPv4(ip)}, mtu ${info.mtu}${dns}`,
    );
    // One TUN device for all sessions: a smaller session MTU goes on the client's route.
    const mtu = info.mtu < this.settings.policy.mtu ? info.mtu : undefined;
    this.framedRoutes = this.claimFramedRoutes(ip);
    const radattr = this.radius?.radattrFile(this.host.tun.name);
    this.radattrPath = radattr?.path;
    this.attachment.attach(ip, mtu, this.hookContext(), (p) => this.host.tun.write(p), {
      framedRoutes: this.framedRoutes,
      onFramedRouteRefused: (r) => this.dropFramedRoute(r),
      ...(radattr ? { radattr } : {}),
    });
    this.radius?.up(ip, info.mppe?.bits);
    const remote = this.radius?.remote();
    if (remote) this.host.authority?.radiusUp?.(this, remote);
    this.startLimits();
    if (this.settings.logwtmp) {
      this.wtmpLine = `pptp/${this.id}`;
      void this.host.system.wtmp('login', this.wtmpEntry(), this.log);
    }
  }

  /** The RADIUS Framed-Routes the server lets this session have (the others are logged). */
  private claimFramedRoutes(ip: IPv4): FramedRoute[] {
    const out: FramedRoute[] = [];
    for (const r of this.radius?.framedRoutes(ip) ?? []) {
      const refused = this.host.claimFramedRoute(r, this);
      if (refused) this.log.warn(`RADIUS Framed-Route ${describeFramedRoute(r)} refused: ${refused}`);
      else out.push(r);
    }
    return out;
  }

  /** A framed route the host could not add: packets for it no longer come to this session. */
  private dropFramedRoute(r: FramedRoute): void {
    this.host.releaseFramedRoute(r, this);
    this.framedRoutes = this.framedRoutes.filter((x) => x !== r);
  }

  /** Whether `src` lies in a subnet routed to this client (it may send from there). */
  private routedFrom(src: IPv4): boolean {
    for (const r of this.framedRoutes) if (inPrefix(src, r.network, r.prefixLength)) return true;
    return false;
  }

  /** pppd's maxconnect (seconds from up) and idle (seconds without IP packets either way). */
  private startLimits(): void {
    const { maxConnectS, idleS } = this.settings;
    if (maxConnectS > 0) {
      this.maxTimer = this.host.clock.setTimer(maxConnectS * 1000, () =>
        this.kill(`connect time limit reached (maxconnect ${maxConnectS} s)`),
      );
    }
    if (idleS > 0) {
      // Checked a few times per period against the packet counters: no clock read per packet.
      const step = Math.max(250, (idleS * 1000) / 4);
      this.idleSeen = {
        packets: this.counters.packetsIn + this.counters.packetsOut,
        at: this.host.clock.now(),
      };
      const check = (): void => {
        const packets = this.counters.packetsIn + this.counters.packetsOut;
        const now = this.host.clock.now();
        if (packets !== this.idleSeen.packets) this.idleSeen = { packets, at: now };
        if (now - this.idleSeen.at >= idleS * 1000) {
          this.idleTimer = undefined;
          this.kill(`idle for ${idleS} s (pppd idle)`);
          return;
        }
        this.idleTimer = this.host.clock.setTimer(step, check);
      };
      this.idleTimer = this.host.clock.setTimer(step, check);
    }
  }

  private wtmpEntry(): WtmpEntry {
    return {
      line: this.wtmpLine ?? '',
      user: this.user ?? '',
      host: formatIPv4(this.peer),
      address: this.peer,
      pid: process.pid,
      timeMs: Date.now(),
    };
  }

  /** The limit at authentication (the first one only: a second authentication keeps it). */
  private applyRateLimit(limit: RateLimit | undefined, why?: string): void {
    if (!limit || this.down || this.up) return;
    const now = this.host.clock.now();
    if (limit.downBps > 0) this.down = new TokenBucket(limit.downBps, now);
    if (limit.upBps > 0) this.up = new TokenBucket(limit.upBps, now);
    if (this.down || this.up) {
      this.log.info(
        `rate limit: ${formatRate(limit.downBps)} down, ${formatRate(limit.upBps)} up${why ? ` (${why})` : ''}`,
      );
    }
  }

  /** New limits for the running session (RADIUS CoA): fresh buckets; 0 removes a direction's limit. */
  setRateLimit(limit: RateLimit, why: string): void {
    // A listing for the old bucket ends with it; the new one lists again once it is spent.
    if (this.tunDropWhy & TUN_DROP_RATE) {
      this.rateRefill?.cancel();
      this.rateRefill = undefined;
      this.wantTunDrops(TUN_DROP_RATE, false);
    }
    const now = this.host.clock.now();
    this.down = limit.downBps > 0 ? new TokenBucket(limit.downBps, now) : undefined;
    this.up = limit.upBps > 0 ? new TokenBucket(limit.upBps, now) : undefined;
    this.log.info(`rate limit now ${formatRate(limit.downBps)} down, ${formatRate(limit.upBps)} up (${why})`);
  }

  /** Counted; logged the first time and then at every thousandth, never per packet. */
  private rateLimited(direction: 'down' | 'up', count = 1): void {
    const key = direction === 'down' ? 'rateLimitedDown' : 'rateLimitedUp';
    const before = this.counters[key];
    const n = before + count;
    this.counters[key] = n;
    if (before === 0 || Math.floor(n / 1000) > Math.floor(before / 1000))
      this.log.info(
        `rate limit: dropping packets ${direction === 'down' ? 'towards' : 'from'} the client (${n} so far)`,
      );
  }

  private onIpFromPeer(packet: Uint8Array): void {
    // Only the address we gave the client may appear as source (no spoofing through the tunnel).
    if (ipVersion(packet) !== 4 || packet.length < IPV4_HEADER_MIN) return;
    const src = ipv4FromBytes(packet, IPV4_SOURCE_OFFSET);
    if (src !== this.ip && !this.routedFrom(src)) {
      this.counters.spoofed++;
      if (this.counters.spoofed === 1 || this.counters.spoofed % 1000 === 0) {
        this.log.warn(
          `dropped packet from ${formatIPv4(src)}: the client may only send from ${this.ip === undefined ? '?' : formatIPv4(this.ip)} (${this.counters.spoofed} so far)`,
        );
      }
      return;
    }
    if (this.up && !this.up.take(packet.length, this.host.clock.now())) {
      this.rateLimited('up');
      return;
    }
    this.counters.packetsIn++;
    this.counters.bytesIn += packet.length;
    this.attachment.pass(packet);
  }

  private onLinkDown(reason: string): void {
    this.endReason ??= reason;
    this.log.debug(`PPP link down: ${reason}`);
    this.releaseNetwork();
    this.hangUp(reason);
  }

  private onCallDown(_call: CallInfo, reason: string): void {
    this.endReason ??= reason;
    this.log.debug(`call cleared: ${reason}`);
    this.stopDataPath();
    this.releaseNetwork();
    this.control.stop(reason);
  }

  /** Call-Disconnect-Notify then Stop-Control-Connection-Request (pptpd hangs up the same way). */
  private hangUp(reason: string): void {
    if (this.call) this.control.clearCall(this.call.localCallId, reason);
    this.control.stop(reason);
  }

  private stopDataPath(): void {
    this.unlistTunDrops();
    if (this.call) this.host.bindCall(this.call.localCallId, undefined);
    const tunnel = this.tunnel;
    this.tunnel = undefined;
    if (tunnel) this.dataPathDrops = tunnel.dropSnapshots();
    tunnel?.stop('call cleared');
  }

  /** Route, proxy ARP, ip-down and the lease: everything the network layer held. Idempotent. */
  private releaseNetwork(): void {
    this.idleTimer?.cancel();
    this.maxTimer?.cancel();
    this.idleTimer = this.maxTimer = undefined;
    if (this.wtmpLine) {
      void this.host.system.wtmp('logout', this.wtmpEntry(), this.log);
      this.wtmpLine = undefined;
    }
    this.unlistTunDrops();
    if (this.addressBound && this.ip !== undefined) {
      this.addressBound = false;
      this.host.bindAddress(this.ip, undefined);
    }
    const framed = this.framedRoutes;
    this.framedRoutes = [];
    // The address and subnets stay this session's until their routes are gone from the kernel:
    // given to another session sooner, the late deletion could remove that session's new route.
    const gone = this.attachment.release(this.hookContext());
    this.hostReleased ??= gone;
    const free = (): void => {
      for (const r of framed) this.host.releaseFramedRoute(r, this);
      this.host.leases.release(this);
    };
    if (gone) void gone.then(free);
    else free();
  }

  /**
   * Once the session is closed: undefined when it held nothing on the host, else resolves once its
   * routes and proxy ARP entry are gone and its address is free again (the server tells the
   * primary of workers then).
   */
  get released(): Promise<void> | undefined {
    return this.hostReleased;
  }

  private hookContext(): HookContext {
    const ctx: HookContext = {
      ifname: this.host.tun.name,
      localIp: formatIPv4(this.localAddress || (this.settings.localIps[0] ?? 0)),
      remoteIp: this.ip === undefined ? '' : formatIPv4(this.ip),
      peerName: this.user ?? '',
      ipparam: this.settings.noipparam ? '' : (this.settings.ipparam ?? formatIPv4(this.peer)),
      speed: this.settings.speed,
      sessionId: this.id,
      bytesSent: this.counters.bytesOut,
      bytesReceived: this.counters.bytesIn,
      dns: this.dns.map(formatIPv4),
    };
    if (this.radattrPath !== undefined) ctx.radattr = this.radattrPath;
    if (this.upAt !== undefined) ctx.connectTimeS = (this.host.clock.now() - this.upAt) / 1000;
    return ctx;
  }

  /** The control connection is gone: release everything still held. Runs once. */
  private finish(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    reason = this.endReason ??= reason;
    this.killTimer?.cancel();
    this.deadline?.cancel();
    this.greWatch?.cancel();
    this.stopDataPath();
    this.releaseNetwork();
    const c = this.counters;
    const dur =
      this.upAt !== undefined ? `, up ${Math.round((this.host.clock.now() - this.upAt) / 1000)} s` : '';
    this.log.info(
      `session closed: ${reason}${dur}, received ${c.bytesIn} bytes/${c.packetsIn} packets, sent ${c.bytesOut} bytes/${c.packetsOut} packets${inShort(reason)}`,
    );
    this.radius?.closed(reason);
    this.host.sessionClosed(this);
  }
}

/** The reason in a person's words (server/end-reasons.ts), when it is one we recognise. */
function inShort(reason: string): string {
  const why = classifyEnd(reason);
  return why.code === 'other' ? '' : ` (in short: ${why.words})`;
}

export function methodName(m: AuthMethod | undefined): string {
  switch (m) {
    case 'pap':
      return 'PAP';
    case 'chap-md5':
      return 'CHAP-MD5';
    case 'mschap':
      return 'MS-CHAPv1';
    case 'mschapv2':
      return 'MS-CHAPv2';
    case undefined:
      return 'no authentication';
  }
}
