import type { LeaseManager } from '../aaa/leases.ts';
import type { AuthThrottle } from '../aaa/login-throttle.ts';
import type { RadiusService, RadiusSession } from '../aaa/radius/service.ts';
import type { GreHeader } from '../gre/codec.ts';
import type { GreEndpoint } from '../gre/demux.ts';
import type { TunDevice } from '../net/interfaces.ts';
import { createAuthenticator } from '../ppp/auth/index.ts';
import type { AuthMethod, AuthSuccess } from '../ppp/auth/types.ts';
import type { NetworkInfo } from '../ppp/link.ts';
import type { PeerServers } from '../ppp/link-types.ts';
import type { CallIdAllocator } from '../pptp/call-ids.ts';
import type { CallInfo, CallRequestDecision } from '../pptp/control.ts';
import { ControlConnection } from '../pptp/control.ts';
import type { OutgoingCallRequest } from '../pptp/messages.ts';
import { TunnelCall } from '../tunnel/call.ts';
import type { Clock, TimerHandle } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import {
  formatIPv4,
  IPV4_HEADER_MIN,
  IPV4_SOURCE_OFFSET,
  type IPv4,
  ipVersion,
  ipv4FromBytes,
} from '../wire/ip.ts';
import type { AdmissionLimits } from './admission.ts';
import type { HookContext } from './hooks.ts';
import { HostAttachment } from './host-attachment.ts';
import { PrefixLogger } from './session-log.ts';
import type { ServerSettings } from './settings.ts';
import type { SystemOps } from './system.ts';

/** What a session needs from the server that owns it. */
export interface SessionHost {
  readonly clock: Clock;
  readonly log: Logger;
  readonly callIds: CallIdAllocator;
  readonly tun: TunDevice;
  readonly system: SystemOps;
  sendGre(packet: Uint8Array, to: IPv4): void;
  /** Decide on an Outgoing-Call-Request (limits, pool). */
  admitCall(session: Session, req: OutgoingCallRequest): CallRequestDecision;
  /** Our call id now carries GRE for this session (or no longer). */
  bindCall(callId: number, session: Session | undefined): void;
  /** Client addresses: leased after authentication, confirmed when the network layer is up. */
  readonly leases: LeaseManager;
  /** Route TUN packets for `ip` to this session (or stop). */
  bindAddress(ip: IPv4, session: Session | undefined): void;
  /** Login back-off shared by every session (aaa/login-throttle.ts). */
  readonly loginThrottle: AuthThrottle;
  /** What unauthenticated peers may hold; the session applies the deadlines. */
  readonly limits: AdmissionLimits;
  /** RADIUS, when configured (aaa/radius/): authentication, addresses, accounting. */
  readonly radius?: RadiusService | undefined;
  sessionAuthenticated(session: Session): void;
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
  private readonly counters = { bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0, spoofed: 0 };
  /** RADIUS hooks (aaa/radius/service.ts), when RADIUS is configured. */
  private readonly radius: RadiusSession | undefined;

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
      onEstablished: (p) =>
        this.log.debug(`control connection from "${p.hostName}" (${p.vendor}) established`),
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

  /** An IP packet from the TUN device for this session's address. */
  sendIp(packet: Uint8Array): void {
    if (!this.tunnel) return;
    this.counters.packetsOut++;
    this.counters.bytesOut += packet.length;
    this.tunnel.sendIp(packet);
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

  info(): SessionInfo {
    return {
      id: this.id,
      user: this.user ?? null,
      peer: formatIPv4(this.peer),
      ip: this.ip !== undefined ? formatIPv4(this.ip) : null,
      auth: this.method ?? null,
      mppe: this.mppe ?? null,
      state:
        this.upAt !== undefined
          ? 'up'
          : this.tunnel
            ? `ppp-${this.tunnel.phase}`
            : `pptp-${this.control.state}`,
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
      policy: { ...this.settings.policy, localAddress: this.settings.localIps[0] ?? 0, peerAddress: 0 },
      authenticator: (method, host) =>
        createAuthenticator(method, host, {
          credentials: this.settings.credentials,
          serverName: this.settings.serverName,
          stripDomain: this.settings.stripDomain,
          peerAddress: formatIPv4(this.peer),
          throttle: this.host.loginThrottle,
          ...(this.radius ? { remote: this.radius.authenticator(call.localCallId) } : {}),
        }),
      events: {
        onAuthenticated: (r) => this.onAuthenticated(r),
        onNetworkUp: (info) => this.onNetworkUp(info),
        onIp: (p) => this.onIpFromPeer(p),
        onDown: (reason) => this.onLinkDown(reason),
      },
    });
    this.tunnel.open();
  }

