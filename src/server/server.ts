import type { Socket } from 'node:net';
import { getHeapStatistics } from 'node:v8';
import { connectionLimitReached, LeaseManager } from '../aaa/leases.ts';
import { LoginThrottle } from '../aaa/login-throttle.ts';
import type { RadiusTransport } from '../aaa/radius/client.ts';
import type { CoaChanges } from '../aaa/radius/dynauth.ts';
import type { FramedRoute } from '../aaa/radius/framed-route.ts';
import { RadiusService } from '../aaa/radius/service.ts';
import { GRE_DEMUX_EXPECTED, GreDemux, type GreDemuxDropReason } from '../gre/demux.ts';
import type { FdReserve } from '../net/fd-reserve.ts';
import type { GrePort, TunDevice, TunDropList } from '../net/interfaces.ts';
import { type ControlListener, TcpListener } from '../net/listener.ts';
import { CallIdAllocator, type CallIdRange } from '../pptp/call-ids.ts';
import { GeneralError, OutgoingCallResult } from '../pptp/constants.ts';
import type { CallRequestDecision } from '../pptp/control.ts';
import type { Clock } from '../util/clock.ts';
import { DropCounter } from '../util/counters.ts';
import type { Logger } from '../util/log.ts';
import {
  formatIPv4,
  formatPrefix,
  IPV4_DESTINATION_OFFSET,
  IPV4_HEADER_MIN,
  type IPv4,
  inPrefix,
  ipVersion,
  ipv4FromBytes,
  parseIPv4,
} from '../wire/ip.ts';
import {
  type AcceptFailure,
  type AdmissionLimits,
  type AdmissionRefusal,
  ConnectionRefuser,
  listenForControl,
  SourceTable,
} from './admission.ts';
import { FramedRouteTable } from './framed-routes.ts';
import { MemoryRelease } from './memory-release.ts';
import type { ServerObserver } from './observer.ts';
import { type AddressAuthority, Session, type SessionHost, type SessionInfo } from './session.ts';
import type { ServerSettings } from './settings.ts';
import type { SystemCounters, SystemOps } from './system.ts';
import type { CallRefusal } from './workers/messages.ts';

/** The server's vocabulary: its own drops, the GRE demultiplexer's and admission's refusals. */
export type ServerDropReason =
  | 'non-IPv4 packet from the TUN device'
  | 'TUN packet for an address without a session'
  | 'too many TCP connections'
  | 'control connection does not read its replies'
  | AcceptFailure
  | GreDemuxDropReason
  | AdmissionRefusal;

/** How long a closed control connection may wait for the peer's FIN before it is destroyed. */
const CONTROL_LINGER_MS = 3000;

export interface PptpServerDeps {
  clock: Clock;
  log: Logger;
  gre: GrePort;
  tun: TunDevice;
  /** The kernel's drop list for `tun` (net/tun-filter.ts), where it could be set up. */
  tunDrops?: TunDropList;
  system: SystemOps;
  /** Where control connections come from. @default TCP on settings.listen:settings.port */
  listener?: ControlListener;
  /** RADIUS sockets (tests); default UDP. */
  radiusTransport?: (purpose: 'authentication' | 'accounting') => RadiusTransport;
  /** File descriptors kept in reserve: new connections and calls are refused before the limit. */
  fds?: FdReserve;
  /** A worker's share of the call ids (server/workers/); default all. */
  callIds?: CallIdRange;
  /** A worker: the primary decides single-session and leases (server/workers/). */
  authority?: AddressAuthority;
  /**
   * One full garbage collection, run once most sessions have ended (server/memory-release.ts);
   * none by default.
   */
  collectGarbage?: () => void;
  /** With collectGarbage: give the C library's free heap pages back (the addon's malloc_trim). */
  trimHeap?: () => void;
}

/**
 * The daemon core: accepts PPTP control connections, owns the session registry, and
 * demultiplexes the shared data plane: GRE packets by our call id (and the control
 * connection's peer address), TUN packets by destination address.
 */
