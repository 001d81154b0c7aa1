import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { extend } from '../../util/objects.ts';
import { ByteReader, ByteWriter } from '../../wire/bytes.ts';
import { ProtocolError } from '../../wire/errors.ts';
import {
  Attr,
  attributeName,
  CODE_NAMES,
  codeName,
  HASHED_REQUEST_CODES,
  RANDOM_AUTHENTICATOR_CODES,
  RESPONSE_CODES,
  SUB_ATTRIBUTE_VENDORS,
} from './dictionary.ts';

/**
 * The RADIUS packet codec (RFC 2865 §3-5, RFC 2866, RFC 3579 §3.2, RFC 5176 §3), strict:
 *
 *   Code(1) Identifier(1) Length(2) Authenticator(16) Attributes...
 *   Attribute: Type(1) Length(1, >= 2) Value(Length - 2)
 *   Vendor-Specific (26): Vendor-Id(4) then, for Microsoft (311, RFC 2548) and MikroTik (14988),
 *   sub-attributes Vendor-Type(1) Vendor-Length(1, >= 2) Value.
 *
 * Decoding throws ProtocolError('radius', ...) and nothing else for bad input: a Length below 20
 * or above 4096, bytes missing for the Length, an attribute running past the end or shorter than
 * its header, a malformed Microsoft or MikroTik VSA, a Message-Authenticator that is not 16 octets or appears
 * twice, an unknown code. Octets after Length are padding and ignored (RFC 2865 §3).
 *
 * Vendor-specific attributes of Microsoft and MikroTik are decoded into one attribute per
 * sub-attribute with `vendor` set (311, 14988); those of other vendors stay as one raw
 * Vendor-Specific attribute.
 */

export const RADIUS_HEADER_LENGTH = 20;
export const RADIUS_MAX_PACKET = 4096;
export const RADIUS_AUTHENTICATOR_LENGTH = 16;
/** The longest value a standard attribute carries (Length is one octet, header 2). */
export const RADIUS_MAX_VALUE = 253;
/** The longest value of a vendor sub-attribute inside one Vendor-Specific attribute. */
export const RADIUS_MAX_VSA_VALUE = RADIUS_MAX_VALUE - 4 - 2;

export interface RadiusAttribute {
  type: number;
  value: Uint8Array;
  /** Set for a vendor sub-attribute (Microsoft 311, MikroTik 14988): `type` is then the Vendor-Type. */
  vendor?: number;
}

export interface RadiusPacket {
  code: number;
  id: number;
  authenticator: Uint8Array;
  attributes: RadiusAttribute[];
}

const fail = (code: 'TRUNCATED' | 'BAD_LENGTH' | 'BAD_FIELD' | 'UNKNOWN_TYPE' | 'TOO_LARGE', msg: string) =>
  new ProtocolError('radius', code, msg);

/** Decode one RADIUS packet from a UDP datagram. */
export function decodeRadiusPacket(bytes: Uint8Array): RadiusPacket {
  const r = new ByteReader(bytes, 'radius');
  const code = r.u8('Code');
  const id = r.u8('Identifier');
  const length = r.u16('Length');
  if (length < RADIUS_HEADER_LENGTH) {
    throw fail('BAD_LENGTH', `Length ${length} is below the ${RADIUS_HEADER_LENGTH}-octet header`);
  }
  if (length > RADIUS_MAX_PACKET) {
    throw fail('TOO_LARGE', `Length ${length} is above the ${RADIUS_MAX_PACKET}-octet maximum`);
  }
  if (bytes.length < length) {
    throw fail('TRUNCATED', `datagram of ${bytes.length} octets is shorter than its Length ${length}`);
  }
  if (!(code in CODE_NAMES)) throw fail('UNKNOWN_TYPE', `unknown code ${code}`);
  const authenticator = r.bytesView(RADIUS_AUTHENTICATOR_LENGTH, 'Authenticator').slice();
  const attributes = decodeAttributes(bytes.subarray(RADIUS_HEADER_LENGTH, length));
  return { code, id, authenticator, attributes };
}

