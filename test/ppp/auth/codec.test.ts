import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ChapCode, decodeChapPacket, encodeChapPacket } from '../../../src/ppp/auth/chap-codec.ts';
import { formatMsChapFailure, parseMsChapFailure } from '../../../src/ppp/auth/ms-common.ts';
import { decodePapPacket, encodePapPacket, PapCode } from '../../../src/ppp/auth/pap-codec.ts';
import { fromHex } from '../../../src/wire/bytes.ts';
import { isProtocolError } from '../../../src/wire/errors.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isProtocolError(e)) return e.code;
    throw e;
  }
  return 'ok';
}

describe('CHAP codec (RFC 1994 §4)', () => {
  it('round-trips a Challenge and ignores padding past Length', () => {
    const bytes = encodeChapPacket({
      code: ChapCode.Challenge,
      id: 7,
      value: fromHex('01020304'),
      name: new TextEncoder().encode('srv'),
    });
    assert.deepEqual(bytes, fromHex('01 07 000c 04 01020304 737276'));
    const padded = new Uint8Array([...bytes, 0, 0, 0]);
    const p = decodeChapPacket(padded);
    assert.equal(p.code, ChapCode.Challenge);
    assert.ok('value' in p);
    assert.deepEqual(p.value, fromHex('01020304'));
    assert.deepEqual(p.name, new TextEncoder().encode('srv'));
  });

  it('round-trips Success with a message', () => {
    const p = decodeChapPacket(encodeChapPacket({ code: ChapCode.Success, id: 1, message: fromHex('4f4b') }));
    assert.deepEqual(p, { code: ChapCode.Success, id: 1, message: fromHex('4f4b') });
  });

  const malformed: [string, string, string][] = [
    ['empty', '', 'TRUNCATED'],
    ['header cut', '02 01 00', 'TRUNCATED'],
    ['Length below header', '02 01 0003', 'BAD_LENGTH'],
    ['Length beyond octets', '02 01 0010 01 aa', 'BAD_LENGTH'],
    ['Value-Size past Length', '02 01 0007 05 aabb', 'TRUNCATED'],
    ['Value-Size 0', '01 01 0005 00', 'BAD_FIELD'],
    ['no Value-Size', '01 01 0004', 'TRUNCATED'],
    ['unknown code', '07 01 0004', 'UNKNOWN_TYPE'],
    ['code 0', '00 01 0004', 'UNKNOWN_TYPE'],
  ];
  for (const [name, hexText, code] of malformed) {
    it(`rejects ${name} with ${code}`, () =>
      assert.equal(
        codeOf(() => decodeChapPacket(fromHex(hexText))),
        code,
      ));
  }

  it('decodes arbitrary bytes or throws ProtocolError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        codeOf(() => decodeChapPacket(b));
      }),
    );
  });
});

describe('PAP codec (RFC 1334 §2.2)', () => {
  it('round-trips an Authenticate-Request', () => {
    const enc = new TextEncoder();
    const bytes = encodePapPacket({
      code: PapCode.AuthenticateRequest,
      id: 3,
      peerId: enc.encode('al'),
      password: enc.encode('pw'),
    });
    assert.deepEqual(bytes, fromHex('01 03 000a 02 616c 02 7077'));
    assert.deepEqual(decodePapPacket(bytes), {
      code: PapCode.AuthenticateRequest,
      id: 3,
      peerId: enc.encode('al'),
      password: enc.encode('pw'),
    });
  });

  it('accepts an Ack without Msg-Length (as pppd does)', () => {
    assert.deepEqual(decodePapPacket(fromHex('02 05 0004')), {
      code: PapCode.AuthenticateAck,
      id: 5,
      message: new Uint8Array(0),
    });
  });

  const malformed: [string, string, string][] = [
    ['header cut', '01', 'TRUNCATED'],
    ['Length beyond octets', '01 01 0009 00 00', 'BAD_LENGTH'],
    ['Peer-ID past Length', '01 01 0006 05 61', 'TRUNCATED'],
    ['missing Passwd-Length', '01 01 0006 01 61', 'TRUNCATED'],
    ['octets after Password', '01 01 0008 00 01 61 ff', 'BAD_LENGTH'],
    ['Msg-Length past Length', '03 01 0006 09 61', 'TRUNCATED'],
    ['unknown code', '04 01 0004', 'UNKNOWN_TYPE'],
  ];
  for (const [name, hexText, code] of malformed) {
    it(`rejects ${name} with ${code}`, () =>
      assert.equal(
        codeOf(() => decodePapPacket(fromHex(hexText))),
        code,
      ));
  }

  it('decodes arbitrary bytes or throws ProtocolError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        codeOf(() => decodePapPacket(b));
      }),
    );
  });
});

describe('MS-CHAP Failure messages', () => {
  it('formats the RFC 2759 §6 layout', () => {
    const text = formatMsChapFailure({
      error: 691,
      retry: false,
      challenge: fromHex('00112233445566778899aabbccddeeff'),
      version: 3,
      message: 'Authentication failed',
    });
    assert.equal(text, 'E=691 R=0 C=00112233445566778899AABBCCDDEEFF V=3 M=Authentication failed');
    const parsed = parseMsChapFailure(text);
    assert.equal(parsed?.error, 691);
    assert.equal(parsed?.retry, false);
    assert.equal(parsed?.version, 3);
    assert.equal(parsed?.message, 'Authentication failed');
    assert.deepEqual(parsed?.challenge, fromHex('00112233445566778899aabbccddeeff'));
  });

  it('parses pppd-style and partial messages', () => {
    assert.equal(parseMsChapFailure('E=649 R=0')?.error, 649);
    assert.equal(parseMsChapFailure('Access denied'), undefined);
  });
});
