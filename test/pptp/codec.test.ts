import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  type ControlMessage,
  controlMessageLength,
  controlTypeCode,
  decodeControlMessage,
  decodeText,
  describeControlMessage,
  encodeControlMessage,
  encodeText,
} from '../../src/pptp/codec.ts';
import { CONTROL_MESSAGE_LENGTH, ControlType, PPTP_MAGIC_COOKIE } from '../../src/pptp/constants.ts';
import { fromHex, hex } from '../../src/wire/bytes.ts';
import { ProtocolError, type ProtocolErrorCode } from '../../src/wire/errors.ts';
import { SAMPLES } from './samples.ts';

function codeOf(fn: () => unknown): ProtocolErrorCode | 'none' {
  try {
    fn();
    return 'none';
  } catch (e) {
    if (e instanceof ProtocolError) return e.code;
    throw e;
  }
}

test('every control type has a sample and the exact RFC 2637 length', () => {
  assert.equal(SAMPLES.length, Object.keys(ControlType).length);
  for (const msg of SAMPLES) {
    const bytes = encodeControlMessage(msg);
    assert.equal(bytes.length, controlMessageLength(msg.type), msg.type);
    assert.equal(bytes.length, CONTROL_MESSAGE_LENGTH[controlTypeCode(msg.type)]);
    const view = new DataView(bytes.buffer);
    assert.equal(view.getUint16(0), bytes.length, 'Length field');
    assert.equal(view.getUint16(2), 1, 'PPTP Message Type');
    assert.equal(view.getUint32(4), PPTP_MAGIC_COOKIE);
    assert.equal(view.getUint16(8), controlTypeCode(msg.type));
    assert.equal(view.getUint16(10), 0, 'Reserved0');
  }
});

test('round trip: encode → decode → encode, also at an offset inside a larger buffer', () => {
  for (const msg of SAMPLES) {
    const bytes = encodeControlMessage(msg);
    assert.deepEqual(decodeControlMessage(bytes), msg);
    assert.deepEqual(encodeControlMessage(decodeControlMessage(bytes)), bytes);
    const big = new Uint8Array(bytes.length + 37);
    big.fill(0xee);
    big.set(bytes, 17);
    assert.deepEqual(decodeControlMessage(big, 17), msg, `${msg.type} at offset 17`);
    assert.deepEqual(decodeControlMessage(big.subarray(17)), msg, `${msg.type} in a subarray`);
  }
});

test('a known Start-Control-Connection-Request, byte for byte (RFC 2637 §2.1 layout)', () => {
  const bytes = encodeControlMessage(SAMPLES[0]!);
  const head = hex(bytes.subarray(0, 28));
  assert.equal(
    head,
    '009c' + // Length 156
      '0001' + // PPTP Message Type: control
      '1a2b3c4d' + // Magic Cookie
      '0001' + // Start-Control-Connection-Request
      '0000' + // Reserved0
      '0100' + // Protocol Version 1.0
      '0000' + // Reserved1
      '00000003' + // Framing Capabilities
      '00000001' + // Bearer Capabilities
      '0000' + // Maximum Channels
      '0a28', // Firmware Revision
  );
  assert.equal(decodeText(bytes.subarray(28, 92)), 'client-pc');
  assert.equal(decodeText(bytes.subarray(92, 156)), 'Microsoft Windows NT');
});

test('the Outgoing-Call-Request carries the phone number length', () => {
  const bytes = encodeControlMessage(SAMPLES[6]!);
  assert.equal(new DataView(bytes.buffer).getUint16(36), '555-0100'.length);
});

test('reserved fields are written as zero and tolerated when non-zero', () => {
  const bytes = encodeControlMessage({ type: 'call-clear-request', callId: 9 });
  bytes[10] = 0xff; // Reserved0
  bytes[14] = 0x12; // Reserved1
  assert.deepEqual(decodeControlMessage(bytes), { type: 'call-clear-request', callId: 9 });
});

test('fixed text fields: stop at the first NUL, any byte as latin1, truncated and NUL-padded', () => {
  assert.equal(decodeText(fromHex('41 42 00 43')), 'AB');
  assert.equal(decodeText(fromHex('ff e9 80')), '\u00ff\u00e9\u0080');
  assert.equal(decodeText(new Uint8Array(4).fill(0x41)), 'AAAA', 'no NUL at all');
  assert.deepEqual(encodeText('héllo€', 8), fromHex('68 e9 6c 6c 6f 3f 00 00'));
  assert.deepEqual(encodeText('x'.repeat(70), 64), new Uint8Array(64).fill(0x78));
  const long = encodeControlMessage({
    ...(SAMPLES[0] as ControlMessage & { type: 'start-control-connection-request' }),
    hostName: 'h'.repeat(100),
  });
  assert.equal((decodeControlMessage(long) as { hostName: string }).hostName, 'h'.repeat(64));
});

