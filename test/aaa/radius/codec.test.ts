import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  attrText,
  attrU32,
  decodeRadiusPacket,
  encodeRadiusPacket,
  findAttr,
  hideUserPassword,
  type RadiusAttribute,
  type RadiusPacket,
  revealUserPassword,
  saltDecrypt,
  saltEncrypt,
  signRadiusPacket,
  textAttr,
  u32Attr,
  verifyRadiusRequest,
  verifyRadiusResponse,
} from '../../../src/aaa/radius/codec.ts';
import {
  Attr,
  attributeName,
  MikrotikAttr,
  MsAttr,
  RadiusCode,
  VENDOR_MICROSOFT,
  VENDOR_MIKROTIK,
} from '../../../src/aaa/radius/dictionary.ts';
import { fromHex, hex } from '../../../src/wire/bytes.ts';
import { ProtocolError } from '../../../src/wire/errors.ts';

const enc = (s: string) => new TextEncoder().encode(s);

// RFC 2865 §7.1 "User Telnet to Specified Host": shared secret "xyzzy5461", password "arctangent".
const RFC2865_SECRET = enc('xyzzy5461');
const RFC2865_REQUEST = fromHex(`
  01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
  98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d
  93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8
  01 10 05 06 00 00 00 03`);
const RFC2865_ACCEPT = fromHex(`
  02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
  9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00
  0e 06 c0 a8 01 03`);
// RFC 2865 §7.2 "Framed User Authenticating with CHAP" (the request only; its secret is not given).
const RFC2865_CHAP_REQUEST = fromHex(`
  01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e
  0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9
  75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04
  06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00
  02 07 06 00 00 00 01`);

function rejects(bytes: Uint8Array, code: string): void {
  assert.throws(
    () => decodeRadiusPacket(bytes),
    (e: unknown) => e instanceof ProtocolError && e.layer === 'radius' && e.code === code,
    `expected ${code} for ${hex(bytes)}`,
  );
}

test('RFC 2865 §7.1: decodes the Access-Request and reveals the hidden password', () => {
  const p = decodeRadiusPacket(RFC2865_REQUEST);
  assert.equal(p.code, RadiusCode.AccessRequest);
  assert.equal(p.id, 0);
  assert.equal(attrText(findAttr(p.attributes, Attr.UserName)!), 'nemo');
  assert.equal(attrU32(findAttr(p.attributes, Attr.NasIpAddress)!), 0xc0a80110);
  assert.equal(attrU32(findAttr(p.attributes, Attr.NasPort)!), 3);
  const hidden = findAttr(p.attributes, Attr.UserPassword)!.value;
  assert.equal(
    new TextDecoder().decode(revealUserPassword(hidden, RFC2865_SECRET, p.authenticator)),
    'arctangent',
  );
  // and hiding the password again gives the RFC's octets
  assert.equal(hex(hideUserPassword(enc('arctangent'), RFC2865_SECRET, p.authenticator)), hex(hidden));
  assert.equal(hex(encodeRadiusPacket(p)), hex(RFC2865_REQUEST));
  assert.equal(verifyRadiusRequest(RFC2865_REQUEST, RFC2865_SECRET), undefined);
});

test('RFC 2865 §7.1: the Access-Accept Response Authenticator verifies; re-signing gives the same octets', () => {
  const req = decodeRadiusPacket(RFC2865_REQUEST);
  assert.equal(verifyRadiusResponse(RFC2865_ACCEPT, req.authenticator, RFC2865_SECRET), undefined);
  const wrong = verifyRadiusResponse(RFC2865_ACCEPT, req.authenticator, enc('xyzzy5462'));
  assert.match(wrong ?? '', /Response Authenticator is wrong/);
  const accept = decodeRadiusPacket(RFC2865_ACCEPT);
  assert.equal(attrU32(findAttr(accept.attributes, Attr.ServiceType)!), 1);
  const signed = signRadiusPacket(accept, RFC2865_SECRET, { requestAuthenticator: req.authenticator });
  assert.equal(hex(signed), hex(RFC2865_ACCEPT));
  // BlastRADIUS: the RFC's reply has no Message-Authenticator, so it is refused when one is required
  assert.match(
    verifyRadiusResponse(RFC2865_ACCEPT, req.authenticator, RFC2865_SECRET, {
      requireMessageAuthenticator: true,
    }) ?? '',
    /no Message-Authenticator/,
  );
});

