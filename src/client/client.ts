import { type Socket, connect as tcpConnect } from 'node:net';
import type { GreHeader } from '../gre/codec.ts';
import { GRE_DEMUX_EXPECTED, GreDemux, type GreDemuxDropReason, type GreEndpoint } from '../gre/demux.ts';
import type { GrePort } from '../net/interfaces.ts';
import { createAuthPeer } from '../ppp/auth/index.ts';
import type { AuthMethod } from '../ppp/auth/types.ts';
import type { NetworkInfo } from '../ppp/link.ts';
import type { PppPolicy } from '../ppp/policy.ts';
import { CallIdAllocator } from '../pptp/call-ids.ts';
import { PPTP_TCP_PORT } from '../pptp/constants.ts';
import { type CallInfo, ControlConnection } from '../pptp/control.ts';
import { TunnelCall } from '../tunnel/call.ts';
import type { Clock, TimerHandle } from '../util/clock.ts';
import { DropCounter } from '../util/counters.ts';
import type { Logger } from '../util/log.ts';
import { extend } from '../util/objects.ts';
import { formatIPv4, type IPv4, ipVersion } from '../wire/ip.ts';

const EARLY_GRE_LIMIT = 16;

/** The client's vocabulary: its own drops and its GRE demultiplexer's. */
export type ClientDropReason =
  | 'GRE before the Outgoing-Call-Reply (buffer full)'
  | 'non-IPv4 packet from the TUN device'
  | GreDemuxDropReason;

export interface ClientOptions {
  server: IPv4;
  port?: number;
  user: string;
  password: string;
  policy: PppPolicy;
  clock: Clock;
  log: Logger;
  gre: GrePort;
  /** Shared when one process runs many clients (load generation). @default a new allocator */
  callIds?: CallIdAllocator;
  /** Opens the control connection (tests may inject). @default node:net to server:port */
  connectTcp?: (host: string, port: number) => Socket;
  /**
   * The GRE demultiplexer to register our call with, when several clients share one GrePort (load
   * generation); by default the client has its own, fed by `gre.onPacket`.
   */
  demux?: GreDemux;
  onUp?(info: NetworkInfo & { method: AuthMethod | undefined }): void;
  onIp?(packet: Uint8Array): void;
  /**
   * Whether sendFromTun would take a packet now changed: false once the GRE send queue is full,
   * true once the server's acknowledgements have made room. The caller stops reading its TUN
   * device meanwhile, so the excess is dropped by the kernel, not read only to be dropped here.
   */
  onAccepting?(accepting: boolean): void;
  /** Exactly once, with the reason in words. */
  onDown?(reason: string): void;
}

/**
 * The client role (PNS + PPP peer): TCP to the server, Start-Control-Connection, Outgoing-Call,
 * then PPP over the call's GRE channel. The same layers as the server, the other way round.
 */
export class PptpClient implements GreEndpoint {
  readonly log: Logger;
  /** GRE is accepted from the server only. */
  readonly peer: IPv4;
  readonly drops: DropCounter<ClientDropReason>;
  private readonly o: ClientOptions;
  private readonly control: ControlConnection;
  private socket: Socket | undefined;
  private call: CallInfo | undefined;
  /** Our call id from the Outgoing-Call-Request, before the Reply arrives. */
  private placedCallId: number | undefined;
  /**
   * GRE that overtook the Outgoing-Call-Reply (the server's first LCP Configure-Request often
   * does): held until the call is up instead of being dropped, which would cost a restart interval.
   */
  private early: { packet: Uint8Array; header: GreHeader }[] = [];
  private readonly demux: GreDemux;
  private tunnel: TunnelCall | undefined;
  private method: AuthMethod | undefined;
  private down = false;
  private closing = false;
  private closeTimer: TimerHandle | undefined;
  private upInfo: NetworkInfo | undefined;
  /** Why PPP ended, when it did: more telling than the control connection's reason. */
  private linkReason: string | undefined;
  private readonly closedWaiters: (() => void)[] = [];
  /** Resolves with the reason when the client is down, whatever ended it. */
  readonly done: Promise<string>;
  private resolveDone: (reason: string) => void = () => {};

  constructor(o: ClientOptions) {
    this.o = o;
    this.log = o.log;
    this.peer = o.server;
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
    this.drops = new DropCounter<ClientDropReason>(o.log, 'packet', undefined, {
      expected: GRE_DEMUX_EXPECTED,
    });
    this.control = new ControlConnection({
      role: 'pns',
      clock: o.clock,
      log: o.log.child('pptp:'),
      callIds: o.callIds ?? new CallIdAllocator(),
      write: (b) => this.socket?.write(b),
      close: () => this.socket?.end(),
      hostName: 'poptop',
      vendor: 'poptop',
      onEstablished: (p) => {
        this.log.debug(`control connection up with "${p.hostName}" (${p.vendor})`);
        this.placedCallId = this.control.placeCall();
        this.demux.bind(this.placedCallId, this);
      },
      onCallUp: (call) => this.onCallUp(call),
      onCallDown: (_call, reason) => {
        this.stopDataPath();
        this.control.stop(reason);
      },
      onClosed: (reason) => this.finish(reason),
    });
    this.demux = o.demux ?? new GreDemux(this.drops, o.clock);
    if (!o.demux) o.gre.onPacket((p, from) => this.demux.receive(p, from));
  }