  /**
   * The peer is authenticated: lease its address (the first time), or keep the lease it has (a
   * second authentication or an LCP renegotiation on the same session).
   */
  private onAuthenticated(r: AuthSuccess): { peerAddress?: IPv4; servers?: PeerServers } | false {
    const again = this.user !== undefined;
    this.user ??= r.user;
    this.host.sessionAuthenticated(this);
    this.method = r.method;
    const answer =
      this.radius?.lease(r, this.host.leases) ?? this.host.leases.lease(this, r.user, r.credential);
    if ('refuse' in answer) {
      this.log.warn(`refusing ${r.user}: ${answer.refuse}`);
      return false;
    }
    this.ip = answer.lease.ip;
    if (again)
      this.log.info(`authenticated again with ${methodName(r.method)}; keeping ${formatIPv4(this.ip)}`);
    else this.log.info(`authenticated with ${methodName(r.method)}; assigning ${formatIPv4(this.ip)}`);
    const servers = this.radius?.ipcpServers();
    return servers ? { peerAddress: this.ip, servers } : { peerAddress: this.ip };
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
    this.attachment.attach(ip, mtu, this.hookContext(), (p) => this.host.tun.write(p));
    this.radius?.up(ip, info.mppe?.bits);
  }

  private onIpFromPeer(packet: Uint8Array): void {
    // Only the address we gave the client may appear as source (no spoofing through the tunnel).
    if (ipVersion(packet) !== 4 || packet.length < IPV4_HEADER_MIN) return;
    const src = ipv4FromBytes(packet, IPV4_SOURCE_OFFSET);
    if (src !== this.ip) {
      this.counters.spoofed++;
      if (this.counters.spoofed === 1 || this.counters.spoofed % 1000 === 0) {
        this.log.warn(
          `dropped packet from ${formatIPv4(src)}: the client may only send from ${this.ip === undefined ? '?' : formatIPv4(this.ip)} (${this.counters.spoofed} so far)`,
        );
      }
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
    if (this.call) this.host.bindCall(this.call.localCallId, undefined);
    const tunnel = this.tunnel;
    this.tunnel = undefined;
    tunnel?.stop('call cleared');
  }

  /** Route, proxy ARP, ip-down and the lease: everything the network layer held. Idempotent. */
  private releaseNetwork(): void {
    if (this.addressBound && this.ip !== undefined) {
      this.addressBound = false;
      this.host.bindAddress(this.ip, undefined);
    }
    this.attachment.release(this.hookContext());
    this.host.leases.release(this);
  }

  private hookContext(): HookContext {
    const ctx: HookContext = {
      ifname: this.host.tun.name,
      localIp: formatIPv4(this.settings.localIps[0] ?? 0),
      remoteIp: this.ip === undefined ? '' : formatIPv4(this.ip),
      peerName: this.user ?? '',
      ipparam: this.settings.noipparam ? '' : (this.settings.ipparam ?? formatIPv4(this.peer)),
      speed: this.settings.speed,
      sessionId: this.id,
      bytesSent: this.counters.bytesOut,
      bytesReceived: this.counters.bytesIn,
      dns: this.dns.map(formatIPv4),
    };
    if (this.upAt !== undefined) ctx.connectTimeS = (this.host.clock.now() - this.upAt) / 1000;
    return ctx;
  }

  /** The control connection is gone: release everything still held. Runs once. */
  private finish(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    reason = this.endReason ?? reason;
    this.killTimer?.cancel();
    this.deadline?.cancel();
    this.stopDataPath();
    this.releaseNetwork();
    const c = this.counters;
    const dur =
      this.upAt !== undefined ? `, up ${Math.round((this.host.clock.now() - this.upAt) / 1000)} s` : '';
    this.log.info(
      `session closed: ${reason}${dur}, received ${c.bytesIn} bytes/${c.packetsIn} packets, sent ${c.bytesOut} bytes/${c.packetsOut} packets`,
    );
    this.radius?.closed(reason);
    this.host.sessionClosed(this);
  }
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
