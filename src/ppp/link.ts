import { randomInt } from 'node:crypto';
import { DropCounter } from '../util/counters.ts';
import { quote } from '../util/escape.ts';
import type { Logger } from '../util/log.ts';
import { extend } from '../util/objects.ts';
import type { IPv4 } from '../wire/ip.ts';
import type { AuthExchange, AuthFailure, AuthHost, AuthMethod, AuthSuccess } from './auth/types.ts';
import { PacketCode, PppProtocol } from './constants.ts';
import { decodeFrame, encodeFrame, type FrameCompression, type PppFrame } from './frame.ts';
import { Fsm } from './fsm.ts';
import { LcpHandler } from './lcp/handler.ts';
import type {
  AuthorizeAnswer,
  PeerServers,
  PppLinkDropReason,
  PppLinkOptions,
  PppLinkStats,
  PppPhase,
} from './link-types.ts';
import { NetworkPhase } from './ncps.ts';
import { fsmConfig } from './policy.ts';

export type { PppLinkEvents, PppLinkOptions, PppLinkStats, PppPhase } from './link-types.ts';
export type { NetworkInfo } from './ncps.ts';

/**
 * One PPP link over PPTP: the RFC 1661 §3 phase machine (Dead → Establish → Authenticate →
 * Network → Terminate → Dead) and the protocol demultiplexer, gated as lwIP's ppp_input does:
 * only LCP until LCP is Opened; only LCP and the authentication protocol until authentication
 * is done; unknown protocols in the Network phase are Protocol-Rejected (RFC 1661 §5.7).
 */
/** Frames before LCP is Opened (and after) carry full address/control and protocol fields. */
const NO_COMPRESSION: FrameCompression = Object.freeze({ acfc: false, pfc: false });

/** Network frames kept while the authorization is decided elsewhere (IPCP, CCP, IPv6CP requests). */
const MAX_HELD_FRAMES = 8;

export class PppLink {
  private readonly opts: PppLinkOptions;
  private readonly log: Logger;
  private readonly lcpHandler: LcpHandler;
  /** ACFC/PFC for the frames we send: the peer's LCP options while LCP is Opened. */
  private framing: FrameCompression = NO_COMPRESSION;
  readonly lcp: Fsm;
  readonly network: NetworkPhase;
  private readonly drops: DropCounter<PppLinkDropReason>;
  private phaseValue: PppPhase = 'dead';
  private started = false;
  private reason: string | undefined;
  private exchanges: AuthExchange[] = [];
  private authPending = 0;
  private authGeneration = 0;
  private peerAddress: IPv4 | undefined;
  private localAddress: IPv4 | undefined;
  private peerServers: PeerServers | undefined;
  private mppeKeys: AuthSuccess['mppeKeys'];
  private authMethod: AuthMethod | undefined;
  private readonly counts = { framesIn: 0, framesOut: 0, ipIn: 0, ipOut: 0 };

  constructor(opts: PppLinkOptions) {
    this.opts = opts;
    this.log = opts.log;
    this.drops = new DropCounter<PppLinkDropReason>(opts.log, 'PPP frame');
    const random = opts.random ?? (() => randomInt(0, 0xffffffff));
    this.lcpHandler = new LcpHandler({
      role: opts.role,
      policy: opts.policy,
      clock: opts.clock,
      log: opts.log,
      random,
      events: {
        up: () => this.onLcpUp(),
        down: () => this.onLcpDown(),
        finished: (reason) => this.onLcpFinished(reason),
        fail: (reason) => this.close(reason),
        protocolRejected: (p) => this.onProtocolRejected(p),
        send: (code, data, id) => this.lcp.sendExtra(code, data, id),
      },
    });
    this.lcp = new Fsm(this.lcpHandler, fsmConfig(opts.policy, 'lcp'), {
      clock: opts.clock,
      log: opts.log,
      send: (p) => this.sendProtocol(PppProtocol.LCP, p),
      peerMru: () => this.lcpHandler.peerMru,
    });
    this.network = new NetworkPhase({
      role: opts.role,
      policy: opts.policy,
      clock: opts.clock,
      log: opts.log,
      random,
      drops: this.drops,
      mppe: opts.mppe,
      peerMru: () => this.lcpHandler.peerMru,
      sendProtocol: (p, info) => this.sendProtocol(p, info),
      compression: () => this.compression(),
      sendFrame: (f, h) => this.sendFrame(f, h),
      lowerHeadroom: opts.lowerHeadroom ?? 0,
      canSend: () => opts.canSend?.() ?? true,
      closeLink: (reason) => this.close(reason),
      networkUp: (info) => opts.events.onNetworkUp?.(info),
      deliverIp: (p) => {
        this.counts.ipIn++;
        opts.events.onIp?.(p);
      },
      deliverIpv6: (p) => {
        this.counts.ipIn++;
        opts.events.onIpv6?.(p);
      },
    });
  }