  /** Connect and negotiate; onUp fires when IPCP is up. */
  start(): void {
    const port = this.o.port ?? PPTP_TCP_PORT;
    const host = formatIPv4(this.o.server);
    const sock = (this.o.connectTcp ?? ((h, p) => tcpConnect({ host: h, port: p, noDelay: true })))(
      host,
      port,
    );
    this.socket = sock;
    sock.on('connect', () => this.control.start());
    sock.on('data', (d: Buffer) => this.control.receive(d));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      const hint =
        e.code === 'ECONNREFUSED'
          ? ' (nothing listens on TCP 1723 there: is the server running? Windows shows this as error 800)'
          : e.code === 'ETIMEDOUT' || e.code === 'EHOSTUNREACH'
            ? ' (server unreachable: TCP 1723 blocked or wrong address)'
            : '';
      this.log.error(`TCP connection to ${host}:${port} failed: ${e.message}${hint}`);
    });
    sock.on('close', () => this.control.transportClosed());
  }

  /** Our call id (the GRE key the server sends us), known from the Outgoing-Call-Request on. */
  get localCallId(): number | undefined {
    return this.call?.localCallId ?? this.placedCallId;
  }

  get network(): NetworkInfo | undefined {
    return this.upInfo;
  }

  /** A GRE packet with our call id from the server (GreDemux has checked both). */
  receiveGre(packet: Uint8Array, header: GreHeader): void {
    if (this.tunnel) {
      this.tunnel.receiveGre(packet, header);
    } else if (!this.call && !this.down) {
      if (this.early.length < EARLY_GRE_LIMIT) this.early.push({ packet: packet.slice(), header });
      else this.drops.drop('GRE before the Outgoing-Call-Reply (buffer full)');
    }
  }

  /** An IP packet into the tunnel; `headroom` free bytes before it as TunnelCall.sendIp. */
  sendIp(packet: Uint8Array, headroom = 0): void {
    this.tunnel?.sendIp(packet, headroom);
  }

  /** A packet from our TUN device: IPv4 goes through the tunnel; anything else is counted and dropped. */
  sendFromTun(packet: Uint8Array, headroom = 0): void {
    if (ipVersion(packet) === 4) this.sendIp(packet, headroom);
    else this.drops.drop('non-IPv4 packet from the TUN device', `version ${ipVersion(packet)}`);
  }

  /** Disconnect cleanly: LCP Terminate, Call-Clear-Request, Stop-Control-Connection. */
  close(reason = 'closed by the user'): Promise<void> {
    if (this.down) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.closedWaiters.push(resolve));
    if (!this.closing) {
      this.closing = true;
      this.closeTimer = this.o.clock.setTimer(8000, () =>
        this.control.stop(`${reason} (server did not answer in time)`),
      );
      if (this.tunnel && this.tunnel.phase !== 'dead') this.tunnel.close(reason);
      else this.hangUp(reason);
    }
    return done;
  }

  private onCallUp(call: CallInfo): void {
    this.call = call;
    this.tunnel = new TunnelCall({
      role: 'client',
      clock: this.o.clock,
      log: this.log,
      call,
      peer: this.o.server,
      sendGre: (p, to) => this.o.gre.send(p, to),
      policy: this.o.policy,
      ...(this.o.onAccepting ? { onAccepting: this.o.onAccepting } : {}),
      authPeer: (method, host) => {
        this.method = method;
        return createAuthPeer(method, host, { user: this.o.user, password: this.o.password });
      },
      events: {
        onNetworkUp: (info) => {
          this.upInfo = info;
          this.o.onUp?.(extend(info, { method: this.method }));
        },
        onIp: (p) => this.o.onIp?.(p),
        onDown: (reason) => {
          this.linkReason ??= reason;
          this.hangUp(reason);
        },
      },
    });
    this.tunnel.open();
    const early = this.early;
    this.early = [];
    for (const e of early) this.tunnel?.receiveGre(e.packet, e.header);
  }

  private hangUp(reason: string): void {
    if (this.call) this.control.clearCall(this.call.localCallId, reason);
    else this.control.stop(reason);
  }

  private stopDataPath(): void {
    const tunnel = this.tunnel;
    this.tunnel = undefined;
    tunnel?.stop('call cleared');
  }

  private finish(reason: string): void {
    if (this.down) return;
    this.down = true;
    this.closeTimer?.cancel();
    reason = this.linkReason ?? reason;
    this.stopDataPath();
    if (this.placedCallId !== undefined) this.demux.unbind(this.placedCallId, this);
    this.early = [];
    this.socket?.destroy();
    this.o.onDown?.(reason);
    this.resolveDone(reason);
    for (const w of this.closedWaiters.splice(0)) w();
  }
}