export class PptpServer implements SessionHost {
  readonly clock: Clock;
  readonly log: Logger;
  readonly callIds: CallIdAllocator;
  readonly authority: AddressAuthority | undefined;
  readonly tun: TunDevice;
  readonly tunDrops: TunDropList | undefined;
  readonly system: SystemOps;
  readonly drops: DropCounter<ServerDropReason>;
  private readonly gre: GrePort;
  readonly leases: LeaseManager;
  /**
   * A worker: set while its primary's pool is empty or its `connections` limit is reached, so that
   * calls are refused in the Outgoing-Call-Reply (server/workers/); undefined otherwise.
   */
  globalAdmission: CallRefusal | undefined;
  /** Brute-force back-off per source address and user name (RFC 2759 §10). */
  readonly loginThrottle: LoginThrottle;
  private settings: ServerSettings;
  private readonly sessions = new Map<string, Session>();
  private readonly demux: GreDemux;
  private readonly byAddress = new Map<IPv4, Session>();
  /** Subnets behind clients (RADIUS Framed-Route): asked only when byAddress has no session. */
  private readonly framedRoutes = new FramedRouteTable<Session>();
  /** Live sessions by authenticated user name (single-session). */
  private readonly byUser = new Map<string, Set<Session>>();
  /** remoteip position of each pool address, for pptpd's localip pairing. */
  private poolIndex = new Map<IPv4, number>();
  /** Per-source counts of unauthenticated connections and set-ups in progress. */
  private readonly sources = new SourceTable();
  private readonly unauthenticated = new Set<Session>();
  private readonly settingUp = new Set<Session>();
  private readonly refuser: ConnectionRefuser;
  private readonly listener: ControlListener;
  private readonly fds: FdReserve | undefined;
  private nextId = 1;
  private stopping = false;
  /** Metrics and the status page (server/observer.ts); none by default. */
  observer: ServerObserver | undefined;
  /** RADIUS (settings.radius): fixed at start; a reload keeps it. */
  readonly radius: RadiusService | undefined;
  private readonly memoryRelease: MemoryRelease | undefined;

  constructor(settings: ServerSettings, deps: PptpServerDeps) {
    this.settings = settings;
    this.clock = deps.clock;
    this.log = deps.log;
    this.gre = deps.gre;
    this.tun = deps.tun;
    this.tunDrops = deps.tunDrops;
    this.system = deps.system;
    this.listener = deps.listener ?? new TcpListener(settings.listen, settings.port);
    this.fds = deps.fds;
    this.callIds = new CallIdAllocator(undefined, deps.callIds);
    this.authority = deps.authority;
    this.drops = new DropCounter<ServerDropReason>(deps.log, 'packet', undefined, {
      expected: GRE_DEMUX_EXPECTED,
    });
    this.leases = new LeaseManager(settings.delegate ? [] : settings.remoteIps);
    this.poolIndex = new Map(settings.remoteIps.map((ip, i) => [ip, i]));
    this.loginThrottle = new LoginThrottle(settings.loginThrottle, {
      clock: deps.clock,
      log: deps.log,
      ...(deps.authority ? { onFailure: (source, user) => deps.authority?.loginFailed(source, user) } : {}),
    });
    this.demux = new GreDemux(this.drops, deps.clock);
    this.refuser = new ConnectionRefuser(deps.clock, this.drops);
    if (settings.radius) {
      this.radius = new RadiusService(settings.radius, {
        clock: deps.clock,
        log: deps.log,
        ...(deps.radiusTransport ? { transport: deps.radiusTransport } : {}),
        // A worker (it has an authority): Accounting-On/Off and Disconnect/CoA are its primary's.
        nasEvents: deps.authority === undefined,
      });
    }
    if (deps.collectGarbage) {
      this.memoryRelease = new MemoryRelease({
        clock: deps.clock,
        log: deps.log,
        collect: deps.collectGarbage,
        ...(deps.trimHeap ? { trimHeap: deps.trimHeap } : {}),
        sessions: () => this.sessions.size,
        heapUsed: () => getHeapStatistics().used_heap_size,
      });
    }
    this.gre.onPacket((p, from) => this.demux.receive(p, from));
    this.tun.onPacket((p) => this.receiveTun(p));
  }