test('RFC 2865 §7.2: decodes the CHAP request (CHAP-Password = ident 22 + 16 octets)', () => {
  const p = decodeRadiusPacket(RFC2865_CHAP_REQUEST);
  assert.equal(p.id, 1);
  assert.equal(attrText(findAttr(p.attributes, Attr.UserName)!), 'flopsy');
  const chap = findAttr(p.attributes, Attr.ChapPassword)!.value;
  assert.equal(chap.length, 17);
  assert.equal(chap[0], 22);
  assert.equal(attrU32(findAttr(p.attributes, Attr.ServiceType)!), 2);
  assert.equal(attrU32(findAttr(p.attributes, Attr.FramedProtocol)!), 1);
  assert.equal(hex(encodeRadiusPacket(p)), hex(RFC2865_CHAP_REQUEST));
});

test('User-Password of every length from 1 to 128 octets round-trips; padding is a multiple of 16', () => {
  const ra = fromHex('00112233445566778899aabbccddeeff');
  for (let n = 1; n <= 128; n++) {
    const pw = Uint8Array.from({ length: n }, (_, i) => 0x21 + ((i * 7) % 90));
    const hidden = hideUserPassword(pw, enc('s3cret'), ra);
    assert.equal(hidden.length, Math.max(16, Math.ceil(n / 16) * 16));
    assert.equal(hex(revealUserPassword(hidden, enc('s3cret'), ra)), hex(pw));
  }
  assert.throws(() => hideUserPassword(new Uint8Array(129), enc('s'), ra), RangeError);
  for (const bad of [0, 15, 17, 144]) {
    assert.throws(
      () => revealUserPassword(new Uint8Array(bad), enc('s'), ra),
      (e: unknown) => e instanceof ProtocolError && e.code === 'BAD_FIELD',
    );
  }
});

test('MS-MPPE key salt-encryption (RFC 2548 §2.4.2): layout, round trip, malformed values', () => {
  const secret = enc('testing123');
  const ra = fromHex('0f403f9473978057bd83d5cb98f4227a');
  const key = fromHex('000102030405060708090a0b0c0d0e0f');
  const salt = fromHex('8a5c');
  const v = saltEncrypt(key, secret, ra, salt);
  // Salt ‖ 32 octets: Key-Length(1) + 16-octet key + 15 zeros, encrypted in two blocks
  assert.equal(v.length, 34);
  assert.equal(hex(v.subarray(0, 2)), '8a5c');
  assert.equal(hex(saltDecrypt(v, secret, ra)), hex(key));
  // a wrong secret or authenticator gives another key (or a Key-Length that does not fit)
  try {
    assert.notEqual(hex(saltDecrypt(v, enc('testing124'), ra)), hex(key));
  } catch (e) {
    assert.ok(e instanceof ProtocolError);
  }
  // first block by hand: b1 = MD5(secret ‖ RA ‖ salt), c1 = p1 xor b1
  const b1 = createHash('md5').update(secret).update(ra).update(salt).digest();
  const p1 = new Uint8Array(16);
  p1[0] = 16;
  p1.set(key.subarray(0, 15), 1);
  assert.equal(hex(v.subarray(2, 18)), hex(p1.map((x, i) => x ^ b1[i]!)));
  // malformed: too short, not 2 + 16n, salt high bit clear, Key-Length too large
  const malformed: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['salt only', fromHex('8a5c')],
    ['17 octets', new Uint8Array(17).fill(0x80)],
    ['35 octets', new Uint8Array(35).fill(0x80)],
    ['salt high bit clear', Uint8Array.of(0x0a, 0x5c, ...v.subarray(2))],
  ];
  for (const [what, bad] of malformed) {
    assert.throws(
      () => saltDecrypt(bad, secret, ra),
      (e: unknown) => e instanceof ProtocolError && e.code === 'BAD_FIELD',
      what,
    );
  }
  const tooLong = saltEncrypt(new Uint8Array(15), secret, ra, salt); // one block
  const forged = tooLong.slice();
  // flip Key-Length from 15 to 200 (xor on the ciphertext flips the plaintext)
  forged[2] = forged[2]! ^ 15 ^ 200;
  assert.throws(
    () => saltDecrypt(forged, secret, ra),
    (e: unknown) => e instanceof ProtocolError && /Key-Length 200/.test(e.message),
  );
  assert.throws(() => saltEncrypt(key, secret, ra, fromHex('0a5c')), RangeError);
});

