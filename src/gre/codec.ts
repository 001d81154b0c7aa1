import { ProtocolError, type ProtocolErrorCode } from '../wire/errors.ts';

/**
 * The enhanced GRE header that carries PPTP user data (RFC 2637 §4.1):
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |C|R|K|S|s|Recur|A| Flags | Ver |         Protocol Type         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |    Key (HW) Payload Length    |       Key (LW) Call ID        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                  Sequence Number (Optional)                   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |               Acknowledgment Number (Optional)                |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * The codec works at fixed offsets on the caller's bytes (this is the data path): one length
 * check, then direct reads; the only allocation is the decoded result.
 */

/** Protocol Type for PPP (RFC 2637 §4.1). */
export const GRE_PROTO_PPP = 0x880b;
/** Version 1: "enhanced GRE" (plain GRE is version 0). */
export const GRE_VERSION_ENHANCED = 1;

/** Masks over the first 16 bits (octets 0 and 1) of the header. */
export const GRE_FLAG_CHECKSUM = 0x8000; // C: must be 0
export const GRE_FLAG_ROUTING = 0x4000; // R: must be 0
export const GRE_FLAG_KEY = 0x2000; // K: must be 1
export const GRE_FLAG_SEQ = 0x1000; // S: sequence number present (data packets)
export const GRE_FLAG_STRICT_ROUTE = 0x0800; // s: must be 0
export const GRE_RECUR_MASK = 0x0700; // Recur: must be 0
export const GRE_FLAG_ACK = 0x0080; // A: acknowledgment number present
export const GRE_FLAGS_RESERVED_MASK = 0x0078; // Flags: sent as 0, ignored on receipt
export const GRE_VERSION_MASK = 0x0007;

/** Header sizes: no optional field, one of S/A, both. */
export const GRE_HEADER_LENGTH_MIN = 8;
export const GRE_HEADER_LENGTH_ONE = 12;
export const GRE_HEADER_LENGTH_MAX = 16;

export const GRE_OFFSET_FLAGS = 0;
export const GRE_OFFSET_PROTOCOL = 2;
export const GRE_OFFSET_PAYLOAD_LENGTH = 4;
export const GRE_OFFSET_CALL_ID = 6;
export const GRE_OFFSET_OPTIONAL = 8;

/** Why a packet was rejected: stable strings, fit for counters and logs. */
export type GreDropReason =
  | 'truncated-header'
  | 'checksum-present'
  | 'routing-present'
  | 'strict-source-route'
  | 'recursion'
  | 'key-absent'
  | 'bad-version'
  | 'bad-protocol'
  | 'payload-truncated';

/** A header the codec refused; `reason` is the counter key, `code` the generic ProtocolError code. */
export class GreHeaderError extends ProtocolError {
  readonly reason: GreDropReason;
  constructor(reason: GreDropReason, code: ProtocolErrorCode, message: string) {
    super('gre', code, message);
    this.name = 'GreHeaderError';
    this.reason = reason;
  }
}

export interface GreHeader {
  /** Our call id (the receiver's): the key's low 16 bits, used to demultiplex. */
  callId: number;
  /** Bytes of payload that follow the header (extra bytes after it are ignored). */
  payloadLength: number;
  /** Present on data packets (S bit). */
  seq: number | undefined;
  /** Highest sequence number the sender has received from us (A bit). */
  ack: number | undefined;
  /** 8, 12 or 16: the payload starts at `offset + headerLength`. */
  headerLength: number;
}

export interface GreHeaderFields {
  /** The peer's call id (goes in the key). */
  callId: number;
  payloadLength: number;
  seq?: number | undefined;
  ack?: number | undefined;
}

/** The header length for a packet with/without a sequence and an acknowledgment number. */
export function greHeaderLength(hasSeq: boolean, hasAck: boolean): number {
  return GRE_HEADER_LENGTH_MIN + (hasSeq ? 4 : 0) + (hasAck ? 4 : 0);
}

