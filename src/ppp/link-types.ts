import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import type { IPv4 } from '../wire/ip.ts';
import type { AuthExchange, AuthHost, AuthMethod, AuthSuccess } from './auth/types.ts';
import type { MppeFactory } from './mppe/types.ts';
import type { NetworkInfo } from './ncps.ts';
import type { PppPolicy } from './policy.ts';

/** IPCP DNS1, DNS2, NBNS1, NBNS2 for the peer (undefined: keep the policy's). */
export type PeerServers = [IPv4 | undefined, IPv4 | undefined, IPv4 | undefined, IPv4 | undefined];

/** RFC 1661 §3.2 link phases. */
export type PppPhase = 'dead' | 'establish' | 'authenticate' | 'network' | 'terminate';

export interface PppLinkEvents {
  /**
   * Authenticator side: the peer is authenticated. Return the address to assign (or {} to use
   * the policy's peerAddress), or false to refuse the session (the link terminates). `servers`
   * (DNS1, DNS2, NBNS1, NBNS2; e.g. from RADIUS) replace the policy's ms-dns/ms-wins where set.
   */
  onAuthenticated?(r: AuthSuccess): { peerAddress?: IPv4; servers?: PeerServers } | false;
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
  policy: PppPolicy;
  /** Send one PPP frame (to GRE). */
  sendFrame(frame: Uint8Array): void;
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
