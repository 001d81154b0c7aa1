import { hex } from '../../wire/bytes.ts';
import { formatIPv4, ipv4FromBytes } from '../../wire/ip.ts';
import type { RadiusAttribute } from './codec.ts';
import {
  Attr,
  attributeName,
  MikrotikAttr,
  MsAttr,
  VENDOR_MICROSOFT,
  VENDOR_MIKROTIK,
} from './dictionary.ts';

/**
 * The text of pppd's radattr.so file: the Access-Accept's attributes, one `Name Value` line each,
 * for ip-up and ip-down scripts. Names are the dictionaries' (Framed-IP-Address,
 * MS-Primary-DNS-Server, Mikrotik-Rate-Limit); values are written as radiusclient writes them:
 * addresses dotted, integers in decimal (Service-Type and Framed-Protocol by their names), text with
 * every octet outside printable ASCII, and the backslash itself, as a three-digit octal escape
 * (`\012`), so a line never holds a raw byte from the network. Attributes whose type poptop does
 * not know (or an integer of the wrong length) are written in hex: `Attr-77 0x0102`,
 * `Vendor-Specific 0x000009...` for another vendor's.
 *
 * Left out: Message-Authenticator and the MPPE keys (MS-MPPE-Send-Key, MS-MPPE-Recv-Key,
 * MS-CHAP-MPPE-Keys), which are of no use to a script and would put key material in a file.
 */

type Kind = 'address' | 'integer' | 'text';

const STANDARD: Record<number, Kind> = {
  [Attr.UserName]: 'text',
  [Attr.NasIpAddress]: 'address',
  [Attr.NasPort]: 'integer',
  [Attr.ServiceType]: 'integer',
  [Attr.FramedProtocol]: 'integer',
  [Attr.FramedIpAddress]: 'address',
  [Attr.FramedIpNetmask]: 'address',
  [Attr.FramedRouting]: 'integer',
  [Attr.FilterId]: 'text',
  [Attr.FramedMtu]: 'integer',
  [Attr.FramedCompression]: 'integer',
  [Attr.LoginIpHost]: 'address',
  [Attr.LoginService]: 'integer',
  [Attr.LoginTcpPort]: 'integer',
  [Attr.ReplyMessage]: 'text',
  [Attr.CallbackNumber]: 'text',
  [Attr.CallbackId]: 'text',
  [Attr.FramedRoute]: 'text',
  [Attr.FramedIpxNetwork]: 'integer',
  [Attr.State]: 'text',
  [Attr.Class]: 'text',
  [Attr.SessionTimeout]: 'integer',
  [Attr.IdleTimeout]: 'integer',
  [Attr.TerminationAction]: 'integer',
  [Attr.CalledStationId]: 'text',
  [Attr.CallingStationId]: 'text',
  [Attr.NasIdentifier]: 'text',
  [Attr.ProxyState]: 'text',
  [Attr.AcctSessionId]: 'text',
  [Attr.AcctMultiSessionId]: 'text',
  [Attr.PortLimit]: 'integer',
  [Attr.ConnectInfo]: 'text',
  [Attr.AcctInterimInterval]: 'integer',
  [Attr.NasPortId]: 'text',
  [Attr.FramedPool]: 'text',
};

const MICROSOFT: Record<number, Kind> = {
  [MsAttr.MppeEncryptionPolicy]: 'integer',
  [MsAttr.MppeEncryptionTypes]: 'integer',
  [MsAttr.PrimaryDnsServer]: 'address',
  [MsAttr.SecondaryDnsServer]: 'address',
  [MsAttr.PrimaryNbnsServer]: 'address',
  [MsAttr.SecondaryNbnsServer]: 'address',
  [MsAttr.ChapError]: 'text',
  [MsAttr.Chap2Success]: 'text',
};

const MIKROTIK: Record<number, Kind> = {
  [MikrotikAttr.RecvLimit]: 'integer',
  [MikrotikAttr.XmitLimit]: 'integer',
  [MikrotikAttr.Group]: 'text',
  [MikrotikAttr.RateLimit]: 'text',
  [MikrotikAttr.Realm]: 'text',
  [MikrotikAttr.HostIp]: 'address',
  [MikrotikAttr.MarkId]: 'text',
  [MikrotikAttr.RecvLimitGigawords]: 'integer',
  [MikrotikAttr.XmitLimitGigawords]: 'integer',
  [MikrotikAttr.TotalLimit]: 'integer',
  [MikrotikAttr.TotalLimitGigawords]: 'integer',
  [MikrotikAttr.AddressList]: 'text',
};

/** Integer values the dictionaries name (RFC 2865 §5.6, §5.7). */
const VALUE_NAMES: Record<number, Record<number, string>> = {
  [Attr.ServiceType]: {
    1: 'Login-User',
    2: 'Framed-User',
    3: 'Callback-Login-User',
    4: 'Callback-Framed-User',
    5: 'Outbound-User',
    6: 'Administrative-User',
  },
  [Attr.FramedProtocol]: { 1: 'PPP', 2: 'SLIP' },
};

function kindOf(a: RadiusAttribute): Kind | undefined {
  if (a.vendor === undefined) return STANDARD[a.type];
  if (a.vendor === VENDOR_MICROSOFT) return MICROSOFT[a.type];
  if (a.vendor === VENDOR_MIKROTIK) return MIKROTIK[a.type];
  return undefined;
}

function omitted(a: RadiusAttribute): boolean {
  if (a.vendor === undefined) return a.type === Attr.MessageAuthenticator;
  return (
    a.vendor === VENDOR_MICROSOFT &&
    (a.type === MsAttr.MppeSendKey || a.type === MsAttr.MppeRecvKey || a.type === MsAttr.ChapMppeKeys)
  );
}

/** Octets as printable ASCII, anything else (and `\`) as `\ooo`. */
export function radattrText(value: Uint8Array): string {
  let out = '';
  for (const b of value) {
    out +=
      b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\${b.toString(8).padStart(3, '0')}`;
  }
  return out;
}

function line(a: RadiusAttribute): string {
  const kind = kindOf(a);
  const name = attributeName(a.type, a.vendor);
  if (kind === undefined || (kind !== 'text' && a.value.length !== 4)) return `${name} 0x${hex(a.value)}`;
  if (kind === 'text') return `${name} ${radattrText(a.value)}`;
  const n = ipv4FromBytes(a.value);
  if (kind === 'address') return `${name} ${formatIPv4(n)}`;
  const named = a.vendor === undefined ? VALUE_NAMES[a.type]?.[n] : undefined;
  return `${name} ${named ?? String(n)}`;
}

/** The file's text: one line per attribute of the Access-Accept, in the order received. */
export function formatRadattr(attrs: readonly RadiusAttribute[]): string {
  return attrs
    .filter((a) => !omitted(a))
    .map((a) => `${line(a)}\n`)
    .join('');
}
