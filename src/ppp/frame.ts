import { ProtocolError } from '../wire/errors.ts';
import { PPP_ADDRESS, PPP_CONTROL, PppProtocol } from './constants.ts';

/**
 * PPP frames as carried by PPTP (RFC 2637 §4.4): each GRE payload is one PPP frame, without HDLC
 * flags, escaping or FCS. The Address/Control field 0xff03 may be omitted when ACFC was
 * negotiated and the protocol field may be one octet when PFC was negotiated (RFC 1661 §6.5,
 * §6.6). Input is accepted in every form regardless of negotiation (RFC 1661: "MUST accept").
 */
export interface PppFrame {
  protocol: number;
  /** The information field, a view into the input. */
  info: Uint8Array;
}

/** Decode one frame; throws ProtocolError('ppp') for a missing or invalid protocol field. */
export function decodeFrame(bytes: Uint8Array): PppFrame {
  let pos = 0;
  if (bytes.length >= 2 && bytes[0] === PPP_ADDRESS && bytes[1] === PPP_CONTROL) pos = 2;
  const first = bytes[pos];
  if (first === undefined) throw new ProtocolError('ppp', 'TRUNCATED', 'frame has no protocol field');
  let protocol: number;
  if (first & 1) {
    // PFC: a one-octet protocol field (high octet 0x00 elided). RFC 1661 §2.
    protocol = first;
    pos += 1;
  } else {
    const second = bytes[pos + 1];
    if (second === undefined) throw new ProtocolError('ppp', 'TRUNCATED', 'frame has a 1-byte even protocol');
    if ((second & 1) === 0) {
      throw new ProtocolError(
        'ppp',
        'BAD_FIELD',
        `invalid protocol 0x${first.toString(16)}${second.toString(16)}`,
      );
    }
    protocol = (first << 8) | second;
    pos += 2;
  }
  return { protocol, info: bytes.subarray(pos) };
}

export interface FrameCompression {
  /** The peer accepted Address-and-Control-Field-Compression: omit 0xff03. */
  acfc: boolean;
  /** The peer accepted Protocol-Field-Compression: one-octet protocol when it fits. */
  pfc: boolean;
}

const NONE: FrameCompression = { acfc: false, pfc: false };

/**
 * Octets of Address/Control and Protocol that `writeFrameHeader` puts before the information.
 * Protocol 0x00ff is never compressed: its one-octet form 0xff, without Address/Control, followed by
 * information starting 0x03, would read back as Address/Control (IANA lists 0x00ff as "reserved,
 * compression inefficient").
 */
export function frameHeaderLength(protocol: number, comp: FrameCompression = NONE): number {
  const lcp = protocol === PppProtocol.LCP;
  const oneOctet = !lcp && comp.pfc && protocol < 0xff;
  return (lcp || !comp.acfc ? 2 : 0) + (oneOctet ? 1 : 2);
}

/**
 * Write the frame header at the start of `out` (which has room for it); returns its length.
 * LCP is always sent uncompressed (RFC 1661 §6.5, §6.6: ACFC/PFC never apply to LCP packets),
 * as is everything before LCP is open (pass `NONE` by omitting `comp`).
 */
export function writeFrameHeader(out: Uint8Array, protocol: number, comp: FrameCompression = NONE): number {
  const head = frameHeaderLength(protocol, comp);
  let pos = 0;
  if (head === 4 || head === 3) {
    out[pos++] = PPP_ADDRESS;
    out[pos++] = PPP_CONTROL;
  }
  if (head % 2 === 0) out[pos++] = protocol >>> 8;
  out[pos++] = protocol & 0xff;
  return pos;
}

/** Encode one frame (header + a copy of `info`). */
export function encodeFrame(protocol: number, info: Uint8Array, comp: FrameCompression = NONE): Uint8Array {
  const out = new Uint8Array(frameHeaderLength(protocol, comp) + info.length);
  out.set(info, writeFrameHeader(out, protocol, comp));
  return out;
}
