import { GreChannel } from '../gre/channel.ts';
import { GRE_HEADER_LENGTH_MAX, type GreHeader } from '../gre/codec.ts';
import type { AuthExchange, AuthHost, AuthMethod } from '../ppp/auth/types.ts';
import { PppLink, type PppLinkEvents, type PppLinkStats, type PppPhase } from '../ppp/link.ts';
import { createMppe } from '../ppp/mppe/cipher.ts';
import type { MppeFactory } from '../ppp/mppe/types.ts';
import type { PppPolicy } from '../ppp/policy.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import type { IPv4 } from '../wire/ip.ts';

/**
 * Free bytes wanted before an IP packet handed to sendIp for the in-place path: GRE header (16 at
 * most) + PPP address/control and protocol (4) + MPPE header (2) + inner protocol (2), rounded up.
 */
export const TUNNEL_HEADROOM = 32;

/** The call as the control connection set it up (pptp/control.ts CallInfo has these and more). */
export interface CallIds {
  /** Our call id: the key of the GRE the peer sends us. */
  localCallId: number;
  /** The peer's call id: the key of the GRE we send. */
  peerCallId: number;
  /** The peer's Packet Recv Window Size. */
  peerRecvWindow: number;
}

export interface TunnelCallOptions {
  role: 'server' | 'client';
  clock: Clock;
  /** The session's logger; the GRE and PPP layers log under "gre:" and "ppp:". */
  log: Logger;
  call: CallIds;
  /** Where our GRE goes: the control connection's peer. */
  peer: IPv4;
  sendGre(packet: Uint8Array, to: IPv4): void;
  policy: Readonly<PppPolicy>;
  /** Server role: authenticates the peer. */
  authenticator?(method: AuthMethod, host: AuthHost): AuthExchange;
  /** Client role: authenticates us to the peer. */
  authPeer?(method: AuthMethod, host: AuthHost): AuthExchange;
  /** @default createMppe */
  mppe?: MppeFactory;
  events: PppLinkEvents;
  /** Whether sendIp would take a packet now changed (see GreChannelOptions.onAccepting). */
  onAccepting?(accepting: boolean): void;
}

/**
 * One PPTP call's data path, the same for server, client and load generator: the call's
 * enhanced-GRE channel with the PPP link on top. The control connection hands a call over with
 * one constructor call; from then on PPP is reached only through this object.
 *
 *   GreDemux ──receiveGre──> GreChannel ──frame──> PppLink ──onIp──> (TUN / caller)
 *   sendIp ──> PppLink ──frame──> GreChannel ──sendGre──> raw socket
 */
export class TunnelCall {
  readonly peer: IPv4;
  readonly localCallId: number;
  private channel: GreChannel | undefined;
  private link: PppLink | undefined;

  constructor(o: TunnelCallOptions) {
    this.peer = o.peer;
    this.localCallId = o.call.localCallId;
    const channel = new GreChannel({
      clock: o.clock,
      log: o.log.child('gre:'),
      peerCallId: o.call.peerCallId,
      peerRecvWindow: o.call.peerRecvWindow,
      sendPacket: (p) => o.sendGre(p, o.peer),
      deliver: (frame) => this.link?.receiveFrame(frame),
      ...(o.onAccepting ? { onAccepting: o.onAccepting } : {}),
    });
    this.channel = channel;
    this.link = new PppLink({
      role: o.role,
      clock: o.clock,
      log: o.log.child('ppp:'),
      policy: o.policy,
      sendFrame: (f, headroom) => this.channel?.sendFrame(f, headroom),
      lowerHeadroom: GRE_HEADER_LENGTH_MAX,
      canSend: () => this.channel?.accepting ?? false,
      ...(o.authenticator ? { authenticator: o.authenticator } : {}),
      ...(o.authPeer ? { authPeer: o.authPeer } : {}),
      mppe: o.mppe ?? createMppe,
      events: o.events,
    });
  }

  /** Start PPP (LCP sends its first Configure-Request). */
  open(): void {
    this.link?.open();
  }

  /** 'dead' once stopped. */
  get phase(): PppPhase {
    return this.link?.phase ?? 'dead';
  }

  get linkStats(): PppLinkStats | undefined {
    return this.link?.stats;
  }

  /** GRE packets received on the call (0 before the channel exists). */
  get greReceived(): number {
    return this.channel?.received ?? 0;
  }

  /** The GRE and PPP drop counts alone, as the call stops (no whole stats objects built). */
  dropSnapshots(): { gre: Record<string, number>; ppp: Record<string, number> } {
    return { gre: this.channel?.dropSnapshot() ?? {}, ppp: this.link?.dropSnapshot() ?? {} };
  }

  /**
   * IP packets for the peer that were dropped before they reached us because the GRE send queue
   * was full (the server's TUN drop list): counted beside those the link drops itself.
   */
  countSendQueueDrops(count: number): void {
    this.link?.countDrops(
      'outgoing packet with the GRE send queue full, dropped unread by the kernel',
      count,
    );
  }

  /** A GRE packet for our call id from the peer (GreDemux has checked both). */
  receiveGre(packet: Uint8Array, header: GreHeader): void {
    this.channel?.receive(packet, header);
  }

  /**
   * An IP packet to send to the peer through PPP (and MPPE when up). With TUNNEL_HEADROOM free
   * bytes before it in its buffer, GRE + PPP + MPPE headers are written there and the packet is
   * encrypted and sent in place.
   */
  sendIp(packet: Uint8Array, headroom = 0): void {
    this.link?.sendIp(packet, headroom);
  }

  /** End PPP cleanly: LCP Terminate-Request; the link's onDown follows. */
  close(reason: string, peerReason?: string): void {
    this.link?.close(reason, peerReason);
  }

  /**
   * The call is gone (cleared, or the control connection closed): stop at once, timers and
   * queues dropped, PPP aborted (its onDown fires if it was still up). Safe to call twice.
   */
  stop(reason: string): void {
    this.channel?.close();
    this.channel = undefined;
    const link = this.link;
    this.link = undefined;
    link?.abort(reason);
  }
}
