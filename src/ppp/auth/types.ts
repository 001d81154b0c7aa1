import type { CredentialStore } from '../../aaa/credentials.ts';
import type { AuthThrottle } from '../../aaa/login-throttle.ts';
import type { Clock } from '../../util/clock.ts';
import type { Logger } from '../../util/log.ts';
import type { MppeKeySource } from '../mppe/types.ts';

/** PPP protocol numbers of the authentication protocols. */
export const PPP_PAP = 0xc023;
export const PPP_CHAP = 0xc223;

/** CHAP algorithm octets in the LCP Authentication-Protocol option (RFC 1994, RFC 2433, RFC 2759). */
export const ChapAlgorithm = { MD5: 0x05, MSCHAP: 0x80, MSCHAPV2: 0x81 } as const;

export type AuthMethod = 'pap' | 'chap-md5' | 'mschap' | 'mschapv2';

export interface AuthSuccess {
  method: AuthMethod;
  /** The user name to account this session to (domain stripped when configured). */
  user: string;
  /** The name exactly as the peer sent it (e.g. "CORP\\alice"). */
  rawUser: string;
  /** MS-CHAP only: keys for MPPE, oriented for our side. */
  mppeKeys?: MppeKeySource;
  /** Authenticator side: the credential that matched (for per-user addresses). */
  credential?: import('../../aaa/credentials.ts').Credential;
  /**
   * Authenticator side, when a remote authenticator (RADIUS) decided: what it granted with the
   * acceptance (for RADIUS, its RadiusGrant: address, timeouts, Class...), for the session.
   */
  grant?: unknown;
}

/**
 * What a remote authenticator (RADIUS) is asked to judge: the peer's answer as it came, with the
 * challenge it answers.
 */
export type RemoteAuthRequest =
  | {
      method: 'pap';
      rawUser: string;
      user: string;
      /** The Peer-ID as received (rawUser is its UTF-8 decoding, which may have lost octets). */
      name: Uint8Array;
      password: Uint8Array;
    }
  | {
      method: 'chap-md5' | 'mschap' | 'mschapv2';
      rawUser: string;
      user: string;
      /** The CHAP Identifier of the Challenge/Response. */
      id: number;
      challenge: Uint8Array;
      /** The Response Value (shape already checked). */
      response: Uint8Array;
      /** The Response's Name field as received (rawUser is its UTF-8 decoding). */
      name: Uint8Array;
    };

/** A remote authenticator's answer. `message` replaces the exchange's own Success/Failure text. */
export type RemoteVerdict =
  | { ok: true; message?: string; mppeKeys?: MppeKeySource; grant?: unknown }
  | { ok: false; reason: string; message?: string };

/**
 * An authenticator elsewhere (RADIUS): the exchange holds its answer (the `deciding` state) until
 * `done` is called, once. `cancel()` is called when the exchange stops first; `done` must not be
 * called after it.
 */
export interface RemoteAuthenticator {
  verify(req: RemoteAuthRequest, done: (verdict: RemoteVerdict) => void): { cancel(): void };
}

export interface AuthFailure {
  method: AuthMethod;
  user?: string;
  /** In words, for the log: "wrong password", "unknown user", "peer gave up after 3 attempts"... */
  reason: string;
  /**
   * The exchange already logged this failure (or, for an address that is locked out, deliberately
   * did not: the back-off logs one summary per episode). The link may then log its closing at
   * debug level, so a guess costs at most one log line.
   */
  logged?: boolean;
}

/** What an exchange needs from the link it runs on. */
export interface AuthHost {
  readonly clock: Clock;
  readonly log: Logger;
  /** Send one packet of `protocol` (PPP_PAP or PPP_CHAP); `packet` starts at the Code octet. */
  send(protocol: number, packet: Uint8Array): void;
  /** The exchange is over and the peer is authenticated (authenticator) / we were accepted (peer). */
  succeeded(result: AuthSuccess): void;
  /** The exchange is over and failed; the link terminates (LCP Terminate-Request). */
  failed(result: AuthFailure): void;
}

