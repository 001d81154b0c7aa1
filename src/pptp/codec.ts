/**
 * PPTP control message codec (RFC 2637 §1.4, §2.1-§2.15). Pure and strict: the header is checked
 * (Length equal to the exact size of the Control Message Type, PPTP Message Type 1, Magic Cookie)
 * before any field is read, and every failure is a ProtocolError with a code.
 *
 * Reserved fields: the RFC says "MUST be 0" for Reserved0 and the per-message Reserved fields. We
 * write zeros and TOLERATE non-zero values on receipt (they are ignored), following the robustness
 * principle: rejecting them would gain nothing and would cut off clients that leave junk there.
 *
 * Text fields (Host Name, Vendor, Phone Number, Subaddress, Dialed/Dialing Number, Call Statistics)
 * are fixed-size and NUL-padded: decoding stops at the first NUL and maps every byte to one latin1
 * character (any byte is accepted); encoding writes latin1 (characters above U+00FF become '?'),
 * truncated to the field width and NUL-padded.
 */
import { ByteReader, ByteWriter } from '../wire/bytes.ts';
import { ProtocolError } from '../wire/errors.ts';
import {
  CONTROL_HEADER_LENGTH,
  CONTROL_MESSAGE_LENGTH,
  CONTROL_TYPE_NAME,
  type ControlTypeCode,
  isControlTypeCode,
  MAX_CONTROL_MESSAGE_LENGTH,
  PPTP_MAGIC_COOKIE,
  PptpMessageType,
} from './constants.ts';
import type { ControlMessage, ControlMessageName, MessageOf } from './messages.ts';

export type * from './messages.ts';

type KeysOfType<M, V> = { [K in keyof M]: M[K] extends V ? (K extends 'type' ? never : K) : never }[keyof M];

/** One field of a message body, in wire order. */
type Field<M> =
  | { readonly n: KeysOfType<M, number>; readonly t: 'u8' | 'u16' | 'u32' }
  | { readonly n: KeysOfType<M, string>; readonly t: 'text'; readonly size: number }
  /** A u16 holding the length of a text field (Phone Number Length etc.). */
  | { readonly t: 'text-length'; readonly of: KeysOfType<M, string> }
  | { readonly t: 'reserved'; readonly size: number };

interface Layout<T extends ControlMessageName> {
  readonly code: ControlTypeCode;
  readonly fields: readonly Field<MessageOf<T>>[];
}

const u8 = <M>(n: KeysOfType<M, number>): Field<M> => ({ n, t: 'u8' });
const u16 = <M>(n: KeysOfType<M, number>): Field<M> => ({ n, t: 'u16' });
const u32 = <M>(n: KeysOfType<M, number>): Field<M> => ({ n, t: 'u32' });
const text = <M>(n: KeysOfType<M, string>, size: number): Field<M> => ({ n, t: 'text', size });
const textLength = <M>(of: KeysOfType<M, string>): Field<M> => ({ t: 'text-length', of });
const reserved = <M>(size: number): Field<M> => ({ t: 'reserved', size });

type Layouts = { readonly [T in ControlMessageName]: Layout<T> };

