/**
 * MPPE key derivation (RFC 3079) and the key-change step shared with the data path (RFC 3078 §7).
 *
 * Orientation: RFC 3079 §3.3 derives two start keys from the MS-CHAPv2 master key with two magic
 * strings. Magic3 ("...on the server side, it is the send key") yields the SERVER's send key,
 * which is the client's receive key; RFC 3079 §3.5 prints that one as "SendStartKey". A
 * `MppeKeySource` returned here is already oriented for the given role.
 */
import { hashNtPasswordHash } from '../../crypto/mschap.ts';
import { Rc4 } from '../../crypto/rc4.ts';
import { sha1Parts as sha1 } from '../../crypto/sha1.ts';
import type { MppeBits, MppeKeySource } from './types.ts';

export type MppeRole = 'server' | 'client';

/** RFC 3079 §3.4 Magic1: "This is the MPPE Master Key" (27 octets). */
const MAGIC_MASTER = Buffer.from('This is the MPPE Master Key', 'ascii');
/** RFC 3079 §3.4 Magic2 (84 octets): the client's send key, the server's receive key. */
const MAGIC_CLIENT_SEND = Buffer.from(
  'On the client side, this is the send key; on the server side, it is the receive key.',
  'ascii',
);
/** RFC 3079 §3.4 Magic3 (84 octets): the client's receive key, the server's send key. */
const MAGIC_SERVER_SEND = Buffer.from(
  'On the client side, this is the receive key; on the server side, it is the send key.',
  'ascii',
);

/** RFC 3079 §3.4 / RFC 3078 §7.3 SHApad1 (40 × 0x00) and SHApad2 (40 × 0xF2). */
export const SHA_PAD1: Uint8Array = new Uint8Array(40);
export const SHA_PAD2: Uint8Array = new Uint8Array(40).fill(0xf2);

/** Session key length in octets for a strength: 8 for 40/56-bit, 16 for 128-bit (RFC 3079 §3.1-3.3). */
export function keyLength(bits: MppeBits): 8 | 16 {
  return bits === 128 ? 16 : 8;
}

/** GetMasterKey (RFC 3079 §3.4): first 16 octets of SHA-1(PasswordHashHash ‖ NT-Response ‖ Magic1). */
export function getMasterKey(passwordHashHash: Uint8Array, ntResponse: Uint8Array): Uint8Array {
  return new Uint8Array(sha1(passwordHashHash, ntResponse, MAGIC_MASTER).subarray(0, 16));
}

/**
 * GetAsymmetricStartKey (RFC 3079 §3.4): SHA-1(MasterKey ‖ SHSpad1 ‖ Magic ‖ SHSpad2) cut to
 * `length` octets (8 for 40/56-bit, 16 for 128-bit). The server's send key and the client's
 * receive key use Magic3; the other direction uses Magic2.
 */
export function getAsymmetricStartKey(
  masterKey: Uint8Array,
  length: number,
  isSend: boolean,
  isServer: boolean,
): Uint8Array {
  const magic = isSend === isServer ? MAGIC_SERVER_SEND : MAGIC_CLIENT_SEND;
  return new Uint8Array(sha1(masterKey, SHA_PAD1, magic, SHA_PAD2).subarray(0, length));
}

/**
 * GetNewKeyFromSHA (RFC 3079 §3.4, RFC 3078 §7.3): the first `length` octets of
 * SHA-1(StartKey[0..length] ‖ SHApad1 ‖ SessionKey[0..length] ‖ SHApad2).
 */
export function getNewKeyFromSha(startKey: Uint8Array, sessionKey: Uint8Array, length: number): Uint8Array {
  const digest = sha1(startKey.subarray(0, length), SHA_PAD1, sessionKey.subarray(0, length), SHA_PAD2);
  return new Uint8Array(digest.subarray(0, length));
}

/**
 * Weaken an 8-octet key to its nominal strength, in place (RFC 3079 §3.1, §3.2; RFC 3078 §7.2):
 * 40-bit sets the first three octets to D1 26 9E, 56-bit the first octet to D1; 128-bit keys are
 * left alone. Returns `key`.
 */