function decodeAttributes(bytes: Uint8Array): RadiusAttribute[] {
  const out: RadiusAttribute[] = [];
  const r = new ByteReader(bytes, 'radius');
  let messageAuthenticators = 0;
  while (r.remaining > 0) {
    const type = r.u8('attribute Type');
    const len = r.u8(`Length of attribute ${attributeName(type)}`);
    if (len < 2) throw fail('BAD_LENGTH', `attribute ${attributeName(type)} has Length ${len} (at least 2)`);
    const value = r.bytesView(len - 2, `value of attribute ${attributeName(type)}`).slice();
    if (type === Attr.MessageAuthenticator) {
      if (value.length !== RADIUS_AUTHENTICATOR_LENGTH) {
        throw fail('BAD_FIELD', `Message-Authenticator of ${value.length} octets (must be 16)`);
      }
      if (++messageAuthenticators > 1) throw fail('BAD_FIELD', 'more than one Message-Authenticator');
    }
    if (type === Attr.VendorSpecific) out.push(...decodeVendorSpecific(value));
    else out.push({ type, value });
  }
  return out;
}

function decodeVendorSpecific(value: Uint8Array): RadiusAttribute[] {
  if (value.length < 5) {
    throw fail('BAD_LENGTH', `Vendor-Specific of ${value.length} octets (at least a Vendor-Id and 1 octet)`);
  }
  const r = new ByteReader(value, 'radius');
  const vendor = r.u32('Vendor-Id');
  if (!SUB_ATTRIBUTE_VENDORS.has(vendor)) return [{ type: Attr.VendorSpecific, value }];
  const out: RadiusAttribute[] = [];
  while (r.remaining > 0) {
    const type = r.u8('Vendor-Type');
    const len = r.u8(`Vendor-Length of ${attributeName(type, vendor)}`);
    if (len < 2) {
      throw fail('BAD_LENGTH', `${attributeName(type, vendor)} has Vendor-Length ${len} (at least 2)`);
    }
    const v = r.bytesView(len - 2, `value of ${attributeName(type, vendor)}`).slice();
    out.push({ type, value: v, vendor });
  }
  return out;
}

/**
 * Encode a packet with the authenticator as given (no signing: see signRadiusPacket). Each
 * vendor sub-attribute goes into its own Vendor-Specific attribute. Throws RangeError for values
 * too long for their attribute or a packet over 4096 octets (a caller's mistake, not input).
 */
export function encodeRadiusPacket(p: RadiusPacket): Uint8Array {
  if (p.authenticator.length !== RADIUS_AUTHENTICATOR_LENGTH) {
    throw new RangeError('the Authenticator must be 16 octets');
  }
  const w = new ByteWriter(256);
  w.u8(p.code).u8(p.id).u16(0).bytes(p.authenticator);
  for (const a of p.attributes) encodeAttribute(w, a);
  if (w.length > RADIUS_MAX_PACKET) {
    throw new RangeError(`${codeName(p.code)} of ${w.length} octets exceeds ${RADIUS_MAX_PACKET}`);
  }
  w.patchU16(2, w.length);
  return w.finish();
}

function encodeAttribute(w: ByteWriter, a: RadiusAttribute): void {
  if (a.vendor === undefined) {
    if (a.value.length > RADIUS_MAX_VALUE) {
      throw new RangeError(
        `${attributeName(a.type)} of ${a.value.length} octets (at most ${RADIUS_MAX_VALUE})`,
      );
    }
    w.u8(a.type)
      .u8(a.value.length + 2)
      .bytes(a.value);
    return;
  }
  if (a.value.length > RADIUS_MAX_VSA_VALUE) {
    throw new RangeError(
      `${attributeName(a.type, a.vendor)} of ${a.value.length} octets (at most ${RADIUS_MAX_VSA_VALUE})`,
    );
  }
  w.u8(Attr.VendorSpecific)
    .u8(a.value.length + 8)
    .u32(a.vendor);
  w.u8(a.type)
    .u8(a.value.length + 2)
    .bytes(a.value);
}

// ---- authenticators and Message-Authenticator ----

const ZERO16 = new Uint8Array(RADIUS_AUTHENTICATOR_LENGTH);