  get phase(): PppPhase {
    return this.phaseValue;
  }

  get stats(): PppLinkStats {
    return extend(this.counts, { drops: this.dropSnapshot() });
  }

  /** The drop counts alone (the link's and its control protocols'), by reason. */
  dropSnapshot(): Record<string, number> {
    return extend(this.drops.snapshot(), lcpDrops(this));
  }

  /** `count` drops for `reason` that another layer made for the link (the kernel's TUN drop filter). */
  countDrops(reason: PppLinkDropReason, count: number): void {
    this.drops.dropMany(reason, count);
  }

  /** Start: the lower layer (the PPTP call) is up; LCP sends its first Configure-Request. */
  open(): void {
    if (this.started) return;
    this.started = true;
    this.phaseValue = 'establish';
    this.lcp.open();
    this.lcp.up();
  }

  /**
   * Terminate the link: LCP Terminate-Request carrying `peerReason` (default `reason`), and onDown
   * with `reason`.
   */
  close(reason: string, peerReason = reason, alreadyLogged = false): void {
    if (!this.started || this.phaseValue === 'dead') return;
    this.reason ??= reason;
    if (this.phaseValue !== 'terminate') {
      if (alreadyLogged) this.log.debug(`closing link: ${reason}`);
      else this.log.info(`closing link: ${reason}`);
    }
    this.phaseValue = 'terminate';
    this.lcp.close(peerReason);
  }

  /**
   * The lower layer is gone (the PPTP call was cleared): no Terminate-Request can reach the peer.
   * RFC 1661 Down then Close: every protocol stops at once, timers cancelled; onDown follows.
   */
  abort(reason: string): void {
    if (!this.started || this.phaseValue === 'dead') return;
    // A Terminate already under way explains more than the lower layer going away.
    if (this.phaseValue === 'terminate' && this.lcp.downReason) this.reason ??= this.lcp.downReason;
    this.reason ??= reason;
    this.lcp.down();
    this.lcp.close(reason);
    this.onLcpFinished(reason);
  }

  /** `headroom`: free bytes before `packet` in its buffer (see NetworkPhase.sendIp). */
  sendIp(packet: Uint8Array, headroom = 0): void {
    if (this.phaseValue !== 'network') {
      this.drops.drop('outgoing IPv4 outside the Network phase');
      return;
    }
    this.counts.ipOut++;
    this.network.sendIp(packet, headroom);
  }

  sendIpv6(packet: Uint8Array): void {
    if (this.phaseValue !== 'network') {
      this.drops.drop('outgoing IPv6 outside the Network phase');
      return;
    }
    this.counts.ipOut++;
    this.network.sendIpv6(packet);
  }

  /**
   * One PPP frame from GRE. Never throws: bad input is dropped and counted. The link owns `frame`
   * from now on: MPPE may decrypt it in place, and delivered packets may be views into it.
   */
  receiveFrame(frame: Uint8Array): void {
    this.counts.framesIn++;
    if (this.phaseValue === 'dead') {
      this.drops.drop(this.started ? 'frame after the link went down' : 'frame before open()');
      return;
    }
    let f: PppFrame;
    try {
      f = decodeFrame(frame);
    } catch (e) {
      this.drops.drop('malformed PPP frame', (e as Error).message);
      return;
    }
    try {
      this.demux(f);
    } catch (e) {
      // A bug, but one the peer can trigger at will: counted, and logged with its stack at 1, 10, 100...
      this.drops.drop('internal error', () => `protocol 0x${f.protocol.toString(16)}: ${(e as Error).stack}`);
    }
  }

  /** Network frames received while an authorization decided elsewhere is awaited. */
  private heldFrames: PppFrame[] | undefined;