test('Message-Authenticator: on an Access-Request and its reply, checked and required', () => {
  const secret = enc('testing123');
  const ra = fromHex('1111111111111111aaaaaaaaaaaaaaaa');
  const req = signRadiusPacket(
    {
      code: RadiusCode.AccessRequest,
      id: 7,
      authenticator: ra,
      attributes: [textAttr(Attr.UserName, 'alice')],
    },
    secret,
    { messageAuthenticator: true },
  );
  // the Message-Authenticator comes first (BlastRADIUS advice) and the authenticator is kept
  assert.equal(req[20], Attr.MessageAuthenticator);
  assert.equal(hex(req.subarray(4, 20)), hex(ra));
  assert.equal(verifyRadiusRequest(req, secret, { requireMessageAuthenticator: true }), undefined);
  const tampered = req.slice();
  tampered[tampered.length - 1] = tampered.at(-1)! ^ 1;
  assert.match(verifyRadiusRequest(tampered, secret) ?? '', /Message-Authenticator is wrong/);
  // reply
  const accept = signRadiusPacket(
    {
      code: RadiusCode.AccessAccept,
      id: 7,
      authenticator: new Uint8Array(16),
      attributes: [u32Attr(Attr.SessionTimeout, 60)],
    },
    secret,
    { requestAuthenticator: ra, messageAuthenticator: true },
  );
  assert.equal(verifyRadiusResponse(accept, ra, secret, { requireMessageAuthenticator: true }), undefined);
  const other = fromHex('2222222222222222aaaaaaaaaaaaaaaa');
  assert.match(verifyRadiusResponse(accept, other, secret) ?? '', /Response Authenticator/);
  // a reply whose Message-Authenticator was changed but the Response Authenticator recomputed
  const forged = decodeRadiusPacket(accept);
  forged.attributes[0] = { type: Attr.MessageAuthenticator, value: new Uint8Array(16).fill(9) };
  const reSigned = signRadiusPacket(forged, secret, { requestAuthenticator: ra });
  assert.match(verifyRadiusResponse(reSigned, ra, secret) ?? '', /Message-Authenticator is wrong/);
});

test('Accounting-Request and CoA-Request authenticators (RFC 2866 §3, RFC 5176 §2.3)', () => {
  const secret = enc('acct-secret');
  for (const code of [RadiusCode.AccountingRequest, RadiusCode.CoaRequest, RadiusCode.DisconnectRequest]) {
    for (const ma of [false, true]) {
      const bytes = signRadiusPacket(
        { code, id: 3, authenticator: new Uint8Array(16), attributes: [textAttr(Attr.AcctSessionId, 'abc')] },
        secret,
        { messageAuthenticator: ma },
      );
      assert.equal(verifyRadiusRequest(bytes, secret, { requireMessageAuthenticator: ma }), undefined);
      assert.match(verifyRadiusRequest(bytes, enc('other')) ?? '', /Request Authenticator is wrong/);
      const p = decodeRadiusPacket(bytes);
      const reply = signRadiusPacket(
        {
          code: code === RadiusCode.AccountingRequest ? RadiusCode.AccountingResponse : code + 1,
          id: 3,
          authenticator: new Uint8Array(16),
          attributes: [],
        },
        secret,
        { requestAuthenticator: p.authenticator, messageAuthenticator: ma },
      );
      assert.equal(verifyRadiusResponse(reply, p.authenticator, secret), undefined);
    }
  }
});

