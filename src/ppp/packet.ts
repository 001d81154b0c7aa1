import type { ProtocolLayer } from '../wire/errors.ts';
import { ProtocolError } from '../wire/errors.ts';

/**
 * The control-packet header shared by LCP, IPCP, IPv6CP and CCP (RFC 1661 §5):
 * Code (1), Identifier (1), Length (2, includes the header), Data.
 */
export interface ControlPacket {
  code: number;
  id: number;
  /** Data bytes up to Length (octets beyond Length are padding and ignored, RFC 1661 §5). */
  data: Uint8Array;
}

export const CONTROL_HEADER_LENGTH = 4;

/** Decode; Length < 4 or Length > the bytes present throws ProtocolError (the packet is dropped). */
export function decodeControlPacket(bytes: Uint8Array, layer: ProtocolLayer): ControlPacket {
  if (bytes.length < CONTROL_HEADER_LENGTH) {
    throw new ProtocolError(layer, 'TRUNCATED', `packet of ${bytes.length} bytes is shorter than its header`);
  }
  const length = (bytes[2]! << 8) | bytes[3]!;
  if (length < CONTROL_HEADER_LENGTH)
    throw new ProtocolError(layer, 'BAD_LENGTH', `length field ${length} < 4`);
  if (length > bytes.length) {
    throw new ProtocolError(layer, 'TRUNCATED', `length field ${length} > ${bytes.length} bytes present`);
  }
  return { code: bytes[0]!, id: bytes[1]!, data: bytes.subarray(CONTROL_HEADER_LENGTH, length) };
}

export function encodeControlPacket(code: number, id: number, data: Uint8Array): Uint8Array {
  const length = CONTROL_HEADER_LENGTH + data.length;
  const out = new Uint8Array(length);
  out[0] = code;
  out[1] = id & 0xff;
  out[2] = length >>> 8;
  out[3] = length & 0xff;
  out.set(data, CONTROL_HEADER_LENGTH);
  return out;
}
