import type { AuthMethod } from '../auth/types.ts';
import { ChapAlgorithm } from '../auth/types.ts';
import { PppProtocol } from '../constants.ts';
import type { ConfigOption } from '../options.ts';
import { readU16, readU32 } from '../options.ts';

/** LCP Configuration Option types (RFC 1661 §6, RFC 1662 §7.1 for ACCM). */
export const LcpOption = {
  MRU: 1,
  ACCM: 2,
  AuthProtocol: 3,
  QualityProtocol: 4,
  MagicNumber: 5,
  PFC: 7,
  ACFC: 8,
  /**
   * Options every Windows peer sends and poptop Configure-Rejects, named for the logs: Callback
   * (RFC 1570 §2.3; operation 6 = Microsoft's CBCP), Multilink MRRU and Endpoint Discriminator
   * (RFC 1990 §5.1.1, §5.1.3).
   */
  Callback: 13,
  MRRU: 17,
  EndpointDiscriminator: 19,
} as const;

/** pppd's MINMRU; the RFC 1661 §6.1 default MRU, also the largest peer MRU we accept un-Nak'd. */
export const MIN_MRU = 128;
export const DEFAULT_MRU = 1500;
export const MAX_MRU = 1500;

/** One side's LCP options (a "want", "got", "allow" or "his" set, as in pppd/lwIP). */
export interface LcpOptionSet {
  mru: number | undefined;
  auth: AuthMethod | undefined;
  magic: number | undefined;
  pfc: boolean;
  acfc: boolean;
}

/** The option data of Authentication-Protocol for `method` (RFC 1661 §6.2, RFC 1994 §3). */
export function encodeAuthData(method: AuthMethod): Uint8Array {
  switch (method) {
    case 'pap':
      return new Uint8Array([PppProtocol.PAP >>> 8, PppProtocol.PAP & 0xff]);
    case 'chap-md5':
      return chapData(ChapAlgorithm.MD5);
    case 'mschap':
      return chapData(ChapAlgorithm.MSCHAP);
    case 'mschapv2':
      return chapData(ChapAlgorithm.MSCHAPV2);
  }
}

function chapData(algorithm: number): Uint8Array {
  return new Uint8Array([PppProtocol.CHAP >>> 8, PppProtocol.CHAP & 0xff, algorithm]);
}

/** The method an Authentication-Protocol option names, or undefined for one we do not know. */
export function decodeAuthData(data: Uint8Array): AuthMethod | undefined {
  if (data.length < 2) return undefined;
  const proto = readU16(data);
  if (proto === PppProtocol.PAP) return data.length === 2 ? 'pap' : undefined;
  if (proto !== PppProtocol.CHAP || data.length !== 3) return undefined;
  switch (data[2]) {
    case ChapAlgorithm.MD5:
      return 'chap-md5';
    case ChapAlgorithm.MSCHAP:
      return 'mschap';
    case ChapAlgorithm.MSCHAPV2:
      return 'mschapv2';
    default:
      return undefined;
  }
}

/** accel-ppp style text for debug logs: "<mru 1400>", "<auth chap-ms-v2>", "<magic 0x1a2b3c4d>". */
export function describeLcpOption(o: ConfigOption): string {
  switch (o.type) {
    case LcpOption.MRU:
      return o.data.length === 2 ? `<mru ${readU16(o.data)}>` : '<mru ?>';
    case LcpOption.ACCM:
      return o.data.length === 4 ? `<asyncmap 0x${readU32(o.data).toString(16)}>` : '<asyncmap ?>';
    case LcpOption.AuthProtocol:
      return `<auth ${decodeAuthData(o.data) ?? Buffer.from(o.data).toString('hex')}>`;
    case LcpOption.MagicNumber:
      return o.data.length === 4 ? `<magic 0x${readU32(o.data).toString(16).padStart(8, '0')}>` : '<magic ?>';
    case LcpOption.PFC:
      return '<pcomp>';
    case LcpOption.ACFC:
      return '<accomp>';
    case LcpOption.Callback:
      return o.data.length >= 1 ? `<callback ${o.data[0]}>` : '<callback ?>';
    case LcpOption.MRRU:
      return o.data.length === 2 ? `<mrru ${readU16(o.data)}>` : '<mrru ?>';
    case LcpOption.EndpointDiscriminator:
      return o.data.length >= 1
        ? `<endpoint class ${o.data[0]} ${Buffer.from(o.data.subarray(1)).toString('hex')}>`
        : '<endpoint ?>';
    default:
      return `<${o.type} ${Buffer.from(o.data).toString('hex')}>`;
  }
}
