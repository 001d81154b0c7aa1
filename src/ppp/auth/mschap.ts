import { ntChallengeResponseV1 } from '../../crypto/mschap.ts';
import { quote } from '../../util/escape.ts';
import { mppeKeysFromMschapV1 } from '../mppe/keys.ts';
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

/** The authenticator's challenge is 8 octets (RFC 2433 §4). */
export const MSCHAP_CHALLENGE_LENGTH = 8;
/** Response Value-Size (RFC 2433 §5): LM-Response, NT-Response, Flags. */
export const MSCHAP_RESPONSE_LENGTH = 49;
export const MSCHAP_OFFSET_LM_RESPONSE = 0;
export const MSCHAP_OFFSET_NT_RESPONSE = 24;
export const MSCHAP_OFFSET_FLAGS = 48;
/** Flags = 1: "use the NT-Response" (the LM-Response is then ignored). */
export const MSCHAP_FLAG_USE_NT = 1;
/** Version we announce in Failure messages (RFC 2433: 2 or more; 1 meant the deprecated password change). */
export const MSCHAP_VERSION = 2;

export const MSCHAP_SUCCESS_TEXT = 'Access granted';
/** Our only Failure message: authentication failure, no retry, version 2. */
export const MSCHAP_FAILURE_MESSAGE = formatMsChapFailure({
  error: MsChapError.AuthenticationFailure,
  retry: false,
  version: MSCHAP_VERSION,
});

/** Build the 49-octet Response Value: 24 zero octets (no LM-Response) ‖ NT-Response ‖ Flags 1. */
export function encodeMschapResponse(ntResponse: Uint8Array): Uint8Array {
  const v = new Uint8Array(MSCHAP_RESPONSE_LENGTH);
  v.set(ntResponse, MSCHAP_OFFSET_NT_RESPONSE);
  v[MSCHAP_OFFSET_FLAGS] = MSCHAP_FLAG_USE_NT;
  return v;
}

/**
 * MS-CHAPv1 (RFC 2433), NT-Response only: a Response offering only the LAN Manager response
 * (Flags 0) is refused, as pppd does. No retries: our Failure says "E=691 R=0 V=2". (pppd sends
 * "E=691 R=1 C=<the same challenge> V=0" and then terminates the link anyway; announcing a retry
 * we do not allow would only make Windows prompt for a password in vain.)
 */
export const mschapV1: ChapDigest = {
  method: 'mschap',
  algorithm: ChapAlgorithm.MSCHAP,
  challengeLength: MSCHAP_CHALLENGE_LENGTH,

  checkResponseValue(value) {
    return value.length === MSCHAP_RESPONSE_LENGTH
      ? undefined
      : `Value-Size ${value.length}, expected ${MSCHAP_RESPONSE_LENGTH}`;
  },

  verify({ challenge, response, user, credential }) {
    const message = MSCHAP_FAILURE_MESSAGE;
    if (response[MSCHAP_OFFSET_FLAGS] !== MSCHAP_FLAG_USE_NT) {
      return {
        ok: false,
        reason: `${quote(user)} offered only a LAN Manager response, which is not supported`,
        message,
      };
    }
    const hash = ntHashOfSecret(credential.secret);
    const expected = ntChallengeResponseV1(challenge, hash);
    if (!safeEqual(expected, response.subarray(MSCHAP_OFFSET_NT_RESPONSE, MSCHAP_OFFSET_FLAGS))) {
      return { ok: false, reason: wrongPassword(user), message };
    }
    return {
      ok: true,
      message: MSCHAP_SUCCESS_TEXT,
      mppeKeys: mppeKeysFromMschapV1(hash, challenge, 'server'),
    };
  },

  failureMessage() {
    return MSCHAP_FAILURE_MESSAGE;
  },

  checkChallengeValue(value) {
    return value.length === MSCHAP_CHALLENGE_LENGTH
      ? undefined
      : `Value-Size ${value.length}, expected ${MSCHAP_CHALLENGE_LENGTH}`;
  },

  respond({ challenge, password }) {
    const hash = ntHashOfOwnPassword(password);
    const challenge8 = challenge.slice();
    return {
      value: encodeMschapResponse(ntChallengeResponseV1(challenge8, hash)),
      checkSuccess: () => ({ ok: true, mppeKeys: mppeKeysFromMschapV1(hash, challenge8, 'client') }),
      describeFailure: describeMsChapFailure,
    };
  },
};