export function reduceSessionKey(key: Uint8Array, bits: MppeBits): Uint8Array {
  if (bits === 40) {
    key[0] = 0xd1;
    key[1] = 0x26;
    key[2] = 0x9e;
  } else if (bits === 56) {
    key[0] = 0xd1;
  }
  return key;
}

/**
 * The initial session key for one direction (RFC 3079 §3.1-3.3): GetNewKeyFromSHA(StartKey,
 * StartKey), then reduced for 40/56-bit. Unlike later key changes it is not run through RC4.
 */
export function initialSessionKey(startKey: Uint8Array, bits: MppeBits): Uint8Array {
  const len = keyLength(bits);
  return reduceSessionKey(getNewKeyFromSha(startKey, startKey, len), bits);
}

/**
 * One key change (RFC 3078 §7.3): interim = GetNewKeyFromSHA(StartKey, SessionKey); the new key is
 * the interim key encrypted with RC4 keyed by itself, then reduced for 40/56-bit.
 */
export function changeSessionKey(startKey: Uint8Array, sessionKey: Uint8Array, bits: MppeBits): Uint8Array {
  const interim = getNewKeyFromSha(startKey, sessionKey, keyLength(bits));
  return reduceSessionKey(new Rc4(interim).process(interim), bits);
}

/**
 * A key source over two 16-octet start keys already oriented for this side (e.g. RADIUS
 * MS-MPPE-Send-Key / MS-MPPE-Recv-Key, RFC 2548 §2.4.2-2.4.3); 40/56-bit use their first 8 octets.
 */
export function mppeKeysFromStartKeys(send16: Uint8Array, recv16: Uint8Array): MppeKeySource {
  if (send16.length < 16 || recv16.length < 16) throw new RangeError('MPPE start keys must be 16 octets');
  const send = send16.slice(0, 16);
  const recv = recv16.slice(0, 16);
  return {
    startKeys(bits: MppeBits) {
      const len = keyLength(bits);
      return { send: send.slice(0, len), recv: recv.slice(0, len) };
    },
  };
}

/**
 * MPPE keys from MS-CHAPv2 (RFC 3079 §3): MasterKey from the password hash hash and the 24-octet
 * NT-Response, then one start key per direction, oriented for `role`. `hash` is the NT password
 * hash (16 octets), or `{ passwordHashHash }` when only MD4(NT hash) is known.
 */
export function mppeKeysFromMschapV2(
  hash: Uint8Array | { passwordHashHash: Uint8Array },
  ntResponse: Uint8Array,
  role: MppeRole,
): MppeKeySource {
  const hashHash = hash instanceof Uint8Array ? hashNtPasswordHash(hash) : hash.passwordHashHash;
  const master = getMasterKey(hashHash, ntResponse);
  const isServer = role === 'server';
  return mppeKeysFromStartKeys(
    getAsymmetricStartKey(master, 16, true, isServer),
    getAsymmetricStartKey(master, 16, false, isServer),
  );
}

/**
 * MPPE keys from MS-CHAPv1 (RFC 3079 §2.3-2.4, Get_Start_Key): the first 16 octets of
 * SHA-1(NtPasswordHashHash ‖ NtPasswordHashHash ‖ Challenge), where Challenge is the
 * authenticator's 8-octet challenge. The same key serves both directions, so `role` does not
 * change the result. 40/56-bit use its first 8 octets, as pppd and the Linux and BSD kernels do;
 * RFC 3079 §2.1-2.2 instead derive 40/56-bit keys from the LAN Manager hash, which is not kept.
 * `hash` is the NT password hash (16 octets), or `{ passwordHashHash }` when only MD4(NT hash) is
 * known (RADIUS MS-CHAP-MPPE-Keys).
 */
export function mppeKeysFromMschapV1(
  hash: Uint8Array | { passwordHashHash: Uint8Array },
  challenge8: Uint8Array,
  _role?: MppeRole,
): MppeKeySource {
  if (challenge8.length !== 8) throw new RangeError('MS-CHAPv1 challenge must be 8 octets');
  const hashHash = hash instanceof Uint8Array ? hashNtPasswordHash(hash) : hash.passwordHashHash;
  const key = new Uint8Array(sha1(hashHash, hashHash, challenge8).subarray(0, 16));
  return mppeKeysFromStartKeys(key, key);
}