test('Microsoft vendor attributes: one VSA each on encoding; several per VSA decoded; others kept raw', () => {
  const attrs: RadiusAttribute[] = [
    { type: MsAttr.ChapChallenge, vendor: VENDOR_MICROSOFT, value: new Uint8Array(16).fill(1) },
    { type: MsAttr.Chap2Response, vendor: VENDOR_MICROSOFT, value: new Uint8Array(50).fill(2) },
    { type: Attr.VendorSpecific, value: fromHex('00000009 01 05 616263') },
  ];
  const p: RadiusPacket = {
    code: RadiusCode.AccessRequest,
    id: 1,
    authenticator: new Uint8Array(16),
    attributes: attrs,
  };
  const bytes = encodeRadiusPacket(p);
  assert.equal(hex(bytes.subarray(20, 28)), '1a18000001370b12');
  assert.deepEqual(decodeRadiusPacket(bytes).attributes, attrs);
  // two sub-attributes in one VSA (as some servers send them)
  const two = fromHex(`0c 01 0026 ${'00'.repeat(16)} 1a 12 00000137 1c 06 0a000001 1d 06 0a000002`);
  const d = decodeRadiusPacket(two);
  assert.deepEqual(
    d.attributes.map((a) => [a.vendor, a.type, hex(a.value)]),
    [
      [311, 28, '0a000001'],
      [311, 29, '0a000002'],
    ],
  );
});

test('MikroTik vendor attributes (14988): Mikrotik-Rate-Limit decoded from the wire and encoded back', () => {
  // Access-Accept (34 octets) with one Vendor-Specific (26) of 14 octets: Vendor-Id 14988
  // (0x00003a8c), Vendor-Type 8, Vendor-Length 8, "10M/5M".
  const wire = fromHex(`02 07 0022 ${'00'.repeat(16)} 1a 0e 00003a8c 08 08 31304d2f354d`);
  const p = decodeRadiusPacket(wire);
  assert.deepEqual(
    p.attributes.map((a) => [
      a.vendor,
      a.type,
      attributeName(a.type, a.vendor),
      new TextDecoder().decode(a.value),
    ]),
    [[14988, MikrotikAttr.RateLimit, 'Mikrotik-Rate-Limit', '10M/5M']],
  );
  assert.deepEqual(encodeRadiusPacket(p), wire);
  assert.equal(attributeName(99, VENDOR_MIKROTIK), 'Mikrotik-Attr-99');
  assert.equal(attributeName(MikrotikAttr.HostIp, VENDOR_MIKROTIK), 'Mikrotik-Host-IP');
  rejects(fromHex(`02 07 001c ${'00'.repeat(16)} 1a 08 00003a8c 08 01`), 'BAD_LENGTH');
});

test("attribute names are the dictionaries' (Framed-IP-Address, MS-CHAP2-Success, MS-Primary-DNS-Server)", () => {
  assert.equal(attributeName(Attr.FramedIpAddress), 'Framed-IP-Address');
  assert.equal(attributeName(Attr.NasIpAddress), 'NAS-IP-Address');
  assert.equal(attributeName(Attr.FramedMtu), 'Framed-MTU');
  assert.equal(attributeName(Attr.FilterId), 'Filter-Id');
  assert.equal(attributeName(Attr.ChapChallenge), 'CHAP-Challenge');
  assert.equal(attributeName(MsAttr.Chap2Success, VENDOR_MICROSOFT), 'MS-CHAP2-Success');
  assert.equal(attributeName(MsAttr.PrimaryDnsServer, VENDOR_MICROSOFT), 'MS-Primary-DNS-Server');
  assert.equal(attributeName(MsAttr.MppeEncryptionPolicy, VENDOR_MICROSOFT), 'MS-MPPE-Encryption-Policy');
  assert.equal(attributeName(MsAttr.ChapCpw1, VENDOR_MICROSOFT), 'MS-CHAP-CPW-1');
});

