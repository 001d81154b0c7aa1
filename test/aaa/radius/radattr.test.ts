import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bytesAttr, textAttr, u32Attr } from '../../../src/aaa/radius/codec.ts';
import {
  Attr,
  MikrotikAttr,
  MsAttr,
  VENDOR_MICROSOFT,
  VENDOR_MIKROTIK,
} from '../../../src/aaa/radius/dictionary.ts';
import { formatRadattr, radattrText } from '../../../src/aaa/radius/radattr.ts';
import { parseIPv4 } from '../../../src/wire/ip.ts';

const ip = (s: string) => parseIPv4(s)!;

test('radattr: one "Name Value" line per attribute, as radiusclient prints them', () => {
  const text = formatRadattr([
    u32Attr(Attr.ServiceType, 2),
    u32Attr(Attr.FramedProtocol, 1),
    u32Attr(Attr.FramedIpAddress, ip('10.77.0.50')),
    u32Attr(Attr.FramedIpNetmask, ip('255.255.255.255')),
    textAttr(Attr.FramedRoute, '192.0.2.0/24 0.0.0.0 1'),
    textAttr(Attr.FramedRoute, '198.51.100.0/24'),
    u32Attr(Attr.SessionTimeout, 3600),
    u32Attr(Attr.AcctInterimInterval, 300),
    textAttr(Attr.FilterId, '1000/512'),
    textAttr(Attr.Class, 'gold'),
    u32Attr(MsAttr.PrimaryDnsServer, ip('10.77.0.53'), VENDOR_MICROSOFT),
    u32Attr(MsAttr.MppeEncryptionPolicy, 2, VENDOR_MICROSOFT),
    textAttr(MikrotikAttr.RateLimit, '10M/5M', VENDOR_MIKROTIK),
    u32Attr(Attr.ServiceType, 99),
  ]);
  assert.equal(
    text,
    `Service-Type Framed-User
Framed-Protocol PPP
Framed-IP-Address 10.77.0.50
Framed-IP-Netmask 255.255.255.255
Framed-Route 192.0.2.0/24 0.0.0.0 1
Framed-Route 198.51.100.0/24
Session-Timeout 3600
Acct-Interim-Interval 300
Filter-Id 1000/512
Class gold
MS-Primary-DNS-Server 10.77.0.53
MS-MPPE-Encryption-Policy 2
Mikrotik-Rate-Limit 10M/5M
Service-Type 99
`,
  );
});

test('radattr: no raw network bytes (controls, non-ASCII, backslash as \\ooo), no keys, unknown types in hex', () => {
  const text = formatRadattr([
    textAttr(Attr.ReplyMessage, 'hi\nFramed-IP-Address 1.2.3.4\u001b[2J\\é'),
    bytesAttr(Attr.Class, Uint8Array.of(0, 0xff, 0x41)),
    bytesAttr(Attr.MessageAuthenticator, new Uint8Array(16).fill(7)),
    bytesAttr(MsAttr.MppeSendKey, new Uint8Array(34).fill(1), VENDOR_MICROSOFT),
    bytesAttr(MsAttr.MppeRecvKey, new Uint8Array(34).fill(2), VENDOR_MICROSOFT),
    bytesAttr(MsAttr.ChapMppeKeys, new Uint8Array(32).fill(3), VENDOR_MICROSOFT),
    bytesAttr(Attr.SessionTimeout, Uint8Array.of(1, 2)),
    bytesAttr(200, Uint8Array.of(0xde, 0xad)),
    bytesAttr(Attr.VendorSpecific, Uint8Array.of(0, 0, 0, 9, 1, 3, 0x41)),
    bytesAttr(99, Uint8Array.of(1), VENDOR_MIKROTIK),
  ]);
  assert.equal(
    text,
    `Reply-Message hi\\012Framed-IP-Address 1.2.3.4\\033[2J\\134\\303\\251
Class \\000\\377A
Session-Timeout 0x0102
Attr-200 0xdead
Vendor-Specific 0x00000009010341
Mikrotik-Attr-99 0x01
`,
  );
  assert.equal(text.split('\n').length, 7, 'one line per attribute kept');
  assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\uffff]/);
  assert.equal(radattrText(new TextEncoder().encode('a b~')), 'a b~');
});