  get currentSettings(): ServerSettings {
    return this.settings;
  }

  get limits(): AdmissionLimits {
    return this.settings;
  }

  /** Start listening for control connections; resolves with the bound port. */
  async listen(): Promise<number> {
    const port = await listenForControl(
      this.listener,
      (sock) => this.accept(sock),
      this.drops,
      this.log,
      this.settings,
      { poolSize: this.leases.poolSize },
    );
    await this.radius?.start();
    return port;
  }

  /**
   * A control connection the primary accepted and handed to this worker, numbered by it (session
   * ids are unique across workers). The same admission as a connection of our own.
   */
  acceptHandedOver(sock: Socket, id: number): void {
    this.accept(sock, id);
  }

  private accept(sock: Socket, id = this.nextId++): void {
    const peer = parseIPv4((sock.remoteAddress ?? '').replace(/^::ffff:/, ''));
    if (peer === undefined || this.stopping) {
      sock.destroy();
      return;
    }
    const fds = this.fds;
    if (fds) {
      sock.once('close', fds.opened());
      const short = fds.check();
      if (short) {
        // The reason is logged once by FdReserve; a polite refusal only while it costs little.
        if (short.critical) {
          this.drops.drop('at the file descriptor reserve', `connection from ${formatIPv4(peer)} closed`);
          sock.destroy();
        } else {
          // Each polite refusal holds its socket for a while: a burst of them must not use up the
          // reserve itself (then every call of the connections already in would be refused too).
          const atMost = Math.max(1, Math.floor(fds.reserve / 4));
          this.refuser.refuse(sock, peer, 'at the file descriptor reserve', this.settings.serverName, atMost);
        }
        return;
      }
    }
    // Hard cap on sockets (idle or not) so a flood of connections cannot exhaust file descriptors.
    if (this.sessions.size >= this.settings.maxConnections * 2 + 16) {
      this.drops.drop('too many TCP connections', `from ${formatIPv4(peer)}`);
      sock.destroy();
      return;
    }
    const limits = this.limits;
    const refusal = this.loginThrottle.isLocked(formatIPv4(peer))
      ? 'address locked out after failed logins'
      : this.sources.admitConnection(peer, limits);
    if (refusal) {
      this.observer?.connectionRefused?.(formatIPv4(peer), refusal);
      this.refuser.refuse(sock, peer, refusal, this.settings.serverName);
      return;
    }
    // No TCP keepalive: the control connection's own Echo-Request after 60 s of silence (RFC 2637
    // §2.7, pptp/keepalive.ts) finds a vanished peer, and setting it costs two system calls per
    // connection.
    const session = new Session(id, this, this.settings, {
      peer,
      peerPort: sock.remotePort ?? 0,
      write: (b) => this.writeControl(sock, session, b, limits),
      end: () => this.endControl(sock),
    });
    this.sessions.set(session.id, session);
    if (!session.isClosed) {
      this.unauthenticated.add(session);
      this.sources.add(peer, 'unauth', 1);
    }
    sock.on('data', (d: Buffer) => session.receiveTcp(d));
    sock.on('error', (e) => session.log.debug(`TCP error: ${e.message}`));
    sock.on('close', () => session.tcpClosed());
  }

  /**
   * Close a control connection: FIN, then destroy after CONTROL_LINGER_MS whatever the peer does
   * (a peer that neither reads nor closes would otherwise keep the socket, outside every count).
   */
  private endControl(sock: Socket): void {
    if (sock.destroyed) return;
    sock.end();
    // Keep reading (the closed control connection ignores it): unread data at close makes the
    // kernel answer with a reset instead of a clean FIN.
    sock.resume();
    const linger = this.clock.setTimer(CONTROL_LINGER_MS, () => sock.destroy());
    sock.once('close', () => linger.cancel());
  }

