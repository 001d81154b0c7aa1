import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  decodeGreHeader,
  encodeGreHeader,
  encodeGrePacket,
  GRE_DROP_WORDS,
  GRE_HEADER_LENGTH_MAX,
  GRE_HEADER_LENGTH_MIN,
  GRE_HEADER_LENGTH_ONE,
  type GreDropReason,
  GreHeaderError,
  greHeaderLength,
  readGreHeader,
} from '../../src/gre/codec.ts';
import { fromHex, hex } from '../../src/wire/bytes.ts';
import { ProtocolError } from '../../src/wire/errors.ts';

// A data packet with a piggy-backed ack, field by field (RFC 2637 §4.1).
const DATA_WITH_ACK = `
  30 81        # C=0 R=0 K=1 S=1 s=0 Recur=0 | A=1 Flags=0 Ver=1
  88 0b        # Protocol Type: PPP
  00 04        # Key (HW): payload length 4
  12 34        # Key (LW): call id 0x1234
  00 00 00 07  # sequence number 7
  00 00 00 05  # acknowledgment number 5
  ff 03 c0 21  # payload (start of a PPP LCP frame)
`;

test('decodes a documented data packet with a piggy-backed ack', () => {
  const h = decodeGreHeader(fromHex(DATA_WITH_ACK));
  assert.deepEqual(h, { callId: 0x1234, payloadLength: 4, seq: 7, ack: 5, headerLength: 16 });
});

test('encodes exactly the documented bytes', () => {
  const packet = encodeGrePacket({ callId: 0x1234, seq: 7, ack: 5 }, fromHex('ff03c021'));
  assert.equal(hex(packet), hex(fromHex(DATA_WITH_ACK)));
});

const cases = [
  { name: 'data with ack', seq: 1, ack: 2, length: 16 },
  { name: 'data only', seq: 0xffffffff, ack: undefined, length: 12 },
  { name: 'ack only', seq: undefined, ack: 0x80000000, length: 12 },
  { name: 'neither', seq: undefined, ack: undefined, length: 8 },
] as const;

for (const c of cases) {
  test(`round-trips ${c.name} at an offset`, () => {
    const payload = Uint8Array.from({ length: c.seq === undefined ? 0 : 5 }, (_, i) => i + 1);
    const buf = new Uint8Array(7 + c.length + payload.length + 3).fill(0xee);
    const fields = { callId: 0xbeef, payloadLength: payload.length, seq: c.seq, ack: c.ack };
    const n = encodeGreHeader(buf, 7, fields);
    assert.equal(n, c.length);
    assert.equal(n, greHeaderLength(c.seq !== undefined, c.ack !== undefined));
    buf.set(payload, 7 + n);
    assert.equal(buf[6], 0xee, 'byte before the header untouched');
    const h = decodeGreHeader(buf, 7);
    assert.deepEqual(h, { ...fields, headerLength: c.length });
    // re-encoding the decoded header gives the same bytes
    const again = new Uint8Array(c.length);
    encodeGreHeader(again, 0, h);
    assert.equal(hex(again), hex(buf.subarray(7, 7 + c.length)));
    assert.equal(hex(encodeGrePacket(h, payload)), hex(buf.subarray(7, 7 + n + payload.length)));
  });
}

test('header sizes', () => {
  assert.deepEqual([GRE_HEADER_LENGTH_MIN, GRE_HEADER_LENGTH_ONE, GRE_HEADER_LENGTH_MAX], [8, 12, 16]);
});

test('extra bytes after the payload are ignored; reserved Flags bits too', () => {
  const p = fromHex('3079 880b 0001 0002 00000009 aa bbcc');
  assert.deepEqual(decodeGreHeader(p), {
    callId: 2,
    payloadLength: 1,
    seq: 9,
    ack: undefined,
    headerLength: 12,
  });
});

function rejects(bytes: Uint8Array, reason: GreDropReason, offset = 0): void {
  assert.throws(
    () => decodeGreHeader(bytes, offset),
    (e: unknown) =>
      e instanceof GreHeaderError && e instanceof ProtocolError && e.layer === 'gre' && e.reason === reason,
    `expected ${reason} for ${hex(bytes)}`,
  );
}

