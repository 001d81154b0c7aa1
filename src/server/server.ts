import { createServer, type Server, type Socket } from 'node:net';
import { AddressPool, addressForUser } from '../aaa/address-pool.ts';
import type { Credential } from '../aaa/credentials.ts';
import { decodeGreHeader, GreHeaderError } from '../gre/codec.ts';
import type { GrePort, TunDevice } from '../net/interfaces.ts';
import { formatIPv4, type IPv4, parseIPv4 } from '../net/ip.ts';
import { CallIdAllocator } from '../pptp/call-ids.ts';
import { GeneralError, OutgoingCallResult } from '../pptp/constants.ts';
import type { CallRequestDecision } from '../pptp/control.ts';
import type { Clock } from '../util/clock.ts';
import { DropCounter } from '../util/counters.ts';
import type { Logger } from '../util/log.ts';
import { Session, type SessionHost, type SessionInfo } from './session.ts';
import type { ServerSettings } from './settings.ts';
import type { SystemOps } from './system.ts';

export interface PptpServerDeps {
  clock: Clock;
  log: Logger;
  gre: GrePort;
  tun: TunDevice;
  system: SystemOps;
}

/**
 * The daemon core: accepts PPTP control connections, owns the session registry, and
 * demultiplexes the shared data plane: GRE packets by our call id (and the control
 * connection's peer address), TUN packets by destination address.
 */
export class PptpServer implements SessionHost {
  readonly clock: Clock;
  readonly log: Logger;
  readonly callIds = new CallIdAllocator();
  readonly tun: TunDevice;
  readonly system: SystemOps;
  readonly drops: DropCounter;
  private readonly gre: GrePort;
  private settings: ServerSettings;
  private pool: AddressPool;
  private readonly sessions = new Map<string, Session>();
  private readonly byCallId = new Map<number, Session>();
  private readonly byAddress = new Map<IPv4, Session>();
  /** Pool addresses taken at Outgoing-Call time, before the user is known. */
  private readonly provisional = new Map<Session, IPv4>();
  private readonly leases = new Map<Session, IPv4>();
  private tcp: Server | undefined;
  private nextId = 1;
  private stopping = false;

  constructor(settings: ServerSettings, deps: PptpServerDeps) {
    this.settings = settings;
    this.clock = deps.clock;
    this.log = deps.log;
    this.gre = deps.gre;
    this.tun = deps.tun;
    this.system = deps.system;
    this.drops = new DropCounter(deps.log, 'packet');
    this.pool = new AddressPool(settings.delegate ? [] : settings.remoteIps);
    this.gre.onPacket((p, from) => this.receiveGre(p, from));
    this.tun.onPacket((p) => this.receiveTun(p));
  }

  get currentSettings(): ServerSettings {
    return this.settings;
  }