function fail(reason: GreDropReason, code: ProtocolErrorCode, message: string): never {
  throw new GreHeaderError(reason, code, message);
}

function u16At(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

function putU16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v;
}

function u32At(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** Each GreDropReason in words, for logs ("dropped GRE packet: <words>"). */
export const GRE_DROP_WORDS: Readonly<Record<GreDropReason, string>> = {
  'truncated-header': 'shorter than its GRE header',
  'checksum-present': 'GRE checksum bit (C) set',
  'routing-present': 'GRE routing bit (R) set',
  'strict-source-route': 'GRE strict source route bit (s) set',
  recursion: 'GRE recursion control not zero',
  'key-absent': 'GRE key bit (K) clear',
  'bad-version': 'GRE version is not 1 (enhanced GRE)',
  'bad-protocol': 'GRE protocol type is not PPP (0x880b)',
  'payload-truncated': 'GRE payload length beyond the bytes received',
};

/**
 * Decode the enhanced GRE header at `offset` without throwing: the header, or the reason the
 * packet is refused (a string; `typeof result === 'string'` tells them apart). Strict per RFC
 * 2637 §4.1: C, R, s and Recur must be zero, K must be set, Ver must be 1 and Protocol Type
 * 0x880B; the header and the payload length it announces must fit in the bytes present. The
 * reserved Flags bits are ignored. The data path's decoder: no exception, no allocation on refusal.
 */
export function readGreHeader(packet: Uint8Array, offset = 0): GreHeader | GreDropReason {
  const avail = packet.length - offset;
  if (!(offset >= 0) || avail < GRE_HEADER_LENGTH_MIN) return 'truncated-header';
  const flags = u16At(packet, offset + GRE_OFFSET_FLAGS);
  if (flags & GRE_FLAG_CHECKSUM) return 'checksum-present';
  if (flags & GRE_FLAG_ROUTING) return 'routing-present';
  if (flags & GRE_FLAG_STRICT_ROUTE) return 'strict-source-route';
  if (flags & GRE_RECUR_MASK) return 'recursion';
  if (!(flags & GRE_FLAG_KEY)) return 'key-absent';
  if ((flags & GRE_VERSION_MASK) !== GRE_VERSION_ENHANCED) return 'bad-version';
  if (u16At(packet, offset + GRE_OFFSET_PROTOCOL) !== GRE_PROTO_PPP) return 'bad-protocol';
  const hasSeq = (flags & GRE_FLAG_SEQ) !== 0;
  const hasAck = (flags & GRE_FLAG_ACK) !== 0;
  const headerLength = greHeaderLength(hasSeq, hasAck);
  if (avail < headerLength) return 'truncated-header';
  const payloadLength = u16At(packet, offset + GRE_OFFSET_PAYLOAD_LENGTH);
  if (payloadLength > avail - headerLength) return 'payload-truncated';
  const callId = u16At(packet, offset + GRE_OFFSET_CALL_ID);
  let at = offset + GRE_OFFSET_OPTIONAL;
  let seq: number | undefined;
  if (hasSeq) {
    seq = u32At(packet, at);
    at += 4;
  }
  const ack = hasAck ? u32At(packet, at) : undefined;
  return { callId, payloadLength, seq, ack, headerLength };
}

/**
 * Decode the enhanced GRE header at `offset` (the rules of readGreHeader). Throws GreHeaderError
 * (a ProtocolError, layer 'gre') with a distinct `reason` for each rejection and the offending
 * value in its message.
 */
export function decodeGreHeader(packet: Uint8Array, offset = 0): GreHeader {
  const r = readGreHeader(packet, offset);
  if (typeof r !== 'string') return r;
  const avail = packet.length - offset;
  const flags = avail >= 2 ? u16At(packet, offset + GRE_OFFSET_FLAGS) : 0;
  switch (r) {
    case 'truncated-header': {
      const need = avail < GRE_HEADER_LENGTH_MIN ? GRE_HEADER_LENGTH_MIN : headerLengthOf(flags);
      return fail(r, 'TRUNCATED', `header needs ${need} bytes, have ${avail}`);
    }
    case 'checksum-present':
      return fail(r, 'BAD_FIELD', 'checksum bit (C) set');
    case 'routing-present':
      return fail(r, 'BAD_FIELD', 'routing bit (R) set');
    case 'strict-source-route':
      return fail(r, 'BAD_FIELD', 'strict source route bit (s) set');
    case 'recursion':
      return fail(r, 'BAD_FIELD', `recursion control ${(flags & GRE_RECUR_MASK) >> 8} != 0`);
    case 'key-absent':
      return fail(r, 'BAD_FIELD', 'key bit (K) clear');
    case 'bad-version':
      return fail(r, 'BAD_VERSION', `version ${flags & GRE_VERSION_MASK} != 1`);
    case 'bad-protocol': {
      const protocol = u16At(packet, offset + GRE_OFFSET_PROTOCOL);
      return fail(r, 'UNKNOWN_TYPE', `protocol type 0x${protocol.toString(16).padStart(4, '0')} != 0x880b`);
    }
    case 'payload-truncated': {
      const room = avail - headerLengthOf(flags);
      const payloadLength = u16At(packet, offset + GRE_OFFSET_PAYLOAD_LENGTH);
      return fail(r, 'BAD_LENGTH', `payload length ${payloadLength} > ${room} bytes present`);
    }
  }
}

function headerLengthOf(flags: number): number {
  return greHeaderLength((flags & GRE_FLAG_SEQ) !== 0, (flags & GRE_FLAG_ACK) !== 0);
}

function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

/**
 * Write an enhanced GRE header into `buf` at `offset` and return its length (8, 12 or 16).
 * S is set iff `seq` is given, A iff `ack` is given; the Flags bits are written as zero.
 * Throws RangeError (a programming error, not bad input) if a field is out of range or `buf`
 * is too small.
 */
export function encodeGreHeader(buf: Uint8Array, offset: number, fields: GreHeaderFields): number {
  const { callId, payloadLength, seq, ack } = fields;
  const length = greHeaderLength(seq !== undefined, ack !== undefined);
  if (offset < 0 || offset + length > buf.length) {
    throw new RangeError(`GRE header of ${length} bytes does not fit at ${offset} in ${buf.length} bytes`);
  }
  if (!(callId >= 0 && callId <= 0xffff) || !(payloadLength >= 0 && payloadLength <= 0xffff)) {
    throw new RangeError(`GRE call id ${callId} or payload length ${payloadLength} out of 16-bit range`);
  }
  let flags = GRE_FLAG_KEY | GRE_VERSION_ENHANCED;
  if (seq !== undefined) flags |= GRE_FLAG_SEQ;
  if (ack !== undefined) flags |= GRE_FLAG_ACK;
  putU16(buf, offset + GRE_OFFSET_FLAGS, flags);
  putU16(buf, offset + GRE_OFFSET_PROTOCOL, GRE_PROTO_PPP);
  putU16(buf, offset + GRE_OFFSET_PAYLOAD_LENGTH, payloadLength);
  putU16(buf, offset + GRE_OFFSET_CALL_ID, callId);
  let at = offset + GRE_OFFSET_OPTIONAL;
  if (seq !== undefined) {
    putU32(buf, at, seq);
    at += 4;
  }
  if (ack !== undefined) putU32(buf, at, ack);
  return length;
}

/** A new buffer holding the header and a copy of `payload` (payload length taken from it). */
export function encodeGrePacket(
  fields: { callId: number; seq?: number | undefined; ack?: number | undefined },
  payload: Uint8Array,
): Uint8Array {
  const headerLength = greHeaderLength(fields.seq !== undefined, fields.ack !== undefined);
  const packet = new Uint8Array(headerLength + payload.length);
  encodeGreHeader(packet, 0, {
    callId: fields.callId,
    payloadLength: payload.length,
    seq: fields.seq,
    ack: fields.ack,
  });
  packet.set(payload, headerLength);
  return packet;
}