/** Body layouts after the 12-byte header, transcribed from RFC 2637 §2.1-§2.15. */
const LAYOUTS: Layouts = {
  'start-control-connection-request': {
    code: 1,
    fields: [
      u16('protocolVersion'),
      reserved(2),
      u32('framingCapabilities'),
      u32('bearerCapabilities'),
      u16('maxChannels'),
      u16('firmwareRevision'),
      text('hostName', 64),
      text('vendor', 64),
    ],
  },
  'start-control-connection-reply': {
    code: 2,
    fields: [
      u16('protocolVersion'),
      u8('resultCode'),
      u8('errorCode'),
      u32('framingCapabilities'),
      u32('bearerCapabilities'),
      u16('maxChannels'),
      u16('firmwareRevision'),
      text('hostName', 64),
      text('vendor', 64),
    ],
  },
  'stop-control-connection-request': { code: 3, fields: [u8('reason'), reserved(3)] },
  'stop-control-connection-reply': { code: 4, fields: [u8('resultCode'), u8('errorCode'), reserved(2)] },
  'echo-request': { code: 5, fields: [u32('identifier')] },
  'echo-reply': { code: 6, fields: [u32('identifier'), u8('resultCode'), u8('errorCode'), reserved(2)] },
  'outgoing-call-request': {
    code: 7,
    fields: [
      u16('callId'),
      u16('callSerial'),
      u32('minBps'),
      u32('maxBps'),
      u32('bearerType'),
      u32('framingType'),
      u16('recvWindow'),
      u16('processingDelay'),
      textLength('phoneNumber'),
      reserved(2),
      text('phoneNumber', 64),
      text('subaddress', 64),
    ],
  },
  'outgoing-call-reply': {
    code: 8,
    fields: [
      u16('callId'),
      u16('peerCallId'),
      u8('resultCode'),
      u8('errorCode'),
      u16('causeCode'),
      u32('connectSpeed'),
      u16('recvWindow'),
      u16('processingDelay'),
      u32('physicalChannelId'),
    ],
  },
  'incoming-call-request': {
    code: 9,
    fields: [
      u16('callId'),
      u16('callSerial'),
      u32('bearerType'),
      u32('physicalChannelId'),
      textLength('dialedNumber'),
      textLength('dialingNumber'),
      text('dialedNumber', 64),
      text('dialingNumber', 64),
      text('subaddress', 64),
    ],
  },
  'incoming-call-reply': {
    code: 10,
    fields: [
      u16('callId'),
      u16('peerCallId'),
      u8('resultCode'),
      u8('errorCode'),
      u16('recvWindow'),
      u16('transmitDelay'),
      reserved(2),
    ],
  },
  'incoming-call-connected': {
    code: 11,
    fields: [
      u16('peerCallId'),
      reserved(2),
      u32('connectSpeed'),
      u16('recvWindow'),
      u16('transmitDelay'),
      u32('framingType'),
    ],
  },
  'call-clear-request': { code: 12, fields: [u16('callId'), reserved(2)] },
  'call-disconnect-notify': {
    code: 13,
    fields: [
      u16('callId'),
      u8('resultCode'),
      u8('errorCode'),
      u16('causeCode'),
      reserved(2),
      text('callStatistics', 128),
    ],
  },
  'wan-error-notify': {
    code: 14,
    fields: [
      u16('peerCallId'),
      reserved(2),
      u32('crcErrors'),
      u32('framingErrors'),
      u32('hardwareOverruns'),
      u32('bufferOverruns'),
      u32('timeoutErrors'),
      u32('alignmentErrors'),
    ],
  },
  'set-link-info': {
    code: 15,
    fields: [u16('peerCallId'), reserved(2), u32('sendAccm'), u32('recvAccm')],
  },
};

const NAME_BY_CODE = new Map<number, ControlMessageName>(
  (Object.keys(LAYOUTS) as ControlMessageName[]).map((name) => [LAYOUTS[name].code, name]),
);

/** The exact encoded length of a message type, header included. */
export function controlMessageLength(type: ControlMessageName | ControlTypeCode): number {
  return CONTROL_MESSAGE_LENGTH[typeof type === 'number' ? type : LAYOUTS[type].code];
}

/** The Control Message Type number of a message name. */
export function controlTypeCode(type: ControlMessageName): ControlTypeCode {
  return LAYOUTS[type].code;
}

/** The RFC's name of a message ("Outgoing-Call-Request"). */
export function controlMessageTitle(type: ControlMessageName): string {
  return CONTROL_TYPE_NAME[LAYOUTS[type].code];
}

/**
 * Check the header fields present in `available` bytes at `offset` (0 to 12 bytes of them), as soon
 * as each is there: Length within [16, 220] (TOO_LARGE above, BAD_LENGTH below), PPTP Message Type 1
 * (BAD_FIELD), Magic Cookie (BAD_MAGIC), a known Control Message Type (UNKNOWN_TYPE) and Length equal
 * to its exact size (BAD_LENGTH). Returns the Length once it is known, else undefined.
 */
export function checkControlHeader(bytes: Uint8Array, offset: number, available: number): number | undefined {
  const at = (i: number): number => bytes[offset + i] ?? 0;
  if (available < 2) return undefined;
  const length = (at(0) << 8) | at(1);
  if (length > MAX_CONTROL_MESSAGE_LENGTH) {
    throw new ProtocolError(
      'pptp',
      'TOO_LARGE',
      `control message length ${length} > ${MAX_CONTROL_MESSAGE_LENGTH}`,
    );
  }
  if (length < CONTROL_HEADER_LENGTH + 4) {
    throw new ProtocolError('pptp', 'BAD_LENGTH', `control message length ${length} is too short`);
  }
  if (available < 4) return length;
  const messageType = (at(2) << 8) | at(3);
  if (messageType !== PptpMessageType.Control) {
    throw new ProtocolError('pptp', 'BAD_FIELD', `PPTP message type ${messageType} is not 1 (control)`);
  }
  if (available < 8) return length;
  const magic = ((at(4) << 24) | (at(5) << 16) | (at(6) << 8) | at(7)) >>> 0;
  if (magic !== PPTP_MAGIC_COOKIE) {
    throw new ProtocolError(
      'pptp',
      'BAD_MAGIC',
      `magic cookie 0x${magic.toString(16).padStart(8, '0')} is wrong`,
    );
  }
  if (available < 10) return length;
  const code = (at(8) << 8) | at(9);
  if (!isControlTypeCode(code)) {
    throw new ProtocolError('pptp', 'UNKNOWN_TYPE', `unknown control message type ${code}`);
  }
  const expected = CONTROL_MESSAGE_LENGTH[code];
  if (length !== expected) {
    throw new ProtocolError(
      'pptp',
      'BAD_LENGTH',
      `length ${length} != ${expected} for ${CONTROL_TYPE_NAME[code]}`,
    );
  }
  return length;
}