test('encoding a field out of range is a caller error (RangeError)', () => {
  assert.throws(() => encodeControlMessage({ type: 'call-clear-request', callId: 0x10000 }), RangeError);
  assert.throws(() => encodeControlMessage({ type: 'echo-request', identifier: -1 }), RangeError);
  assert.throws(
    () => encodeControlMessage({ type: 'stop-control-connection-request', reason: 1.5 }),
    RangeError,
  );
});

test('malformed: every truncation of every message is TRUNCATED or a header error', () => {
  for (const msg of SAMPLES) {
    const bytes = encodeControlMessage(msg);
    for (let n = 0; n < bytes.length; n++) {
      assert.equal(
        codeOf(() => decodeControlMessage(bytes.subarray(0, n))),
        'TRUNCATED',
        `${msg.type} cut at ${n}`,
      );
    }
  }
});

test('malformed: a table of bad headers, asserting the error code', () => {
  const good = encodeControlMessage({ type: 'echo-request', identifier: 1 }); // 16 bytes
  const patch = (at: number, ...b: number[]): Uint8Array => {
    const c = good.slice();
    c.set(b, at);
    return c;
  };
  const padded = (len: number, type: number): Uint8Array => {
    const c = new Uint8Array(Math.max(len, 16));
    new DataView(c.buffer).setUint16(0, len);
    c.set([0, 1, 0x1a, 0x2b, 0x3c, 0x4d, 0, type], 2);
    return c;
  };
  const rows: [string, Uint8Array, ProtocolErrorCode][] = [
    ['length - 1', patch(0, 0, 15), 'BAD_LENGTH'],
    ['length + 1', patch(0, 0, 17), 'BAD_LENGTH'],
    ['length 0', patch(0, 0, 0), 'BAD_LENGTH'],
    ['length 12 (header only)', patch(0, 0, 12), 'BAD_LENGTH'],
    ['length 221', patch(0, 0, 221), 'TOO_LARGE'],
    ['length 0xffff', patch(0, 0xff, 0xff), 'TOO_LARGE'],
    ['Outgoing-Call-Request with length 167', padded(167, 7), 'BAD_LENGTH'],
    ['Outgoing-Call-Request with length 169', padded(169, 7), 'BAD_LENGTH'],
    ['Echo-Reply with length 16', padded(16, 6), 'BAD_LENGTH'],
    ['PPTP message type 2 (management)', patch(2, 0, 2), 'BAD_FIELD'],
    ['PPTP message type 0', patch(2, 0, 0), 'BAD_FIELD'],
    ['bad magic cookie', patch(4, 0x1a, 0x2b, 0x3c, 0x4e), 'BAD_MAGIC'],
    ['control type 0', patch(8, 0, 0), 'UNKNOWN_TYPE'],
    ['control type 16', patch(8, 0, 16), 'UNKNOWN_TYPE'],
    ['control type 0x0105', patch(8, 1, 5), 'UNKNOWN_TYPE'],
  ];
  for (const [name, bytes, code] of rows) {
    assert.equal(
      codeOf(() => decodeControlMessage(bytes)),
      code,
      name,
    );
  }
  assert.equal(
    codeOf(() => decodeControlMessage(good)),
    'none',
  );
});

test('a header error is reported even when the message is also truncated', () => {
  assert.equal(
    codeOf(() => decodeControlMessage(fromHex('0400'))),
    'TOO_LARGE',
  );
  assert.equal(
    codeOf(() => decodeControlMessage(fromHex('0010 0001 1a2b3c4e'))),
    'BAD_MAGIC',
  );
});

test('property: decoding arbitrary bytes returns a message or throws ProtocolError, nothing else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(20), (bytes, offset) => {
      try {
        decodeControlMessage(bytes, Math.min(offset, bytes.length));
      } catch (e) {
        assert.ok(e instanceof ProtocolError, String(e));
      }
    }),
    { numRuns: 2000 },
  );
});

test('property: valid headers with random bodies decode, and re-encode identically but for reserved bytes', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: SAMPLES.length - 1 }),
      fc.uint8Array({ minLength: 220, maxLength: 220 }),
      (i, noise) => {
        const msg = SAMPLES[i]!;
        const bytes = encodeControlMessage(msg);
        bytes.set(noise.subarray(0, bytes.length - 12), 12);
        const decoded = decodeControlMessage(bytes);
        assert.equal(decoded.type, msg.type);
        const again = decodeControlMessage(encodeControlMessage(decoded));
        assert.deepEqual(again, decoded);
      },
    ),
    { numRuns: 1000 },
  );
});

test('describeControlMessage names the message and its fields', () => {
  assert.equal(
    describeControlMessage({ type: 'echo-request', identifier: 7 }),
    '[Echo-Request identifier=7]',
  );
  assert.match(
    describeControlMessage(SAMPLES[6]!),
    /^\[Outgoing-Call-Request callId=4660 .*phoneNumber="555-0100"/,
  );
});