/**
 * One authentication exchange, as authenticator (server) or peer (client). Created by the link
 * when the Authenticate phase starts with the method LCP negotiated.
 */
export interface AuthExchange {
  readonly method: AuthMethod;
  readonly protocol: number;
  /** Begin (the authenticator sends its Challenge / the PAP peer its Authenticate-Request). */
  start(): void;
  /** A packet of this exchange's protocol, starting at the Code octet. Malformed input is dropped. */
  receive(packet: Uint8Array): void;
  /** Stop timers; no more output. */
  stop(): void;
}

export interface AuthenticatorConfig {
  credentials: CredentialStore;
  /** Our name (pppd `name`), sent in CHAP Challenges and matched against the server column. */
  serverName: string;
  /** Strip "DOMAIN\\" from user names before lookup. */
  stripDomain: boolean;
}

export interface AuthPeerConfig {
  user: string;
  password: string;
}

/**
 * Options shared by every exchange, beyond the agreed configs above. All optional: the defaults are
 * pppd's.
 */
export interface ExchangeOptions {
  /** Source of random bytes for challenges and identifiers (default node:crypto randomBytes). */
  random?: (n: number) => Uint8Array;
  /** Where malformed or unexpected packets are counted (default: a counter of this exchange). */
  drops?: import('../../util/counters.ts').DropCounter<AuthDropReason>;
  /** The peer's address, for log lines about failed logins (e.g. "203.0.113.5"). */
  peerAddress?: string;
}

/** Authenticator (server) options. */
export interface AuthenticatorOptions extends AuthenticatorConfig, ExchangeOptions {
  /** CHAP: Challenge retransmission interval in ms (pppd chap-restart, 3 s). */
  retryMs?: number;
  /** CHAP: Challenges sent without a Response before giving up (pppd chap-max-challenge, 10). */
  maxChallenges?: number;
  /** PAP: how long to wait for an Authenticate-Request in ms (default 30 s). */
  timeoutMs?: number;
  /**
   * Back-off for password guessing, keyed by `peerAddress` (no throttling without one). Before a
   * password is checked it says whether the address is locked out (then the peer gets the ordinary
   * failure answer and the password is not checked) and how long to hold the answer back (success
   * or failure alike); each outcome is reported to it.
   */
  throttle?: AuthThrottle;
  /**
   * Judge logins remotely (RADIUS) instead of with `credentials`. The back-off still applies: a
   * locked-out address is refused without asking, and outcomes are reported to the throttle.
   */
  remote?: RemoteAuthenticator;
}

/** Peer (client) options. */
export interface AuthPeerOptions extends AuthPeerConfig, ExchangeOptions {
  /** PAP: Authenticate-Request retransmission interval in ms (pppd pap-restart, 3 s). */
  retryMs?: number;
  /** PAP: Authenticate-Requests sent without an answer before giving up (pppd pap-max-authreq, 10). */
  maxRequests?: number;
  /** CHAP: how long to wait for a Challenge, then for Success/Failure, in ms (default 30 s). */
  timeoutMs?: number;
}

/** Why an authentication exchange dropped a packet (ids, codes and problems go in the detail). */
export type AuthDropReason =
  | 'malformed packet'
  | 'malformed Challenge'
  | 'malformed Response'
  | 'Response with an Identifier that is not our Challenge'
  | 'Response after the exchange timed out'
  | 'CHAP Challenge, Success or Failure sent to the authenticator'
  | 'CHAP Response sent to the peer'
  | 'CHAP Success or Failure that answers no Response of ours'
  | 'Authenticate-Ack/Nak sent to the authenticator'
  | 'Authenticate-Ack/Nak with an Identifier we did not send'
  | 'Authenticate-Request sent to the peer';