/**
 * Decode the one control message that starts at `offset` (bytes after it are left alone: they belong
 * to the next message). Throws ProtocolError: TRUNCATED when fewer bytes than its Length are present,
 * otherwise the codes of checkControlHeader.
 */
export function decodeControlMessage(bytes: Uint8Array, offset = 0): ControlMessage {
  const available = Math.max(0, bytes.length - offset);
  if (available < CONTROL_HEADER_LENGTH) {
    checkControlHeader(bytes, offset, available);
    throw new ProtocolError(
      'pptp',
      'TRUNCATED',
      `control message header truncated: ${available} of 12 bytes`,
    );
  }
  const length = checkControlHeader(bytes, offset, CONTROL_HEADER_LENGTH)!;
  if (available < length) {
    throw new ProtocolError(
      'pptp',
      'TRUNCATED',
      `control message truncated: ${available} of ${length} bytes`,
    );
  }
  const name = NAME_BY_CODE.get((bytes[offset + 8]! << 8) | bytes[offset + 9]!)!;
  const r = new ByteReader(bytes, 'pptp', offset + CONTROL_HEADER_LENGTH, length - CONTROL_HEADER_LENGTH);
  const out: Record<string, number | string> = { type: name };
  for (const f of LAYOUTS[name].fields as readonly Field<Record<string, unknown>>[]) {
    switch (f.t) {
      case 'u8':
        out[f.n] = r.u8(f.n);
        break;
      case 'u16':
        out[f.n] = r.u16(f.n);
        break;
      case 'u32':
        out[f.n] = r.u32(f.n);
        break;
      case 'text':
        out[f.n] = decodeText(r.bytesView(f.size, f.n));
        break;
      case 'text-length':
        r.skip(2, 'text length');
        break;
      case 'reserved':
        r.skip(f.size, 'reserved');
        break;
    }
  }
  return out as unknown as ControlMessage;
}

/** Encode a message into exactly controlMessageLength(msg.type) bytes. Throws RangeError when a
 *  numeric field does not fit its width (a caller bug, not bad input). */
export function encodeControlMessage(msg: ControlMessage): Uint8Array {
  const layout = LAYOUTS[msg.type];
  const length = CONTROL_MESSAGE_LENGTH[layout.code];
  const w = new ByteWriter(length);
  w.u16(length).u16(PptpMessageType.Control).u32(PPTP_MAGIC_COOKIE).u16(layout.code).u16(0);
  const values = msg as unknown as Record<string, number | string>;
  for (const f of layout.fields as readonly Field<Record<string, unknown>>[]) {
    switch (f.t) {
      case 'u8':
        w.u8(checkRange(values[f.n], 0xff, f.n, msg.type));
        break;
      case 'u16':
        w.u16(checkRange(values[f.n], 0xffff, f.n, msg.type));
        break;
      case 'u32':
        w.u32(checkRange(values[f.n], 0xffffffff, f.n, msg.type));
        break;
      case 'text':
        w.bytes(encodeText(String(values[f.n] ?? ''), f.size));
        break;
      case 'text-length':
        w.u16(Math.min(String(values[f.of] ?? '').length, 64));
        break;
      case 'reserved':
        w.zeros(f.size);
        break;
    }
  }
  return w.finish();
}

function checkRange(v: unknown, max: number, field: string, type: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw new RangeError(`${type}.${field} = ${String(v)} does not fit in 0..${max}`);
  }
  return v;
}

/** A fixed-width text field: bytes up to the first NUL, one latin1 character per byte. */
export function decodeText(field: Uint8Array): string {
  const end = field.indexOf(0);
  const used = end < 0 ? field : field.subarray(0, end);
  let s = '';
  for (const b of used) s += String.fromCharCode(b);
  return s;
}

/** `size` bytes: the text in latin1 ('?' for characters above U+00FF), truncated, NUL-padded. */
export function encodeText(s: string, size: number): Uint8Array {
  const out = new Uint8Array(size);
  const n = Math.min(s.length, size);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    out[i] = c > 0xff ? 0x3f : c;
  }
  return out;
}

/** One log token for a message, accel-ppp style: `[Echo-Request identifier=7]` (text fields quoted,
 *  empty ones and zero-valued Call Statistics left out). */
export function describeControlMessage(msg: ControlMessage): string {
  const parts = [controlMessageTitle(msg.type)];
  for (const [k, v] of Object.entries(msg)) {
    if (k === 'type') continue;
    if (typeof v === 'string') {
      if (v !== '') parts.push(`${k}=${JSON.stringify(v)}`);
    } else {
      parts.push(`${k}=${v}`);
    }
  }
  return `[${parts.join(' ')}]`;
}