function md5(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function hmacMd5(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('md5', key).update(data).digest());
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Offset of the Message-Authenticator value in an encoded packet, or -1. */
export function findMessageAuthenticator(bytes: Uint8Array): number {
  const length = Math.min(bytes.length, ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0));
  let at = RADIUS_HEADER_LENGTH;
  while (at + 2 <= length) {
    const len = bytes[at + 1]!;
    if (len < 2) return -1;
    if (bytes[at] === Attr.MessageAuthenticator && len === 18) return at + 2;
    at += len;
  }
  return -1;
}

export interface SignOptions {
  /** For replies: the Request Authenticator of the request being answered. */
  requestAuthenticator?: Uint8Array;
  /** Add a Message-Authenticator (as the first attribute) and compute it (RFC 3579 §3.2). */
  messageAuthenticator?: boolean;
}

/**
 * Encode and sign: the Message-Authenticator (when asked for) is HMAC-MD5 keyed with the secret
 * over the packet with its own value zeroed and, in the Authenticator field, the Request
 * Authenticator (Access-Request, Status-Server: the packet's own random one; replies: the
 * request's; Accounting, Disconnect and CoA requests: 16 zeros, RFC 5176 §3.3). Then the
 * Authenticator: kept (random requests), MD5(packet with zeros ‖ secret) for hashed requests
 * (RFC 2866 §3, RFC 5176 §2.3), MD5(packet with the Request Authenticator ‖ secret) for replies
 * (RFC 2865 §3).
 */
export function signRadiusPacket(p: RadiusPacket, secret: Uint8Array, opts: SignOptions = {}): Uint8Array {
  const attributes = opts.messageAuthenticator
    ? [
        { type: Attr.MessageAuthenticator, value: new Uint8Array(16) },
        ...p.attributes.filter((a) => a.type !== Attr.MessageAuthenticator || a.vendor !== undefined),
      ]
    : p.attributes;
  let signingAuthenticator: Uint8Array;
  if (RANDOM_AUTHENTICATOR_CODES.has(p.code)) signingAuthenticator = p.authenticator;
  else if (HASHED_REQUEST_CODES.has(p.code)) signingAuthenticator = ZERO16;
  else if (RESPONSE_CODES.has(p.code)) {
    if (!opts.requestAuthenticator)
      throw new RangeError(`${codeName(p.code)} needs the request's authenticator`);
    signingAuthenticator = opts.requestAuthenticator;
  } else throw new RangeError(`cannot sign ${codeName(p.code)}`);
  const bytes = encodeRadiusPacket(extend(p, { authenticator: signingAuthenticator, attributes }));
  const ma = findMessageAuthenticator(bytes);
  if (opts.messageAuthenticator && ma >= 0) bytes.set(hmacMd5(secret, bytes), ma);
  if (!RANDOM_AUTHENTICATOR_CODES.has(p.code)) bytes.set(md5(bytes, secret), 4);
  return bytes;
}

/**
 * Check a reply against the request it answers: the Response Authenticator (RFC 2865 §3), and
 * the Message-Authenticator when present (RFC 3579 §3.2) or `requireMessageAuthenticator`
 * (BlastRADIUS: a reply without one is refused). Returns the problem in words, or undefined.
 */
export function verifyRadiusResponse(
  bytes: Uint8Array,
  requestAuthenticator: Uint8Array,
  secret: Uint8Array,
  opts: { requireMessageAuthenticator?: boolean } = {},
): string | undefined {
  const length = ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0);
  const copy = bytes.slice(0, length);
  const got = copy.slice(4, 20);
  copy.set(requestAuthenticator, 4);
  if (!equal(md5(copy, secret), got)) {
    return 'its Response Authenticator is wrong (is the shared secret the same on both sides?)';
  }
  return checkMessageAuthenticator(copy, secret, opts.requireMessageAuthenticator ?? false);
}

/**
 * Check a request we received (Accounting, Disconnect, CoA: the hashed Request Authenticator;
 * Access-Request and Status-Server: only the Message-Authenticator can be checked).
 */