  private demux(f: PppFrame): void {
    const { protocol, info } = f;
    if (protocol === PppProtocol.LCP) {
      this.lcp.receive(info);
      return;
    }
    if (this.lcp.state !== 'opened') {
      this.drops.drop('non-LCP frame while LCP is not open');
      return;
    }
    const isAuth = protocol === PppProtocol.PAP || protocol === PppProtocol.CHAP;
    switch (this.phaseValue) {
      case 'authenticate':
        if (!isAuth) {
          // The peer is past authentication while our decision is elsewhere: keep its first
          // network frames (its IPCP and CCP requests) for the network phase, or it waits 3 s.
          const held = this.heldFrames;
          if (held && held.length < MAX_HELD_FRAMES) held.push({ protocol, info: info.slice() });
          else this.drops.drop('network frame before authentication is done');
          return;
        }
        this.receiveAuth(protocol, info);
        return;
      case 'network':
        if (isAuth) {
          this.receiveAuth(protocol, info);
          return;
        }
        if (!this.network.receive(protocol, info)) this.sendProtocolReject(protocol, info);
        return;
      default:
        this.drops.drop('frame outside the Authenticate and Network phases', this.phaseValue);
    }
  }

  private sendProtocolReject(protocol: number, info: Uint8Array): void {
    const room = Math.max(0, this.lcpHandler.peerMru - 4 - 2);
    const data = new Uint8Array(2 + Math.min(info.length, room));
    data[0] = protocol >>> 8;
    data[1] = protocol & 0xff;
    data.set(info.subarray(0, data.length - 2), 2);
    this.log.info(`Protocol-Reject for protocol 0x${protocol.toString(16).padStart(4, '0')}`);
    this.lcp.sendExtra(PacketCode.ProtocolReject, data);
  }

  private onProtocolRejected(protocol: number): void {
    this.log.info(`peer rejected protocol 0x${protocol.toString(16).padStart(4, '0')}`);
    if (protocol === PppProtocol.LCP) this.lcp.receiveReject(true, 'LCP (Protocol-Reject)');
    else if (protocol === PppProtocol.PAP || protocol === PppProtocol.CHAP) {
      this.close('peer rejected the authentication protocol');
    } else this.network.protocolRejected(protocol);
  }

  private sendProtocol(protocol: number, info: Uint8Array): void {
    this.sendFrame(encodeFrame(protocol, info, this.compression()));
  }

  /** ACFC/PFC as the peer accepted them (his options); none until LCP is Opened. */
  private compression(): FrameCompression {
    return this.framing;
  }

  private sendFrame(frame: Uint8Array, headroom = 0): void {
    this.counts.framesOut++;
    this.opts.sendFrame(frame, headroom);
  }

  // ── Phases ──────────────────────────────────────────────────────────────────────────────────

  private onLcpUp(): void {
    // Fixed while LCP stays Opened: one object, not one per frame sent.
    const his = this.lcpHandler.his;
    this.framing = { acfc: his.acfc, pfc: his.pfc };
    this.phaseValue = 'authenticate';
    this.peerAddress = undefined;
    this.localAddress = undefined;
    this.peerServers = undefined;
    this.mppeKeys = undefined;
    this.startAuth();
  }

  private onLcpDown(): void {
    this.framing = NO_COMPRESSION;
    this.stopAuth();
    this.network.lowerDown();
    const s = this.lcp.state;
    this.phaseValue = s === 'closing' || s === 'stopping' ? 'terminate' : 'establish';
  }

  private onLcpFinished(reason: string): void {
    this.framing = NO_COMPRESSION;
    this.stopAuth();
    this.network.stop();
    if (this.phaseValue === 'dead') return;
    this.phaseValue = 'dead';
    const why = this.reason ?? reason;
    this.log.debug(`link down: ${why}`);
    this.opts.events.onDown?.(why);
  }

  // ── Authentication ──────────────────────────────────────────────────────────────────────────

  /** Create the exchanges for the methods LCP negotiated (ours as authenticator, ours as peer). */
  private startAuth(): void {
    const gen = ++this.authGeneration;
    const theirs = this.lcpHandler.got.auth; // we asked the peer to authenticate with this
    const ours = this.lcpHandler.his.auth; // the peer asked us to authenticate with this
    const wanted: [AuthMethod, 'authenticator' | 'peer'][] = [];
    if (theirs) wanted.push([theirs, 'authenticator']);
    if (ours) wanted.push([ours, 'peer']);
    this.authPending = wanted.length;
    this.authMethod = theirs ?? ours;
    for (const [method, side] of wanted) {
      const factory = side === 'authenticator' ? this.opts.authenticator : this.opts.authPeer;
      if (!factory) {
        this.close(`no ${side} for ${method} authentication`);
        return;
      }
      const ex = factory(method, this.authHost(gen, side));
      this.exchanges.push(ex);
    }
    if (this.authPending === 0) {
      this.enterNetwork();
      return;
    }
    for (const ex of [...this.exchanges]) if (gen === this.authGeneration) ex.start();
  }

