import type { MppeBits } from '../mppe/types.ts';
import type { ConfigOption } from '../options.ts';
import { readU32, u32Option } from '../options.ts';

/** CCP option types we name (RFC 1962 §3, IANA "PPP CCP Configuration Option Types"). */
export const CcpOption = { Predictor1: 1, Predictor2: 2, MPPE: 18, BSDCompress: 21, Deflate: 26 } as const;

/** The MPPE/MPPC "Supported Bits" (RFC 3078 §2.1, RFC 2118): one 32-bit field, option length 6. */
export const MppeBit = {
  /** Stateless mode ("H"): the key changes every packet, no history between packets. */
  H: 0x01000000,
  M: 0x80,
  S: 0x40,
  L: 0x20,
  /** Obsolete (RFC 3078: must be cleared). */
  D: 0x10,
  /** MPPC compression (RFC 2118), which we never do. */
  C: 0x01,
} as const;

export const MPPE_DATA_LENGTH = 4;
const KNOWN_BITS = MppeBit.H | MppeBit.M | MppeBit.S | MppeBit.L | MppeBit.D | MppeBit.C;

/** Strongest first: the order in which a side picks among offered strengths. */
export const STRENGTHS: readonly MppeBits[] = [128, 56, 40];

export function strengthBit(bits: MppeBits): number {
  return bits === 128 ? MppeBit.S : bits === 56 ? MppeBit.M : MppeBit.L;
}

/** The strengths whose bits are set in `value`, strongest first. */
export function strengthsIn(value: number): MppeBits[] {
  return STRENGTHS.filter((b) => (value & strengthBit(b)) !== 0);
}

export interface MppeChoice {
  bits: MppeBits;
  stateless: boolean;
}

export function encodeMppeOption(c: MppeChoice): ConfigOption {
  return encodeMppeOffer({ strengths: [c.bits], stateless: c.stateless });
}

/**
 * What one side asks for in its own Configure-Request: every strength it allows (pppd and RRAS
 * set S, M and L together and let the peer Nak down to one), and the H bit.
 */
export interface MppeOffer {
  /** Strongest first, never empty. */
  strengths: MppeBits[];
  stateless: boolean;
}

export function encodeMppeOffer(o: MppeOffer): ConfigOption {
  let value = o.stateless ? MppeBit.H : 0;
  for (const b of o.strengths) value |= strengthBit(b);
  return u32Option(CcpOption.MPPE, value);
}

/** The field value of an MPPE option, or undefined when its length is wrong. */
export function mppeValue(o: ConfigOption): number | undefined {
  return o.type === CcpOption.MPPE && o.data.length === MPPE_DATA_LENGTH ? readU32(o.data) : undefined;
}

export function describeStrengths(list: readonly MppeBits[]): string {
  return list.length === 0 ? 'none' : list.map((b) => `${b}-bit`).join('/');
}

/** pppd style: "<mppe +H -M +S -L -D -C>"; unknown bits are appended in hex. */
export function describeMppe(value: number): string {
  const flag = (bit: number, name: string) => `${value & bit ? '+' : '-'}${name}`;
  const unknown = value & ~KNOWN_BITS;
  const extra = unknown ? ` 0x${unknown.toString(16)}` : '';
  return `<mppe ${flag(MppeBit.H, 'H')} ${flag(MppeBit.M, 'M')} ${flag(MppeBit.S, 'S')} ${flag(MppeBit.L, 'L')} ${flag(MppeBit.D, 'D')} ${flag(MppeBit.C, 'C')}${extra}>`;
}