export function verifyRadiusRequest(
  bytes: Uint8Array,
  secret: Uint8Array,
  opts: { requireMessageAuthenticator?: boolean } = {},
): string | undefined {
  const length = ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0);
  const copy = bytes.slice(0, length);
  const code = copy[0]!;
  if (HASHED_REQUEST_CODES.has(code)) {
    const got = copy.slice(4, 20);
    copy.set(ZERO16, 4);
    if (!equal(md5(copy, secret), got)) {
      return 'its Request Authenticator is wrong (is the shared secret the same on both sides?)';
    }
  } else if (!RANDOM_AUTHENTICATOR_CODES.has(code)) return `${codeName(code)} is not a request`;
  return checkMessageAuthenticator(copy, secret, opts.requireMessageAuthenticator ?? false);
}

/** `copy` has the authenticator used for signing in place already. */
function checkMessageAuthenticator(
  copy: Uint8Array,
  secret: Uint8Array,
  required: boolean,
): string | undefined {
  const at = findMessageAuthenticator(copy);
  if (at < 0) return required ? 'it has no Message-Authenticator, which is required' : undefined;
  const got = copy.slice(at, at + 16);
  copy.fill(0, at, at + 16);
  return equal(hmacMd5(secret, copy), got)
    ? undefined
    : 'its Message-Authenticator is wrong (is the shared secret the same on both sides?)';
}

// ---- hidden values ----

/**
 * User-Password hiding (RFC 2865 §5.2): the password, padded with zeros to a multiple of 16
 * (1 to 128 octets), XORed block by block with MD5(secret ‖ previous ciphertext block), the first
 * block using the Request Authenticator. Also MS-CHAP-MPPE-Keys (RFC 2548 §2.4.1).
 */
export function hideUserPassword(
  password: Uint8Array,
  secret: Uint8Array,
  requestAuthenticator: Uint8Array,
): Uint8Array {
  if (password.length > 128) throw new RangeError('a User-Password has at most 128 octets');
  const padded = new Uint8Array(Math.max(16, Math.ceil(password.length / 16) * 16));
  padded.set(password);
  return xorChain(padded, secret, requestAuthenticator, 'encrypt');
}

/** The clear value of a hidden User-Password, trailing zero padding removed. */
export function revealUserPassword(
  hidden: Uint8Array,
  secret: Uint8Array,
  requestAuthenticator: Uint8Array,
): Uint8Array {
  if (hidden.length < 16 || hidden.length > 128 || hidden.length % 16 !== 0) {
    throw fail('BAD_FIELD', `hidden User-Password of ${hidden.length} octets (16 to 128, a multiple of 16)`);
  }
  const plain = xorChain(hidden, secret, requestAuthenticator, 'decrypt');
  let end = plain.length;
  while (end > 0 && plain[end - 1] === 0) end--;
  return plain.slice(0, end);
}

/**
 * The clear octets of a value hidden like a User-Password, padding kept (MS-CHAP-MPPE-Keys,
 * RFC 2548 §2.4.1).
 */
export function revealHidden(
  hidden: Uint8Array,
  secret: Uint8Array,
  requestAuthenticator: Uint8Array,
): Uint8Array {
  if (hidden.length < 16 || hidden.length % 16 !== 0) {
    throw fail('BAD_FIELD', `hidden value of ${hidden.length} octets (a multiple of 16)`);
  }
  return xorChain(hidden, secret, requestAuthenticator, 'decrypt');
}

/** The 16-octet chain shared by User-Password and the salted attributes. */
function xorChain(
  input: Uint8Array,
  secret: Uint8Array,
  first: Uint8Array,
  direction: 'encrypt' | 'decrypt',
): Uint8Array {
  const out = new Uint8Array(input.length);
  let prev = first;
  for (let i = 0; i < input.length; i += 16) {
    const b = md5(secret, prev);
    for (let j = 0; j < 16; j++) out[i + j] = input[i + j]! ^ b[j]!;
    prev = direction === 'encrypt' ? out.subarray(i, i + 16) : input.subarray(i, i + 16);
  }
  return out;
}

