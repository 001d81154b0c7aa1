import { ByteReader, ByteWriter, hex } from '../../wire/bytes.ts';
import { ProtocolError } from '../../wire/errors.ts';

/** CHAP codes (RFC 1994 §4). MS-CHAP's Change-Password codes (5, 6, 7) are not supported. */
export const ChapCode = { Challenge: 1, Response: 2, Success: 3, Failure: 4 } as const;

export type ChapPacket =
  | {
      code: typeof ChapCode.Challenge | typeof ChapCode.Response;
      id: number;
      value: Uint8Array;
      name: Uint8Array;
    }
  | { code: typeof ChapCode.Success | typeof ChapCode.Failure; id: number; message: Uint8Array };

/** Code, Identifier, Length. */
export const CHAP_HEADER_LENGTH = 4;

/**
 * Decode one CHAP packet (starting at the Code octet). Octets past the Length field are link padding
 * and ignored (RFC 1661 §5). Throws ProtocolError for a truncated packet, a Length field below 4 or
 * beyond the octets present, a Value-Size of 0 or past the Length, or an unknown Code.
 */
export function decodeChapPacket(bytes: Uint8Array): ChapPacket {
  const head = new ByteReader(bytes, 'chap');
  const code = head.u8('Code');
  const id = head.u8('Identifier');
  const length = head.u16('Length');
  if (length < CHAP_HEADER_LENGTH || length > bytes.length) {
    throw new ProtocolError('chap', 'BAD_LENGTH', `Length ${length} with ${bytes.length} octets present`);
  }
  const r = new ByteReader(bytes, 'chap', CHAP_HEADER_LENGTH, length - CHAP_HEADER_LENGTH);
  switch (code) {
    case ChapCode.Challenge:
    case ChapCode.Response: {
      const size = r.u8('Value-Size');
      if (size === 0) throw new ProtocolError('chap', 'BAD_FIELD', 'Value-Size 0');
      const value = r.bytesView(size, 'Value');
      return { code, id, value, name: r.rest() };
    }
    case ChapCode.Success:
    case ChapCode.Failure:
      return { code, id, message: r.rest() };
    default:
      throw new ProtocolError('chap', 'UNKNOWN_TYPE', `unknown CHAP code ${code}`);
  }
}

/** Encode one CHAP packet. A Value of 0 or more than 255 octets is a programming error (RangeError). */
export function encodeChapPacket(p: ChapPacket): Uint8Array {
  const w = new ByteWriter(CHAP_HEADER_LENGTH + 64).u8(p.code).u8(p.id).u16(0);
  if ('value' in p) {
    if (p.value.length === 0 || p.value.length > 255) {
      throw new RangeError(`CHAP Value of ${p.value.length} octets (1 to 255 fit)`);
    }
    w.u8(p.value.length).bytes(p.value).bytes(p.name);
  } else {
    w.bytes(p.message);
  }
  if (w.length > 0xffff) throw new RangeError(`CHAP packet of ${w.length} octets`);
  return w.patchU16(2, w.length).finish();
}

const CODE_NAMES = { 1: 'Challenge', 2: 'Response', 3: 'Success', 4: 'Failure' } as const;

/**
 * A one-line description for debug logs. Challenge values are shown (they are public); Response
 * values are not, since an offline dictionary attack needs only the pair.
 */
export function describeChapPacket(p: ChapPacket): string {
  const head = `CHAP ${CODE_NAMES[p.code]} id=${p.id}`;
  switch (p.code) {
    case ChapCode.Challenge:
      return `[${head} <${hex(p.value)}> name=${JSON.stringify(Buffer.from(p.name).toString('utf8'))}]`;
    case ChapCode.Response:
      return `[${head} <${p.value.length} octets> name=${JSON.stringify(Buffer.from(p.name).toString('utf8'))}]`;
    case ChapCode.Success:
    case ChapCode.Failure:
      return `[${head} ${JSON.stringify(Buffer.from(p.message).toString('utf8'))}]`;
  }
}