  /**
   * Write backpressure on a control connection: stop reading from a peer that does not read our
   * replies, and drop it once `controlWriteBuffer` bytes wait for it.
   */
  private writeControl(sock: Socket, session: Session, bytes: Uint8Array, limits: AdmissionLimits): void {
    if (sock.destroyed) return;
    sock.write(bytes);
    const waiting = sock.writableLength;
    if (waiting > limits.controlWriteBufferBytes) {
      this.drops.drop(
        'control connection does not read its replies',
        `${waiting} bytes unread by ${formatIPv4(session.peer)}`,
      );
      sock.destroy();
    } else if (waiting > limits.controlWriteBufferBytes / 4 && !sock.isPaused()) {
      sock.pause();
      sock.once('drain', () => sock.resume());
    }
  }

  // ---- data plane ----

  private receiveTun(packet: Uint8Array): void {
    if (ipVersion(packet) !== 4 || packet.length < IPV4_HEADER_MIN) {
      this.drops.drop('non-IPv4 packet from the TUN device');
      return;
    }
    const dst = ipv4FromBytes(packet, IPV4_DESTINATION_OFFSET);
    const session =
      this.byAddress.get(dst) ?? (this.framedRoutes.size > 0 ? this.framedRoutes.lookup(dst) : undefined);
    if (!session) {
      this.drops.drop('TUN packet for an address without a session', () => formatIPv4(dst));
      return;
    }
    session.sendIp(packet, this.tun.headroom);
  }

  sendGre(packet: Uint8Array, to: IPv4): void {
    this.gre.send(packet, to);
  }

  // ---- SessionHost ----

  admitCall(session: Session, req: unknown): CallRequestDecision {
    const decision = this.decideCall(session, req);
    if (!decision.accept) this.observer?.callRefused?.(session, decision.reason);
    return decision;
  }

  private decideCall(session: Session, _req: unknown): CallRequestDecision {
    if (this.stopping) {
      return {
        accept: false,
        resultCode: OutgoingCallResult.GeneralError,
        errorCode: GeneralError.NoResource,
        reason: 'server is shutting down',
      };
    }
    // A call on a connection already accepted takes no descriptor of its own (GRE and the TUN are
    // shared; its hooks' pipes are counted): it is refused only within half the reserve of the
    // limit. Refusing it earlier would only end sessions the door already let in, all of them when
    // a burst has filled the reserve.
    const short = this.fds?.check();
    if (short?.critical) {
      this.drops.drop('at the file descriptor reserve', `call from ${formatIPv4(session.peer)}`);
      return {
        accept: false,
        resultCode: OutgoingCallResult.GeneralError,
        errorCode: GeneralError.NoResource,
        reason: short.brief,
      };
    }
    const busy = this.sources.admitSetup(session.peer, this.limits);
    if (busy) {
      this.drops.drop(busy, `call from ${formatIPv4(session.peer)}`);
      return {
        accept: false,
        resultCode: OutgoingCallResult.GeneralError,
        errorCode: GeneralError.NoResource,
        reason: busy,
      };
    }
    // A worker: what its primary last said of the pool and the limit, for every worker at once.
    const global = this.globalAdmission;
    if (global) {
      session.log.warn(`refusing call: ${global.reason}`);
      return global.busy
        ? { accept: false, resultCode: OutgoingCallResult.Busy, reason: global.reason }
        : {
            accept: false,
            resultCode: OutgoingCallResult.GeneralError,
            errorCode: GeneralError.NoResource,
            reason: global.reason,
          };
    }
    const admission = this.leases.admission();
    if ('refuse' in admission) {
      session.log.warn(`refusing call: ${admission.refuse}`);
      return {
        accept: false,
        resultCode: OutgoingCallResult.GeneralError,
        errorCode: GeneralError.NoResource,
        reason: admission.refuse,
      };
    }
    if (this.demux.size >= this.settings.maxConnections) {
      const reason = connectionLimitReached(this.settings.maxConnections);
      session.log.warn(`refusing call: ${reason}`);
      return { accept: false, resultCode: OutgoingCallResult.Busy, reason };
    }
    this.settingUp.add(session);
    this.sources.add(session.peer, 'setups', 1);
    return { accept: true };
  }