const MALFORMED: [string, string, string][] = [
  ['empty', '', 'TRUNCATED'],
  ['header cut', '01 00 00 14 0000', 'TRUNCATED'],
  ['Length below the header', `01 00 00 13 ${'00'.repeat(16)}`, 'BAD_LENGTH'],
  ['Length above 4096', `01 00 10 01 ${'00'.repeat(16)}`, 'TOO_LARGE'],
  ['Length beyond the datagram', `01 00 00 16 ${'00'.repeat(16)}`, 'TRUNCATED'],
  ['unknown code', `09 00 00 14 ${'00'.repeat(16)}`, 'UNKNOWN_TYPE'],
  ['attribute Length 1', `01 00 00 16 ${'00'.repeat(16)} 01 01`, 'BAD_LENGTH'],
  ['attribute Length 0', `01 00 00 16 ${'00'.repeat(16)} 01 00`, 'BAD_LENGTH'],
  ['attribute past the end', `01 00 00 17 ${'00'.repeat(16)} 01 04 61`, 'TRUNCATED'],
  ['lone attribute type', `01 00 00 15 ${'00'.repeat(16)} 01`, 'TRUNCATED'],
  ['Message-Authenticator of 4 octets', `01 00 00 1a ${'00'.repeat(16)} 50 06 00000000`, 'BAD_FIELD'],
  [
    'two Message-Authenticators',
    `01 00 00 38 ${'00'.repeat(16)} 50 12 ${'00'.repeat(16)} 50 12 ${'00'.repeat(16)}`,
    'BAD_FIELD',
  ],
  ['Vendor-Specific of 4 octets', `01 00 00 1a ${'00'.repeat(16)} 1a 06 00000137`, 'BAD_LENGTH'],
  ['Microsoft sub-attribute Length 1', `01 00 00 1c ${'00'.repeat(16)} 1a 08 00000137 1c 01`, 'BAD_LENGTH'],
  [
    'Microsoft sub-attribute past the VSA',
    `01 00 00 1c ${'00'.repeat(16)} 1a 08 00000137 1c 06`,
    'TRUNCATED',
  ],
];

for (const [what, bytes, code] of MALFORMED) {
  test(`malformed: ${what} → ${code}`, () => rejects(fromHex(bytes), code));
}

test('octets after Length are padding and ignored', () => {
  const padded = new Uint8Array(RFC2865_ACCEPT.length + 5);
  padded.set(RFC2865_ACCEPT);
  assert.deepEqual(decodeRadiusPacket(padded), decodeRadiusPacket(RFC2865_ACCEPT));
});

test('a packet truncated at every byte is refused (TRUNCATED)', () => {
  const full = signRadiusPacket(
    {
      code: RadiusCode.AccessAccept,
      id: 9,
      authenticator: new Uint8Array(16),
      attributes: [
        u32Attr(Attr.FramedIpAddress, 0x0a000005),
        { type: MsAttr.MppeSendKey, vendor: VENDOR_MICROSOFT, value: new Uint8Array(34).fill(0x81) },
      ],
    },
    enc('x'),
    { requestAuthenticator: new Uint8Array(16), messageAuthenticator: true },
  );
  for (let n = 0; n < full.length; n++) rejects(full.subarray(0, n), 'TRUNCATED');
  assert.equal(decodeRadiusPacket(full).attributes.length, 3);
});

test('random packets: decode throws only ProtocolError; what decodes re-encodes to the same octets', () => {
  const attr = fc.oneof(
    fc.record({
      type: fc.integer({ min: 1, max: 255 }).filter((t) => t !== 26 && t !== 80),
      value: fc.uint8Array({ maxLength: 253 }),
    }),
    fc.record({
      type: fc.integer({ min: 0, max: 255 }),
      vendor: fc.constant(VENDOR_MICROSOFT),
      value: fc.uint8Array({ maxLength: 247 }),
    }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 255 }), fc.array(attr, { maxLength: 12 }), (id, generated) => {
      const attributes: RadiusAttribute[] = generated.map((a) => ({ ...a }));
      const p: RadiusPacket = {
        code: RadiusCode.AccessAccept,
        id,
        authenticator: new Uint8Array(16).fill(id),
        attributes,
      };
      const bytes = encodeRadiusPacket(p);
      const back = decodeRadiusPacket(bytes);
      assert.deepEqual(back, p);
      assert.equal(hex(encodeRadiusPacket(back)), hex(bytes));
    }),
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      try {
        decodeRadiusPacket(bytes);
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
      }
    }),
  );
});

test('encoding refuses values too long for their attribute and packets over 4096 octets', () => {
  const base = { code: RadiusCode.AccessRequest, id: 0, authenticator: new Uint8Array(16) };
  assert.throws(
    () => encodeRadiusPacket({ ...base, attributes: [{ type: 1, value: new Uint8Array(254) }] }),
    RangeError,
  );
  assert.throws(
    () => encodeRadiusPacket({ ...base, attributes: [{ type: 1, vendor: 311, value: new Uint8Array(248) }] }),
    RangeError,
  );
  const many = Array.from({ length: 17 }, () => ({ type: 18, value: new Uint8Array(253) }));
  assert.throws(() => encodeRadiusPacket({ ...base, attributes: many }), RangeError);
});