/**
 * Salt-encryption of MS-MPPE-Send-Key / MS-MPPE-Recv-Key (RFC 2548 §2.4.2-2.4.3): the value is
 * Salt(2, high bit set) ‖ String, where the plaintext Key-Length(1) ‖ Key ‖ zero padding (to a
 * multiple of 16) is XORed with b(1) = MD5(secret ‖ Request Authenticator ‖ Salt),
 * b(i) = MD5(secret ‖ c(i-1)).
 */
export function saltEncrypt(
  key: Uint8Array,
  secret: Uint8Array,
  requestAuthenticator: Uint8Array,
  salt: Uint8Array,
): Uint8Array {
  if (salt.length !== 2 || (salt[0]! & 0x80) === 0)
    throw new RangeError('the salt is 2 octets, high bit set');
  if (key.length > 255) throw new RangeError('a salted key has at most 255 octets');
  const plain = new Uint8Array(Math.ceil((key.length + 1) / 16) * 16);
  plain[0] = key.length;
  plain.set(key, 1);
  const first = md5Concat(requestAuthenticator, salt);
  const out = new Uint8Array(2 + plain.length);
  out.set(salt);
  out.set(xorChain(plain, secret, first, 'encrypt'), 2);
  return out;
}

/** The key of a salt-encrypted value; ProtocolError('radius', 'BAD_FIELD') when it is malformed. */
export function saltDecrypt(
  value: Uint8Array,
  secret: Uint8Array,
  requestAuthenticator: Uint8Array,
): Uint8Array {
  if (value.length < 18 || (value.length - 2) % 16 !== 0) {
    throw fail('BAD_FIELD', `salt-encrypted value of ${value.length} octets (2 + a multiple of 16)`);
  }
  const salt = value.subarray(0, 2);
  if ((salt[0]! & 0x80) === 0) throw fail('BAD_FIELD', 'salt without its high bit set');
  const plain = xorChain(value.subarray(2), secret, md5Concat(requestAuthenticator, salt), 'decrypt');
  const keyLength = plain[0]!;
  if (keyLength > plain.length - 1) {
    throw fail(
      'BAD_FIELD',
      `salt-encrypted Key-Length ${keyLength} exceeds the ${plain.length - 1} octets carried`,
    );
  }
  return plain.slice(1, 1 + keyLength);
}

/**
 * xorChain's first block key is MD5(secret ‖ first); for salted values `first` must be
 * Request Authenticator ‖ Salt, i.e. the concatenation.
 */
function md5Concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

// ---- attribute helpers ----

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

export function textAttr(type: number, text: string, vendor?: number): RadiusAttribute {
  return vendor === undefined
    ? { type, value: utf8.encode(text) }
    : { type, value: utf8.encode(text), vendor };
}

export function u32Attr(type: number, n: number, vendor?: number): RadiusAttribute {
  const value = new Uint8Array(4);
  new DataView(value.buffer).setUint32(0, n >>> 0);
  return vendor === undefined ? { type, value } : { type, value, vendor };
}

export function bytesAttr(type: number, value: Uint8Array, vendor?: number): RadiusAttribute {
  return vendor === undefined ? { type, value } : { type, value, vendor };
}

/** The first attribute of `type` (and `vendor`), or undefined. */
export function findAttr(
  attrs: readonly RadiusAttribute[],
  type: number,
  vendor?: number,
): RadiusAttribute | undefined {
  return attrs.find((a) => a.type === type && a.vendor === vendor);
}

export function findAllAttrs(
  attrs: readonly RadiusAttribute[],
  type: number,
  vendor?: number,
): RadiusAttribute[] {
  return attrs.filter((a) => a.type === type && a.vendor === vendor);
}

export function attrText(a: RadiusAttribute): string {
  return utf8Decoder.decode(a.value);
}

/** A 4-octet integer or address value; ProtocolError('radius','BAD_FIELD') for another length. */
export function attrU32(a: RadiusAttribute): number {
  if (a.value.length !== 4) {
    throw fail('BAD_FIELD', `${attributeName(a.type, a.vendor)} of ${a.value.length} octets (must be 4)`);
  }
  return new DataView(a.value.buffer, a.value.byteOffset, 4).getUint32(0);
}