  private authHost(gen: number, side: 'authenticator' | 'peer'): AuthHost {
    const live = () => gen === this.authGeneration && this.phaseValue === 'authenticate';
    return {
      clock: this.opts.clock,
      log: this.log,
      send: (protocol, packet) => {
        if (gen === this.authGeneration) this.sendProtocol(protocol, packet);
      },
      succeeded: (r) => {
        if (live()) this.authSucceeded(side, r, live);
      },
      failed: (r: AuthFailure) => {
        if (!live()) return;
        const reason = `authentication failed (${r.method}${r.user ? ` user ${quote(r.user)}` : ''}): ${r.reason}`;
        // The peer learns no more than the CHAP Failure told it: not whether the user exists.
        this.close(reason, side === 'authenticator' ? 'authentication failed' : reason, r.logged === true);
      },
    };
  }

  private authSucceeded(side: 'authenticator' | 'peer', r: AuthSuccess, live: () => boolean): void {
    if (side === 'peer') {
      this.log.info(`authenticated to the peer with ${r.method}`);
      this.mppeKeys ??= r.mppeKeys;
      if (--this.authPending === 0) this.enterNetwork();
      return;
    }
    this.log.debug(`peer authenticated as ${quote(r.user)} with ${r.method}`);
    const answer = this.opts.events.onAuthenticated ? this.opts.events.onAuthenticated(r) : {};
    if (!(answer instanceof Promise)) {
      this.authorized(r, answer);
      return;
    }
    // Decided elsewhere (a worker asks the primary for the address): the link waits in the
    // authenticate phase, and an answer for a link that has moved on is ignored.
    this.heldFrames = [];
    answer.then(
      (a) => {
        if (live()) this.authorized(r, a);
        this.heldFrames = undefined;
      },
      (e: Error) => {
        this.heldFrames = undefined;
        if (live()) this.close(`session refused for user "${r.user}": ${e.message}`);
      },
    );
  }

  /** The authenticator side's decision on a successful authentication. */
  private authorized(r: AuthSuccess, answer: AuthorizeAnswer): void {
    if (answer === false) {
      this.close(`session refused for user "${r.user}"`);
      return;
    }
    this.peerAddress = answer.peerAddress;
    this.localAddress = answer.localAddress;
    this.peerServers = answer.servers;
    this.mppeKeys = r.mppeKeys ?? this.mppeKeys;
    if (--this.authPending !== 0) return;
    this.enterNetwork();
    const held = this.heldFrames;
    this.heldFrames = undefined;
    for (const f of held ?? []) if (this.phaseValue === 'network') this.demux(f);
  }

  private stopAuth(): void {
    this.authGeneration++;
    const list = this.exchanges;
    this.exchanges = [];
    for (const ex of list) ex.stop();
  }

  /** Route a PAP/CHAP packet: to the side its Code belongs to when we run both (RFC 1334, 1994). */
  private receiveAuth(protocol: number, info: Uint8Array): void {
    const candidates = this.exchanges.filter((e) => e.protocol === protocol);
    let ex = candidates[0];
    if (candidates.length > 1) {
      const code = info[0];
      const toAuthenticator = protocol === PppProtocol.PAP ? code === 1 : code === 2;
      ex = candidates[toAuthenticator ? 0 : 1];
    }
    if (!ex) {
      this.drops.drop('authentication packet for a protocol not negotiated');
      return;
    }
    ex.receive(info);
  }

  private enterNetwork(): void {
    const policy = this.opts.policy;
    if (policy.mppe.required) {
      if (!this.mppeKeys) {
        const why = this.authMethod ? `${this.authMethod} provides` : 'no authentication took place, so';
        this.close(`MPPE is required but ${why} no MPPE keys`);
        return;
      }
      if (!this.opts.mppe) {
        this.close('MPPE is required but no MPPE implementation is configured');
        return;
      }
    }
    this.phaseValue = 'network';
    this.network.start(
      this.peerAddress || policy.peerAddress || undefined,
      this.mppeKeys,
      this.peerServers,
      this.localAddress,
    );
  }
}

function lcpDrops(link: PppLink): Record<string, number> {
  const out: Record<string, number> = {};
  for (const fsm of [link.lcp, link.network.ipcp, link.network.ccp, link.network.ipv6cp]) {
    if (!fsm) continue;
    for (const [k, v] of Object.entries(fsm.drops.snapshot())) out[`${fsm.name}: ${k}`] = v;
  }
  return out;
}
