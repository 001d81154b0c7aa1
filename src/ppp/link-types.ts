import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import type { IPv4 } from '../wire/ip.ts';
import type { AuthExchange, AuthHost, AuthMethod, AuthSuccess } from './auth/types.ts';
import type { MppeFramingDropReason } from './mppe/framing.ts';
import type { MppeDropReason, MppeFactory } from './mppe/types.ts';
import type { NetworkInfo } from './ncps.ts';
import type { PppPolicy } from './policy.ts';

/** IPCP DNS1, DNS2, NBNS1, NBNS2 for the peer (undefined: keep the policy's). */
export type PeerServers = [IPv4 | undefined, IPv4 | undefined, IPv4 | undefined, IPv4 | undefined];

/** RFC 1661 §3.2 link phases. */
export type PppPhase = 'dead' | 'establish' | 'authenticate' | 'network' | 'terminate';

/** What onAuthenticated decides: the addresses (and servers) to give the peer, or false to refuse. */
export type AuthorizeAnswer = { peerAddress?: IPv4; localAddress?: IPv4; servers?: PeerServers } | false;

export interface PppLinkEvents {
  /**
   * Authenticator side: the peer is authenticated. Return the address to assign (or {} to use
   * the policy's peerAddress), or false to refuse the session (the link terminates). `servers`
   * (DNS1, DNS2, NBNS1, NBNS2; e.g. from RADIUS) replace the policy's ms-dns/ms-wins where set.
   * A promise: the link waits in the authenticate phase for it (an answer after the link has
   * moved on is ignored; a rejection refuses the session).
   */
  onAuthenticated?(r: AuthSuccess): AuthorizeAnswer | Promise<AuthorizeAnswer>;
  /** IPCP is open (and CCP/IPv6CP settled); fires again after a renegotiation. */
  onNetworkUp?(info: NetworkInfo): void;
  onIp?(packet: Uint8Array): void;
  onIpv6?(packet: Uint8Array): void;
  /** Exactly once, when the link reaches Dead after open(). */
  onDown?(reason: string): void;
}

export interface PppLinkOptions {
  role: 'server' | 'client';
  clock: Clock;
  log: Logger;
  policy: Readonly<PppPolicy>;
  /**
   * Send one PPP frame (to GRE); `headroom` free bytes precede it in its buffer, so the lower
   * layer may write its header there instead of copying.
   */
  sendFrame(frame: Uint8Array, headroom?: number): void;
  /** Free bytes the lower layer wants in front of frames we allocate. @default 0 */
  lowerHeadroom?: number;
  /** False when the lower layer would drop a frame now. @default always true */
  canSend?(): boolean;
  /** Server side: the exchange that authenticates the peer with `method`. */
  authenticator?(method: AuthMethod, host: AuthHost): AuthExchange;
  /** Client side: the exchange that authenticates us to the peer with `method`. */
  authPeer?(method: AuthMethod, host: AuthHost): AuthExchange;
  mppe?: MppeFactory;
  /** A random unsigned 32-bit number (Magic-Number, IPv6 identifiers); default node:crypto. */
  random?(): number;
  events: PppLinkEvents;
}

export interface PppLinkStats {
  framesIn: number;
  framesOut: number;
  ipIn: number;
  ipOut: number;
  drops: Record<string, number>;
}

/** Why the Network phase dropped a packet. */
export type NcpDropReason =
  | 'IPv4 before IPCP is open'
  | 'IPv6 before IPv6CP is open'
  | 'IPv6 packet with IPv6 disabled'
  | 'MPPE packet before CCP is up'
  | 'outgoing packet before MPPE is up'
  | 'outgoing packet larger than the MTU'
  | 'outgoing packet while its NCP is not open'
  | 'outgoing packet with the GRE send queue full'
  /** Counted for the kernel, which dropped it unread (the server's TUN drop list). */
  | 'outgoing packet with the GRE send queue full, dropped unread by the kernel'
  | 'unencrypted IPv4 with MPPE on'
  | 'unencrypted IPv6 with MPPE on';

/** The link's vocabulary: its own reasons, the Network phase's and MPPE's (one counter per link). */
export type PppLinkDropReason =
  | 'authentication packet for a protocol not negotiated'
  | 'frame outside the Authenticate and Network phases'
  | 'frame after the link went down'
  | 'frame before open()'
  | 'internal error'
  | 'malformed PPP frame'
  | 'network frame before authentication is done'
  | 'non-LCP frame while LCP is not open'
  | 'outgoing IPv4 outside the Network phase'
  | 'outgoing IPv6 outside the Network phase'
  | NcpDropReason
  | MppeFramingDropReason
  | MppeDropReason;