  /** Start listening for control connections; resolves with the bound port. */
  listen(): Promise<number> {
    const server = createServer({ noDelay: true }, (sock) => this.accept(sock));
    this.tcp = server;
    const host = this.settings.listen === undefined ? '0.0.0.0' : formatIPv4(this.settings.listen);
    return new Promise((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        const hint =
          e.code === 'EADDRINUSE'
            ? ' (is pptpd or another poptop already running?)'
            : e.code === 'EACCES'
              ? ' (port 1723 needs root)'
              : e.code === 'EADDRNOTAVAIL'
                ? ' (no interface has this address)'
                : '';
        reject(new Error(`cannot listen on ${host}:${this.settings.port}: ${e.message}${hint}`));
      });
      server.listen(this.settings.port, host, () => {
        const addr = server.address();
        const port = typeof addr === 'object' && addr ? addr.port : this.settings.port;
        this.log.info(
          `listening on ${host}:${port}; ${this.settings.delegate ? 'addresses from the secrets file' : `${this.pool.size} client addresses`}, at most ${this.settings.maxConnections} sessions`,
        );
        resolve(port);
      });
    });
  }

  private accept(sock: Socket): void {
    const peer = parseIPv4((sock.remoteAddress ?? '').replace(/^::ffff:/, ''));
    if (peer === undefined || this.stopping) {
      sock.destroy();
      return;
    }
    // Hard cap on sockets (idle or not) so a flood of connections cannot exhaust file descriptors.
    if (this.sessions.size >= this.settings.maxConnections * 2 + 16) {
      this.drops.drop('too many TCP connections', `from ${formatIPv4(peer)}`);
      sock.destroy();
      return;
    }
    sock.setKeepAlive(true, 60_000);
    const session = new Session(this.nextId++, this, this.settings, {
      peer,
      peerPort: sock.remotePort ?? 0,
      write: (b) => {
        if (!sock.destroyed) sock.write(b);
      },
      end: () => sock.end(),
    });
    this.sessions.set(session.id, session);
    sock.on('data', (d: Buffer) => session.receiveTcp(d));
    sock.on('error', (e) => session.log.debug(`TCP error: ${e.message}`));
    sock.on('close', () => session.tcpClosed());
  }

  // ---- data plane ----

  private receiveGre(packet: Uint8Array, from: IPv4): void {
    let header: ReturnType<typeof decodeGreHeader>;
    try {
      header = decodeGreHeader(packet);
    } catch (e) {
      if (e instanceof GreHeaderError) this.drops.drop(`GRE ${e.reason}`, `from ${formatIPv4(from)}`);
      else this.drops.drop('GRE undecodable', String(e));
      return;
    }
    const session = this.byCallId.get(header.callId);
    if (!session) {
      this.drops.drop('GRE for an unknown call id', `call id ${header.callId} from ${formatIPv4(from)}`);
      return;
    }
    if (session.peer !== from) {
      this.drops.drop(
        'GRE from the wrong address',
        `call id ${header.callId} belongs to ${formatIPv4(session.peer)}, packet from ${formatIPv4(from)}`,
      );
      return;
    }
    session.receiveGre(packet, header);
  }

  private receiveTun(packet: Uint8Array): void {
    if (packet.length < 20 || packet[0]! >> 4 !== 4) {
      this.drops.drop('non-IPv4 packet from the TUN device');
      return;
    }
    const dst = ((packet[16]! << 24) | (packet[17]! << 16) | (packet[18]! << 8) | packet[19]!) >>> 0;
    const session = this.byAddress.get(dst);
    if (!session) {
      this.drops.drop('TUN packet for an address without a session', formatIPv4(dst));
      return;
    }
    session.sendIp(packet);
  }

  sendGre(packet: Uint8Array, to: IPv4): void {
    this.gre.send(packet, to);
  }

  // ---- SessionHost ----

  admitCall(session: Session, _req: unknown): CallRequestDecision {
    if (this.stopping) {
      return {
        accept: false,
        resultCode: OutgoingCallResult.GeneralError,
        errorCode: GeneralError.NoResource,
        reason: 'server is shutting down',
      };
    }
    if (this.pool.size > 0) {
      const ip = this.pool.allocate();
      if (ip === undefined) {
        const reason = `address pool exhausted: all ${this.pool.size} addresses of remoteip are in use`;
        session.log.warn(`refusing call: ${reason}`);
        return {
          accept: false,
          resultCode: OutgoingCallResult.GeneralError,
          errorCode: GeneralError.NoResource,
          reason,
        };
      }
      this.provisional.set(session, ip);
    }
    if (this.byCallId.size >= this.settings.maxConnections) {
      const reason = `connection limit reached (${this.settings.maxConnections}, pptpd.conf "connections")`;
      session.log.warn(`refusing call: ${reason}`);
      this.releaseProvisional(session);
      return { accept: false, resultCode: OutgoingCallResult.Busy, reason };
    }
    return { accept: true };
  }

  bindCall(callId: number, session: Session | undefined): void {
    if (session) this.byCallId.set(callId, session);
    else this.byCallId.delete(callId);
  }

  leaseAddress(session: Session, credential: Credential | undefined): { ip: IPv4 } | { refuse: string } {
    const provisional = this.provisional.get(session);
    this.provisional.delete(session);
    const want = credential ? addressForUser(credential) : { kind: 'pool' as const, allowed: () => true };
    if (want.kind === 'refuse') {
      if (provisional !== undefined) this.pool.release(provisional);
      return { refuse: want.reason };
    }
    if (want.kind === 'static') {
      if (provisional !== undefined) this.pool.release(provisional);
      if (!this.pool.reserve(want.ip)) {
        const holder = [...this.leases].find(([, ip]) => ip === want.ip)?.[0];
        return {
          refuse: `its static address ${formatIPv4(want.ip)} is in use${holder ? ` by session ${holder.id} (${holder.userName ?? '?'})` : ''}`,
        };
      }
      this.leases.set(session, want.ip);
      return { ip: want.ip };
    }
    if (provisional !== undefined && want.allowed(provisional)) {
      this.leases.set(session, provisional);
      return { ip: provisional };
    }
    if (provisional !== undefined) this.pool.release(provisional);
    const ip = this.pool.allocate(want.allowed);
    if (ip === undefined) {
      return {
        refuse:
          this.pool.size === 0
            ? 'no address to give: remoteip is empty and the secrets file has no address for this user'
            : `address pool exhausted: all ${this.pool.size} addresses of remoteip are in use`,
      };
    }
    this.leases.set(session, ip);
    return { ip };
  }

  releaseAddress(session: Session, ip: IPv4): void {
    if (this.leases.get(session) === ip) {
      this.leases.delete(session);
      this.pool.release(ip);
    }
  }

  bindAddress(ip: IPv4, session: Session | undefined): void {
    if (session) this.byAddress.set(ip, session);
    else if (this.byAddress.get(ip)) this.byAddress.delete(ip);
  }

  private releaseProvisional(session: Session): void {
    const provisional = this.provisional.get(session);
    if (provisional !== undefined) {
      this.pool.release(provisional);
      this.provisional.delete(session);
    }
  }

  sessionClosed(session: Session): void {
    this.releaseProvisional(session);
    const lease = this.leases.get(session);
    if (lease !== undefined) this.releaseAddress(session, lease);
    this.sessions.delete(session.id);
    if (this.stopping && this.sessions.size === 0) this.onAllClosed?.();
  }

  // ---- administration ----

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

  kill(target: string, reason = 'closed by the administrator'): string[] {
    const found = this.find(target);
    for (const s of found) s.kill(reason);
    return found.map((s) => s.id);
  }

  /** Numbers for `poptop sessions` / status. */
  status(): { sessions: number; poolSize: number; poolFree: number; drops: Record<string, number> } {
    return {
      sessions: this.sessions.size,
      poolSize: this.pool.size,
      poolFree: this.pool.freeCount,
      drops: this.drops.snapshot(),
    };
  }

  /**
   * SIGHUP: new settings for new sessions (established ones keep theirs). The pool is rebuilt
   * with the new remoteip list, keeping the leases of live sessions.
   */
  reload(settings: ServerSettings): void {
    const pool = new AddressPool(settings.delegate ? [] : settings.remoteIps);
    for (const ip of [...this.leases.values(), ...this.provisional.values()]) pool.reserve(ip);
    this.pool = pool;
    this.settings = settings;
    this.log.info(`configuration reloaded from ${settings.origin}; ${this.sessions.size} sessions kept`);
  }

  private onAllClosed: (() => void) | undefined;

  /**
   * SIGTERM: tell every peer (LCP Terminate, Call-Disconnect-Notify, Stop-Control-Connection)
   * and resolve when all sessions are closed or `graceMs` has passed.
   */
  shutdown(graceMs = 5000): Promise<void> {
    this.stopping = true;
    this.tcp?.close();
    const n = this.sessions.size;
    if (n > 0) this.log.info(`shutting down: closing ${n} session${n === 1 ? '' : 's'}`);
    return new Promise((resolve) => {
      const done = (): void => {
        timer.cancel();
        this.onAllClosed = undefined;
        for (const s of this.sessions.values()) s.control.stop('server shutting down');
        resolve();
      };
      const timer = this.clock.setTimer(graceMs, done);
      this.onAllClosed = done;
      if (n === 0) done();
      for (const s of [...this.sessions.values()]) s.kill('server shutting down');
    });
  }
}
