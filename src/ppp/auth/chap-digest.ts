import type { Credential } from '../../aaa/credentials.ts';
import type { MppeKeySource } from '../mppe/types.ts';
import type { AuthMethod } from './types.ts';

/**
 * What a CHAP algorithm plugs into the CHAP exchange (chap.ts), in the manner of lwIP's
 * `chap_digest_type`: the exchange owns identifiers, timers and packets; the digest owns the Value
 * fields and the Success/Failure message texts.
 */
export interface ChapDigest {
  readonly method: AuthMethod;
  /** The algorithm octet of the LCP Authentication-Protocol option (ChapAlgorithm). */
  readonly algorithm: number;
  /** Length of the challenge the authenticator sends. */
  readonly challengeLength: number;
  /** Authenticator: a problem with the Response Value's shape (wrong Value-Size...), or undefined. */
  checkResponseValue(value: Uint8Array): string | undefined;
  /** Authenticator: verify a well-formed Response against the user's stored credential. */
  verify(ctx: ChapVerifyContext): ChapVerdict;
  /** Authenticator: the Failure message when the user is unknown (same text as a wrong password). */
  failureMessage(ctx: ChapFailureContext): string;
  /** Peer: a problem with the Challenge Value's shape, or undefined. */
  checkChallengeValue(value: Uint8Array): string | undefined;
  /** Peer: compute the Response Value for a Challenge. */
  respond(ctx: ChapRespondContext): ChapAnswer;
}

export interface ChapFailureContext {
  /** The challenge of this exchange. */
  challenge: Uint8Array;
  random: (n: number) => Uint8Array;
}

export interface ChapVerifyContext extends ChapFailureContext {
  id: number;
  /** The Response Value (shape already checked). */
  response: Uint8Array;
  /** The Name field as the peer sent it: its octets, and as text. */
  name: Uint8Array;
  rawUser: string;
  /** The name used for lookup (domain stripped when configured). */
  user: string;
  credential: Credential;
}

export type ChapVerdict =
  | { ok: true; message: string; mppeKeys?: MppeKeySource }
  | { ok: false; reason: string; message: string };

export interface ChapRespondContext {
  id: number;
  challenge: Uint8Array;
  user: string;
  password: string;
  random: (n: number) => Uint8Array;
}

/** The peer's Response and how to judge the authenticator's answer to it. */
export interface ChapAnswer {
  value: Uint8Array;
  /** Judge a Success message (MS-CHAPv2 checks the authenticator response here). */
  checkSuccess(message: string): { ok: true; mppeKeys?: MppeKeySource } | { ok: false; reason: string };
  /** The reason, in words, for a Failure message. */
  describeFailure(message: string): string;
}
