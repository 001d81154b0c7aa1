import {
  checkAuthenticatorResponse,
  generateAuthenticatorResponse,
  generateNtResponse,
} from '../../crypto/mschap.ts';
import { mppeKeysFromMschapV2 } from '../mppe/keys.ts';
import type { ChapDigest } from './chap-digest.ts';
import { safeEqual, wrongPassword } from './common.ts';
import {
  describeMsChapFailure,
  formatMsChapFailure,
  MsChapError,
  ntHashOfOwnPassword,
  ntHashOfSecret,
} from './ms-common.ts';
import { ChapAlgorithm } from './types.ts';

/** Challenge length: the authenticator's and the peer's challenges are 16 octets (RFC 2759 §4). */
export const MSCHAPV2_CHALLENGE_LENGTH = 16;
/** Response Value-Size (RFC 2759 §4): Peer-Challenge, Reserved, NT-Response, Flags. */
export const MSCHAPV2_RESPONSE_LENGTH = 49;
export const MSCHAPV2_OFFSET_PEER_CHALLENGE = 0;
export const MSCHAPV2_OFFSET_RESERVED = 16;
export const MSCHAPV2_OFFSET_NT_RESPONSE = 24;
export const MSCHAPV2_OFFSET_FLAGS = 48;
export const MSCHAPV2_NT_RESPONSE_LENGTH = 24;
/** Version we announce in Failure messages (RFC 2759 §6: "V=3"). */
export const MSCHAPV2_VERSION = 3;

export const MSCHAPV2_SUCCESS_TEXT = 'Access granted';
export const MSCHAPV2_FAILURE_TEXT = 'Authentication failed';

/** "S=<40 hex>" at the start of a Success message (RFC 2759 §5). */
const AUTHENTICATOR_RESPONSE = /^S=[0-9A-Fa-f]{40}/;

/** Build the 49-octet Response Value: Peer-Challenge ‖ 8 zero octets ‖ NT-Response ‖ Flags 0. */
export function encodeMschapV2Response(peerChallenge: Uint8Array, ntResponse: Uint8Array): Uint8Array {
  const v = new Uint8Array(MSCHAPV2_RESPONSE_LENGTH);
  v.set(peerChallenge, MSCHAPV2_OFFSET_PEER_CHALLENGE);
  v.set(ntResponse, MSCHAPV2_OFFSET_NT_RESPONSE);
  return v;
}

/**
 * MS-CHAPv2 (RFC 2759). The ChallengeHash uses the Name without any "DOMAIN\" prefix (RFC 2759 §8.2,
 * as Windows and pppd do), whatever `stripDomain` says; the Response's Name field carries the full
 * name. The authenticator hashes the Name octets exactly as received (a Windows peer may send them
 * in its ANSI code page, which is not UTF-8). Works with clear passwords and NT hashes alike.
 *
 * Failure: "E=691 R=0 C=<new challenge> V=3 M=Authentication failed" (RFC 2759 §6). We never offer a
 * retry (R=0): like pppd, the first Response decides, and the link is terminated after a Failure.
 * The peer verifies the authenticator response "S=" of the Success message (mutual authentication,
 * RFC 2759 §5) and fails the exchange when it is missing or wrong.
 */
export const mschapV2: ChapDigest = {
  method: 'mschapv2',
  algorithm: ChapAlgorithm.MSCHAPV2,
  challengeLength: MSCHAPV2_CHALLENGE_LENGTH,

  checkResponseValue(value) {
    return value.length === MSCHAPV2_RESPONSE_LENGTH
      ? undefined
      : `Value-Size ${value.length}, expected ${MSCHAPV2_RESPONSE_LENGTH}`;
  },

  verify({ challenge, response, name, user, credential, random }) {
    const peerChallenge = response.subarray(MSCHAPV2_OFFSET_PEER_CHALLENGE, MSCHAPV2_OFFSET_RESERVED);
    const ntResponse = response.slice(MSCHAPV2_OFFSET_NT_RESPONSE, MSCHAPV2_OFFSET_FLAGS);
    const hash = ntHashOfSecret(credential.secret);
    const expected = generateNtResponse(challenge, peerChallenge, name, hash);
    if (!safeEqual(expected, ntResponse)) {
      return {
        ok: false,
        reason: wrongPassword(user),
        message: mschapV2.failureMessage({ challenge, random }),
      };
    }
    const s = generateAuthenticatorResponse(hash, ntResponse, peerChallenge, challenge, name);
    return {
      ok: true,
      message: `${s} M=${MSCHAPV2_SUCCESS_TEXT}`,
      mppeKeys: mppeKeysFromMschapV2(hash, ntResponse, 'server'),
    };
  },

  failureMessage({ random }) {
    return formatMsChapFailure({
      error: MsChapError.AuthenticationFailure,
      retry: false,
      challenge: random(MSCHAPV2_CHALLENGE_LENGTH),
      version: MSCHAPV2_VERSION,
      message: MSCHAPV2_FAILURE_TEXT,
    });
  },

  checkChallengeValue(value) {
    return value.length === MSCHAPV2_CHALLENGE_LENGTH
      ? undefined
      : `Value-Size ${value.length}, expected ${MSCHAPV2_CHALLENGE_LENGTH}`;
  },

  respond({ challenge, user, password, random }) {
    const peerChallenge = random(MSCHAPV2_CHALLENGE_LENGTH);
    const hash = ntHashOfOwnPassword(password);
    const ntResponse = generateNtResponse(challenge, peerChallenge, user, hash);
    const authChallenge = challenge.slice();
    return {
      value: encodeMschapV2Response(peerChallenge, ntResponse),
      checkSuccess(message) {
        const s = AUTHENTICATOR_RESPONSE.exec(message)?.[0];
        if (s === undefined) {
          return {
            ok: false,
            reason: 'Success message carries no authenticator response (S=): mutual authentication failed',
          };
        }
        if (!checkAuthenticatorResponse(hash, ntResponse, peerChallenge, authChallenge, user, s)) {
          return {
            ok: false,
            reason:
              'wrong authenticator response (S=) in the Success message: the server does not know our password ' +
              '(mutual authentication failed)',
          };
        }
        return { ok: true, mppeKeys: mppeKeysFromMschapV2(hash, ntResponse, 'client') };
      },
      describeFailure: describeMsChapFailure,
    };
  },
};
