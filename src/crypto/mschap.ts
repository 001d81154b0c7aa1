/**
 * MS-CHAP cryptography: MS-CHAPv2 (RFC 2759 §8) and the MS-CHAPv1 NT response (RFC 2433 §A).
 *
 * Functions take the NT password HASH (MD4 of the UTF-16LE password), not the password, because
 * secrets may be stored as NT hashes; `ntPasswordHash` computes it from a password.
 *
 * User names: RFC 2759 §8.2 (ChallengeHash) says "Only the user name (as presented by the peer and
 * excluding any prepended domain name) is used as input to SHAUpdate()". So the name is the
 * Response packet's Name field with any "DOMAIN\" prefix removed; `challengeHash` removes it itself
 * (up to the LAST backslash, as pppd does), so callers may pass the Name field as received. A
 * string is encoded as UTF-8; pass the raw Name octets as a Uint8Array to hash them unchanged.
 */
import { timingSafeEqual } from 'node:crypto';
import { bytesEqual } from '../wire/bytes.ts';
import { desEncryptWith, desKeySchedule, expandDesKey } from './des.ts';
import { md4 } from './md4.ts';
import { sha1Parts as sha1 } from './sha1.ts';

/** RFC 2759 §8.7 Magic1 (39 octets) and Magic2 (41 octets), given there as hex of this ASCII. */
const MAGIC_SERVER_SIGNING = Buffer.from('Magic server to client signing constant', 'ascii');
const MAGIC_PAD = Buffer.from('Pad to make it do more than one iteration', 'ascii');

const BACKSLASH = 0x5c;

/** The user name octets with any "DOMAIN\" prefix removed (RFC 2759 §8.2). */
export function userNameForChallengeHash(userName: string | Uint8Array): Uint8Array {
  const bytes = typeof userName === 'string' ? Buffer.from(userName, 'utf8') : userName;
  const slash = bytes.lastIndexOf(BACKSLASH);
  return slash < 0 ? bytes : bytes.subarray(slash + 1);
}

/** NtPasswordHash (RFC 2759 §8.3): MD4 of the password as UTF-16LE (any Unicode works). */
export function ntPasswordHash(password: string): Uint8Array {
  return md4(Buffer.from(password, 'utf16le'));
}

/**
 * What a password hash always gives (its own hash, its three DES key schedules), kept per hash
 * array: a login computes each twice, and a user's hash (held by the credential or the client)
 * is the same array at every login. `of` is the content it was derived from, compared at every
 * use (16 octets), so an array whose content changed is derived afresh, never answered from an
 * old value. Arrays that are not reused go with their entry (a WeakMap holds no key alive).
 */
interface Derived {
  of: Uint8Array;
  hashHash?: Uint8Array;
  schedules?: Uint8Array[];
}
const derivedByHash = new WeakMap<Uint8Array, Derived>();

function derivedOf(passwordHash: Uint8Array): Derived {
  const d = derivedByHash.get(passwordHash);
  if (d && bytesEqual(d.of, passwordHash)) return d;
  const fresh: Derived = { of: passwordHash.slice() };
  derivedByHash.set(passwordHash, fresh);
  return fresh;
}

/** HashNtPasswordHash (RFC 2759 §8.4): MD4 of the 16-octet NT password hash (a new array). */
export function hashNtPasswordHash(passwordHash: Uint8Array): Uint8Array {
  const d = derivedOf(passwordHash);
  d.hashHash ??= md4(passwordHash);
  return d.hashHash.slice();
}

/**
 * ChallengeHash (RFC 2759 §8.2): the first 8 octets of
 * SHA-1(PeerChallenge ‖ AuthenticatorChallenge ‖ UserName), user name without domain.
 */
export function challengeHash(
  peerChallenge: Uint8Array,
  authenticatorChallenge: Uint8Array,
  userName: string | Uint8Array,
): Uint8Array {
  const digest = sha1(peerChallenge, authenticatorChallenge, userNameForChallengeHash(userName));
  return new Uint8Array(digest.subarray(0, 8));
}

/**
 * ChallengeResponse (RFC 2759 §8.5, RFC 2433 §A.5): the 16-octet hash is zero-padded to 21
 * octets, split into three 7-octet DES keys, and each encrypts the 8-octet challenge: 24 octets.
 */
export function challengeResponse(challenge8: Uint8Array, passwordHash: Uint8Array): Uint8Array {
  if (challenge8.length !== 8) throw new RangeError('challenge must be 8 octets');
  if (passwordHash.length !== 16) throw new RangeError('password hash must be 16 octets');
  const d = derivedOf(passwordHash);
  if (!d.schedules) {
    const z = new Uint8Array(21);
    z.set(passwordHash);
    d.schedules = [0, 1, 2].map((k) => desKeySchedule(expandDesKey(z.subarray(7 * k, 7 * k + 7))));
  }
  const out = new Uint8Array(24);
  for (let k = 0; k < 3; k++) out.set(desEncryptWith(d.schedules[k]!, challenge8), 8 * k);
  return out;
}

/** GenerateNTResponse (RFC 2759 §8.1): the 24-octet NT-Response of an MS-CHAPv2 Response. */
export function generateNtResponse(
  authChallenge: Uint8Array,
  peerChallenge: Uint8Array,
  userName: string | Uint8Array,
  passwordHash: Uint8Array,
): Uint8Array {
  return challengeResponse(challengeHash(peerChallenge, authChallenge, userName), passwordHash);
}

function authenticatorDigest(
  passwordHash: Uint8Array,
  ntResponse: Uint8Array,
  peerChallenge: Uint8Array,
  authChallenge: Uint8Array,
  userName: string | Uint8Array,
): Uint8Array {
  const first = sha1(hashNtPasswordHash(passwordHash), ntResponse, MAGIC_SERVER_SIGNING);
  return sha1(first, challengeHash(peerChallenge, authChallenge, userName), MAGIC_PAD);
}

/**
 * GenerateAuthenticatorResponse (RFC 2759 §8.7): "S=" followed by the 20-octet digest as 40
 * upper-case hex digits, sent by the authenticator in the Success packet.
 */
export function generateAuthenticatorResponse(
  passwordHash: Uint8Array,
  ntResponse: Uint8Array,
  peerChallenge: Uint8Array,
  authChallenge: Uint8Array,
  userName: string | Uint8Array,
): string {
  const digest = authenticatorDigest(passwordHash, ntResponse, peerChallenge, authChallenge, userName);
  return `S=${Buffer.from(digest).toString('hex').toUpperCase()}`;
}

/**
 * CheckAuthenticatorResponse (RFC 2759 §8.8), run by the peer on the Success packet. `received`
 * is exactly the "S=" + 40 hex digits part of the message (hex case is not significant). The
 * digests are compared in constant time; a malformed `received` is simply false.
 */
export function checkAuthenticatorResponse(
  passwordHash: Uint8Array,
  ntResponse: Uint8Array,
  peerChallenge: Uint8Array,
  authChallenge: Uint8Array,
  userName: string | Uint8Array,
  received: string,
): boolean {
  if (!/^S=[0-9A-Fa-f]{40}$/.test(received)) return false;
  const expected = authenticatorDigest(passwordHash, ntResponse, peerChallenge, authChallenge, userName);
  return timingSafeEqual(expected, Buffer.from(received.slice(2), 'hex'));
}

/** NtChallengeResponse of MS-CHAPv1 (RFC 2433 §A.1): ChallengeResponse over the 8-octet challenge. */
export function ntChallengeResponseV1(challenge8: Uint8Array, passwordHash: Uint8Array): Uint8Array {
  return challengeResponse(challenge8, passwordHash);
}
