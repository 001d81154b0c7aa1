import { createHash } from 'node:crypto';
import { quote } from '../../util/escape.ts';
import type { ChapDigest } from './chap-digest.ts';
import { encodeText, safeEqual, wrongPassword } from './common.ts';
import { ChapAlgorithm } from './types.ts';

/** MD5 output length: the only valid Response Value-Size. */
export const CHAP_MD5_RESPONSE_LENGTH = 16;
/** Our challenge length (RFC 1994 leaves it open; 16 octets like most implementations). */
export const CHAP_MD5_CHALLENGE_LENGTH = 16;

export const CHAP_MD5_SUCCESS_MESSAGE = 'Access granted';
export const CHAP_MD5_FAILURE_MESSAGE = 'Access denied';

/** Response Value = MD5(Identifier ‖ secret ‖ Challenge) (RFC 1994 §4.1). */
export function chapMd5Response(id: number, secret: Uint8Array, challenge: Uint8Array): Uint8Array {
  const h = createHash('md5');
  h.update(Uint8Array.of(id & 0xff));
  h.update(secret);
  h.update(challenge);
  return new Uint8Array(h.digest());
}

/**
 * CHAP with MD5 (RFC 1994). The authenticator needs the clear password: an NT hash cannot produce the
 * MD5 of the password, so such users are refused with that reason in the log.
 */
export const chapMd5: ChapDigest = {
  method: 'chap-md5',
  algorithm: ChapAlgorithm.MD5,
  challengeLength: CHAP_MD5_CHALLENGE_LENGTH,

  checkResponseValue(value) {
    return value.length === CHAP_MD5_RESPONSE_LENGTH
      ? undefined
      : `Value-Size ${value.length}, expected ${CHAP_MD5_RESPONSE_LENGTH}`;
  },

  verify({ id, challenge, response, user, credential }) {
    if (credential.secret.kind !== 'password') {
      return {
        ok: false,
        reason:
          `cannot use CHAP-MD5 for ${quote(user)}: only an NT hash of the password is stored, ` +
          'and CHAP-MD5 needs the clear password (store the password, or let the peer use MS-CHAPv2)',
        message: CHAP_MD5_FAILURE_MESSAGE,
      };
    }
    const expected = chapMd5Response(id, encodeText(credential.secret.password), challenge);
    return safeEqual(expected, response)
      ? { ok: true, message: CHAP_MD5_SUCCESS_MESSAGE }
      : { ok: false, reason: wrongPassword(user), message: CHAP_MD5_FAILURE_MESSAGE };
  },

  failureMessage() {
    return CHAP_MD5_FAILURE_MESSAGE;
  },

  checkChallengeValue() {
    return undefined; // any non-empty length is valid (the codec refuses Value-Size 0)
  },

  respond({ id, challenge, password }) {
    return {
      value: chapMd5Response(id, encodeText(password), challenge),
      checkSuccess: () => ({ ok: true }),
      describeFailure: (message) => `authenticator refused us${message ? `: ${quote(message)}` : ''}`,
    };
  },
};