const MALFORMED: [name: string, hex: string, reason: GreDropReason][] = [
  ['checksum bit', 'b081 880b 0000 0001 00000001 00000001', 'checksum-present'],
  ['routing bit', '7081 880b 0000 0001 00000001 00000001', 'routing-present'],
  ['strict source route bit', '3881 880b 0000 0001 00000001 00000001', 'strict-source-route'],
  ['recursion 1', '3181 880b 0000 0001 00000001 00000001', 'recursion'],
  ['recursion 7', '3781 880b 0000 0001 00000001 00000001', 'recursion'],
  ['key bit clear', '1081 880b 0000 0001 00000001 00000001', 'key-absent'],
  ['version 0 (plain GRE)', '3080 880b 0000 0001 00000001 00000001', 'bad-version'],
  ['version 2', '3082 880b 0000 0001 00000001 00000001', 'bad-version'],
  ['protocol IPv4', '3081 0800 0000 0001 00000001 00000001', 'bad-protocol'],
  ['payload length one too many', '3001 880b 0003 0001 00000001 aabb', 'payload-truncated'],
  ['payload length 0xffff', '2081 880b ffff 0001 00000001', 'payload-truncated'],
  ['empty', '', 'truncated-header'],
  ['S set, seq missing', '3001 880b 0000 0001', 'truncated-header'],
  ['S and A set, ack missing', '3081 880b 0000 0001 00000001', 'truncated-header'],
];

for (const [name, h, reason] of MALFORMED) {
  test(`rejects ${name} as ${reason}`, () => {
    rejects(fromHex(h), reason);
    assert.equal(readGreHeader(fromHex(h)), reason, 'the non-throwing decoder gives the same reason');
    // the same bytes inside a larger buffer, at an offset
    const big = new Uint8Array(3 + fromHex(h).length);
    big.set(fromHex(h), 3);
    rejects(big, reason, 3);
  });
}

test('each rejection reason is covered by the table', () => {
  const all: GreDropReason[] = [
    'truncated-header',
    'checksum-present',
    'routing-present',
    'strict-source-route',
    'recursion',
    'key-absent',
    'bad-version',
    'bad-protocol',
    'payload-truncated',
  ];
  assert.deepEqual(new Set(MALFORMED.map((m) => m[2])), new Set(all));
});

test('a packet truncated at every byte is rejected with the right reason', () => {
  const full = fromHex(DATA_WITH_ACK);
  for (let n = 0; n < full.length; n++) {
    rejects(full.subarray(0, n), n < 16 ? 'truncated-header' : 'payload-truncated');
  }
  assert.equal(decodeGreHeader(full).payloadLength, 4);
});

test('arbitrary bytes: decode returns a consistent header or throws GreHeaderError, nothing else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat(4), (bytes, off) => {
      const offset = Math.min(off, bytes.length);
      try {
        const h = decodeGreHeader(bytes, offset);
        assert.ok(offset + h.headerLength + h.payloadLength <= bytes.length);
      } catch (e) {
        assert.ok(e instanceof GreHeaderError, String(e));
      }
    }),
    { numRuns: 2000 },
  );
});

test('encoder refuses out-of-range fields and short buffers (programming errors)', () => {
  assert.throws(
    () => encodeGreHeader(new Uint8Array(11), 0, { callId: 1, payloadLength: 0, seq: 1 }),
    RangeError,
  );
  assert.throws(
    () => encodeGreHeader(new Uint8Array(16), 0, { callId: 0x10000, payloadLength: 0 }),
    RangeError,
  );
  assert.throws(() => encodeGreHeader(new Uint8Array(16), 0, { callId: 1, payloadLength: -1 }), RangeError);
});

test('readGreHeader never throws: the same header as decodeGreHeader, or the same reason as a string', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: -2, max: 44 }), (bytes, offset) => {
      const r = readGreHeader(bytes, offset);
      let thrown: unknown;
      let h: ReturnType<typeof decodeGreHeader> | undefined;
      try {
        h = decodeGreHeader(bytes, offset);
      } catch (e) {
        thrown = e;
      }
      if (typeof r === 'string') {
        assert.ok(thrown instanceof GreHeaderError && thrown.reason === r, `${r} vs ${String(thrown)}`);
        assert.ok(GRE_DROP_WORDS[r].length > 0);
      } else {
        assert.deepEqual(r, h);
      }
    }),
    { numRuns: 3000 },
  );
  assert.deepEqual(readGreHeader(fromHex(DATA_WITH_ACK)), decodeGreHeader(fromHex(DATA_WITH_ACK)));
});
