import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeFrame, encodeFrame } from '../../src/ppp/frame.ts';
import { decodeOptions, encodeOptions } from '../../src/ppp/options.ts';
import { decodeControlPacket, encodeControlPacket } from '../../src/ppp/packet.ts';
import { fromHex } from '../../src/wire/bytes.ts';
import { isProtocolError } from '../../src/wire/errors.ts';

test('frames: with and without ff03, 1- and 2-octet protocol fields', () => {
  const rows: [string, number, string][] = [
    ['ff03 c021 0102', 0xc021, '0102'],
    ['c021 0102', 0xc021, '0102'],
    ['ff03 0021 45', 0x21, '45'],
    ['ff03 21 45', 0x21, '45'],
    ['21 45', 0x21, '45'],
    ['fd 9000', 0xfd, '9000'],
    ['8021', 0x8021, ''],
  ];
  for (const [h, protocol, info] of rows) {
    const f = decodeFrame(fromHex(h));
    assert.equal(f.protocol, protocol, h);
    assert.equal(Buffer.from(f.info).toString('hex'), info, h);
  }
});

test('frames: malformed protocol fields throw ProtocolError', () => {
  const rows: [string, string][] = [
    ['', 'TRUNCATED'],
    ['ff03', 'TRUNCATED'],
    ['c0', 'TRUNCATED'],
    ['c020 00', 'BAD_FIELD'], // even low octet
    ['ff03 0000', 'BAD_FIELD'],
  ];
  for (const [h, code] of rows) {
    assert.throws(
      () => decodeFrame(fromHex(h)),
      (e) => isProtocolError(e) && e.code === code,
      h,
    );
  }
});

test('frames: LCP never compressed; others follow ACFC/PFC', () => {
  const info = new Uint8Array([1, 2]);
  const all = { acfc: true, pfc: true };
  assert.equal(Buffer.from(encodeFrame(0xc021, info, all)).toString('hex'), 'ff03c0210102');
  assert.equal(Buffer.from(encodeFrame(0x21, info, all)).toString('hex'), '210102');
  assert.equal(Buffer.from(encodeFrame(0x8021, info, all)).toString('hex'), '80210102');
  assert.equal(Buffer.from(encodeFrame(0x21, info)).toString('hex'), 'ff0300210102');
  assert.equal(
    Buffer.from(encodeFrame(0x21, info, { acfc: false, pfc: true })).toString('hex'),
    'ff03210102',
  );
});

test('frames: protocol 0x00ff keeps two octets under PFC, so ff 03 in its information is not read as Address/Control', () => {
  // Found by fuzzing (test/fuzz/regressions/ppp-frame): with ACFC + PFC, 0x00ff was sent as the single
  // octet ff, and information starting 03 then decoded as Address/Control followed by a bad protocol.
  const info = fromHex('03 00 00 08');
  const all = { acfc: true, pfc: true };
  assert.equal(Buffer.from(encodeFrame(0xff, info, all)).toString('hex'), '00ff03000008');
  const back = decodeFrame(encodeFrame(0xff, info, all));
  assert.equal(back.protocol, 0xff);
  assert.deepEqual(back.info, info);
  assert.equal(
    Buffer.from(encodeFrame(0xfd, info, all)).toString('hex'),
    'fd03000008',
    '0x00fd still compresses',
  );
});

test('control packets: header checks; padding beyond Length ignored', () => {
  const p = decodeControlPacket(fromHex('01 02 0006 0102 ffff'), 'lcp');
  assert.deepEqual(p, { code: 1, id: 2, data: fromHex('0102') });
  for (const [h, code] of [
    ['010200', 'TRUNCATED'],
    ['01020003', 'BAD_LENGTH'],
    ['01020000', 'BAD_LENGTH'],
    ['0102000801', 'TRUNCATED'],
  ]) {
    assert.throws(
      () => decodeControlPacket(fromHex(h!), 'lcp'),
      (e) => isProtocolError(e) && e.code === code,
      h,
    );
  }
  assert.deepEqual(encodeControlPacket(9, 0x101, fromHex('aa')), fromHex('09 01 0005 aa'));
});

test('options: round trip at an offset; length 0/1/oversized/missing are malformed', () => {
  const opts = [
    { type: 1, data: fromHex('0578') },
    { type: 7, data: new Uint8Array(0) },
  ];
  const bytes = encodeOptions(opts);
  assert.deepEqual(bytes, fromHex('01 04 0578 07 02'));
  const inner = new Uint8Array(3 + bytes.length);
  inner.set(bytes, 3);
  assert.deepEqual(decodeOptions(inner.subarray(3), 'lcp'), opts);
  for (const [h, code] of [
    ['0100', 'BAD_LENGTH'],
    ['0101', 'BAD_LENGTH'],
    ['010505', 'TRUNCATED'],
    ['0702 01', 'TRUNCATED'],
  ]) {
    assert.throws(
      () => decodeOptions(fromHex(h!), 'lcp'),
      (e) => isProtocolError(e) && e.code === code,
      h,
    );
  }
});

test('property: decoders return or throw ProtocolError, nothing else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), (b) => {
      for (const f of [
        () => decodeFrame(b),
        () => decodeControlPacket(b, 'lcp'),
        () => decodeOptions(b, 'lcp'),
      ]) {
        try {
          f();
        } catch (e) {
          assert.ok(isProtocolError(e));
        }
      }
    }),
    { numRuns: 2000 },
  );
});