  bindCall(callId: number, session: Session | undefined): void {
    if (session) this.demux.bind(callId, session);
    else this.demux.unbind(callId);
  }

  bindAddress(ip: IPv4, session: Session | undefined): void {
    if (session) this.byAddress.set(ip, session);
    else if (this.byAddress.get(ip)) this.byAddress.delete(ip);
  }

  /**
   * A subnet for a session (RADIUS Framed-Route). Refused, in words, when it is a default route,
   * holds a pool or local address or another session's address, or overlaps a subnet already
   * routed (to this session or another): a route must never take traffic meant for someone else.
   */
  claimFramedRoute(route: FramedRoute, session: Session): string | undefined {
    const { network, prefixLength } = route;
    if (prefixLength === 0) return 'a default route through a client is not accepted';
    const inside = (ip: IPv4) => inPrefix(ip, network, prefixLength);
    const local = this.settings.localIps.find(inside);
    if (local !== undefined) return `it contains our tunnel address ${formatIPv4(local)} (localip)`;
    const pool = this.settings.delegate ? undefined : this.settings.remoteIps.find(inside);
    if (pool !== undefined) return `it contains the pool address ${formatIPv4(pool)} (remoteip)`;
    for (const [ip, owner] of this.byAddress) {
      if (owner !== session && inside(ip)) {
        return `it contains ${formatIPv4(ip)}, the address of session ${owner.id}`;
      }
    }
    const other = this.framedRoutes.overlapping(network, prefixLength);
    if (other) {
      const whose = other.owner === session ? 'this session' : `session ${other.owner.id}`;
      return `it overlaps ${formatPrefix(other.network, other.prefixLength)}, routed to ${whose}`;
    }
    this.framedRoutes.add({ network, prefixLength, owner: session });
    return undefined;
  }

  releaseFramedRoute(route: FramedRoute, session: Session): void {
    this.framedRoutes.delete(route.network, route.prefixLength, session);
  }

  /** The session's user is known: it no longer counts as unauthenticated. */
  sessionAuthenticated(session: Session): void {
    if (this.unauthenticated.delete(session)) this.sources.add(session.peer, 'unauth', -1);
    const user = session.userName;
    if (user === undefined || session.isClosed) return;
    let set = this.byUser.get(user);
    if (!set) {
      set = new Set();
      this.byUser.set(user, set);
    }
    set.add(session);
  }

  sessionsOf(user: string): readonly Session[] {
    return [...(this.byUser.get(user) ?? [])];
  }

  localAddressFor(ip: IPv4): IPv4 {
    const local = this.settings.localIps;
    if (local.length <= 1) return local[0] ?? 0;
    return local[this.poolIndex.get(ip) ?? 0] ?? local[0] ?? 0;
  }

  /** The session's network layer is up: its set-up is over. */
  sessionUp(session: Session): void {
    if (!this.settingUp.delete(session)) return;
    this.sources.add(session.peer, 'setups', -1);
    if (!session.isUp) return;
    this.authority?.sessionUp(session);
    this.observer?.sessionUp?.(session);
  }

  sessionClosed(session: Session): void {
    if (this.unauthenticated.delete(session)) this.sources.add(session.peer, 'unauth', -1);
    const user = session.userName;
    const set = user === undefined ? undefined : this.byUser.get(user);
    if (set?.delete(session) && set.size === 0) this.byUser.delete(user!);
    this.sessionUp(session);
    // The session frees its lease once its routes are gone (Session.released); so is the primary told.
    const released = session.released;
    if (released) {
      this.releasing++;
      void released.then(() => {
        this.releasing--;
        this.authority?.sessionClosed(session);
        if (this.stopping && this.sessions.size === 0 && this.releasing === 0) this.onAllClosed?.();
      });
    } else this.authority?.sessionClosed(session);
    this.sessions.delete(session.id);
    this.observer?.sessionClosed?.(session);
    if (this.stopping) {
      if (this.sessions.size === 0 && this.releasing === 0) this.onAllClosed?.();
    } else {
      this.memoryRelease?.sessionEnded();
    }
  }

  // ---- administration ----

  /** The live sessions, without copying (metrics read counters from each). */
  get liveSessions(): IterableIterator<Session> {
    return this.sessions.values();
  }

  /** True once shutdown() has begun. */
  get isStopping(): boolean {
    return this.stopping;
  }

  list(): SessionInfo[] {
    return [...this.sessions.values()].map((s) => s.info());
  }

  /** Sessions matching an id ("s12"), a user name or an assigned address. */
  find(target: string): Session[] {
    const ip = parseIPv4(target);
    return [...this.sessions.values()].filter(
      (s) => s.id === target || s.userName === target || (ip !== undefined && s.assignedIp === ip),
    );
  }

  /** Ends session `id` ("s12") only; false when there is none. */
  killSession(id: string, reason: string): boolean {
    const s = this.sessions.get(id);
    s?.kill(reason);
    return s !== undefined;
  }

  /** Disconnect/CoA its primary forwards to session `id` (workers); false when there is no such RADIUS session. */
  dynauth(id: string, change: { disconnect: string } | { limits: CoaChanges }): boolean {
    return this.sessions.get(id)?.dynauth(change) ?? false;
  }

  kill(target: string, reason = 'closed by the administrator'): string[] {
    const found = this.find(target);
    for (const s of found) s.kill(reason);
    return found.map((s) => s.id);
  }

  /** Numbers for `poptop sessions` / status. */
  status(): {
    sessions: number;
    poolSize: number;
    poolFree: number;
    drops: Record<string, number>;
    system?: SystemCounters;
    fds?: ReturnType<FdReserve['snapshot']>;
  } {
    const system = this.system.counters?.();
    return {
      sessions: this.sessions.size,
      poolSize: this.leases.poolSize,
      poolFree: this.leases.poolFree,
      drops: this.drops.snapshot(),
      ...(system ? { system } : {}),
      ...(this.fds ? { fds: this.fds.snapshot() } : {}),
    };
  }

  /**
   * SIGHUP: new settings for new sessions (established ones keep theirs). The pool is rebuilt
   * with the new remoteip list, keeping the leases of live sessions.
   */
  reload(settings: ServerSettings): void {
    this.leases.reload(settings.delegate ? [] : settings.remoteIps);
    this.poolIndex = new Map(settings.remoteIps.map((ip, i) => [ip, i]));
    this.loginThrottle.update(settings.loginThrottle);
    this.settings = settings;
    this.log.info(`configuration reloaded from ${settings.origin}; ${this.sessions.size} sessions kept`);
  }

  private onAllClosed: (() => void) | undefined;
  /** Closed sessions whose routes are still being removed (their addresses are not free yet). */
  private releasing = 0;

  /**
   * SIGTERM: tell every peer (LCP Terminate, Call-Disconnect-Notify, Stop-Control-Connection)
   * and resolve when all sessions are closed or `graceMs` has passed.
   */
  shutdown(graceMs = 5000): Promise<void> {
    // RADIUS: the sessions' Stops and Accounting-Off go out before we resolve.
    const radius = this.radius;
    return this.closeSessions(graceMs).then(() => radius?.stop(graceMs));
  }

  private closeSessions(graceMs: number): Promise<void> {
    this.stopping = true;
    this.memoryRelease?.close();
    this.listener.close();
    const n = this.sessions.size;
    if (n > 0) this.log.info(`shutting down: closing ${n} session${n === 1 ? '' : 's'}`);
    return new Promise((resolve) => {
      const done = (): void => {
        timer.cancel();
        this.loginThrottle.close();
        this.onAllClosed = undefined;
        for (const s of this.sessions.values()) s.control.stop('server shutting down');
        resolve();
      };
      const timer = this.clock.setTimer(graceMs, done);
      this.onAllClosed = done;
      if (n === 0 && this.releasing === 0) done();
      for (const s of [...this.sessions.values()]) s.kill('server shutting down');
    });
  }
}
