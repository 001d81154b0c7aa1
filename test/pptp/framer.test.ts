import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CallIdAllocator } from '../../src/pptp/call-ids.ts';
import { type ControlMessage, encodeControlMessage } from '../../src/pptp/codec.ts';
import { ControlFramer } from '../../src/pptp/framer.ts';
import { fromHex } from '../../src/wire/bytes.ts';
import { ProtocolError, type ProtocolErrorCode } from '../../src/wire/errors.ts';
import { SAMPLES } from './samples.ts';

const STREAM = concat(SAMPLES.map(encodeControlMessage));

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function drain(f: ControlFramer): ControlMessage[] {
  const out: ControlMessage[] = [];
  for (let m = f.next(); m; m = f.next()) out.push(m);
  return out;
}

function errorCode(fn: () => unknown): ProtocolErrorCode | 'none' {
  try {
    fn();
    return 'none';
  } catch (e) {
    if (e instanceof ProtocolError) return e.code;
    throw e;
  }
}

test('framer: all messages at once', () => {
  const f = new ControlFramer();
  f.push(STREAM);
  assert.deepEqual(drain(f), SAMPLES);
  assert.equal(f.buffered, 0);
  assert.equal(f.next(), null);
});

test('framer: one byte at a time gives the same messages, each as soon as complete', () => {
  const f = new ControlFramer();
  const out: ControlMessage[] = [];
  for (const b of STREAM) {
    f.push(Uint8Array.of(b));
    out.push(...drain(f));
    assert.ok(f.buffered < 220);
  }
  assert.deepEqual(out, SAMPLES);
});

test('framer: random splits give the same messages', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: STREAM.length }), { maxLength: 30 }), (cuts) => {
      const points = [...new Set(cuts)].sort((a, b) => a - b);
      const f = new ControlFramer();
      const out: ControlMessage[] = [];
      let prev = 0;
      for (const p of [...points, STREAM.length]) {
        f.push(STREAM.subarray(prev, p));
        out.push(...drain(f));
        prev = p;
      }
      assert.deepEqual(out, SAMPLES);
    }),
    { numRuns: 200 },
  );
});

test('framer: keeps its own copy of a partial message (the caller may reuse its buffer)', () => {
  const bytes = encodeControlMessage(SAMPLES[0]!);
  const chunk = bytes.slice(0, 100);
  const f = new ControlFramer();
  f.push(chunk);
  assert.equal(f.next(), null);
  chunk.fill(0);
  f.push(bytes.subarray(100));
  assert.deepEqual(f.next(), SAMPLES[0]);
});

test('framer: impossible headers are rejected as soon as the field arrives, never buffered', () => {
  const rows: [string, string, ProtocolErrorCode][] = [
    ['huge length, 2 bytes in', '4000', 'TOO_LARGE'],
    ['length 221', '00dd', 'TOO_LARGE'],
    ['length below the smallest message', '000f', 'BAD_LENGTH'],
    ['management message type', '0010 0002', 'BAD_FIELD'],
    ['bad magic', '0010 0001 deadbeef', 'BAD_MAGIC'],
    ['unknown control type', '0010 0001 1a2b3c4d 0063', 'UNKNOWN_TYPE'],
    ['length not the size of the type', '00a8 0001 1a2b3c4d 0001', 'BAD_LENGTH'],
  ];
  for (const [name, hexText, code] of rows) {
    const f = new ControlFramer();
    f.push(fromHex(hexText));
    assert.equal(
      errorCode(() => f.next()),
      code,
      name,
    );
    // The error is sticky: the stream cannot be resynchronised.
    f.push(encodeControlMessage(SAMPLES[4]!));
    assert.equal(
      errorCode(() => f.next()),
      code,
      `${name} (again)`,
    );
    assert.equal(f.buffered, 0);
  }
});

test('framer: a good message then garbage yields the message, then the error', () => {
  const f = new ControlFramer();
  f.push(concat([encodeControlMessage(SAMPLES[4]!), fromHex('0010 0001 00000000')]));
  assert.deepEqual(f.next(), SAMPLES[4]);
  assert.equal(
    errorCode(() => f.next()),
    'BAD_MAGIC',
  );
});

test('property: random bytes into the framer only ever give messages, null or ProtocolError', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), (chunks) => {
      const f = new ControlFramer();
      for (const c of chunks) {
        f.push(c);
        try {
          drain(f);
        } catch (e) {
          assert.ok(e instanceof ProtocolError);
        }
        assert.ok(f.buffered <= 220);
      }
    }),
    { numRuns: 1000 },
  );
});

test('CallIdAllocator: unique, never 0, not reused while alive, reusable after release', () => {
  // A draw r stands for id first + r % span: 1 + r here (r in 0..65534), and 65535 maps to 1.
  let seq = [4, 4, 65535, 6];
  const ids = new CallIdAllocator(() => seq.shift() ?? 8);
  assert.equal(ids.allocate(), 5);
  assert.equal(ids.allocate(), 1, 'the collision with 5 retried; 65535 wraps to 1, never 0');
  assert.equal(ids.allocate(), 7);
  assert.equal(ids.size, 3);
  ids.release(5);
  assert.equal(ids.has(5), false);
  seq = [4];
  assert.equal(ids.allocate(), 5, 'released ids may come back');
  ids.release(12345); // unknown: no effect
  assert.equal(ids.size, 3);
});

test('CallIdAllocator: falls back to a scan when random tries collide, and reports exhaustion', () => {
  const stuck = new CallIdAllocator(() => 0);
  assert.equal(stuck.allocate(), 1);
  assert.equal(stuck.allocate(), 2, 'every random try hit 1: the scan found 2');
  let next = 0;
  const ids = new CallIdAllocator(() => next++ & 0xffff);
  const seen = new Set<number>();
  for (let i = 0; i < 0xffff; i++) {
    const id = ids.allocate();
    assert.ok(id !== null && id >= 1 && id <= 0xffff && !seen.has(id));
    seen.add(id);
  }
  assert.equal(ids.allocate(), null, 'all 65535 ids in use');
  ids.release(4242);
  assert.equal(ids.allocate(), 4242);
});

test('CallIdAllocator: a range hands out only its ids, all of them, and is refused when invalid', () => {
  const ids = new CallIdAllocator(undefined, { first: 30_000, last: 30_099 });
  const seen = new Set<number>();
  for (let i = 0; i < 100; i++) {
    const id = ids.allocate();
    assert.ok(id !== null && id >= 30_000 && id <= 30_099 && !seen.has(id), `id ${id}`);
    seen.add(id);
  }
  assert.equal(ids.allocate(), null, 'the 100 ids of the range are in use');
  assert.throws(() => new CallIdAllocator(undefined, { first: 0, last: 10 }), /not within 1-65535/);
  assert.throws(() => new CallIdAllocator(undefined, { first: 10, last: 9 }), /not within/);
});

test('CallIdAllocator: default random ids are distinct while alive', () => {
  const ids = new CallIdAllocator();
  const seen = new Set<number>();
  for (let i = 0; i < 5000; i++) {
    const id = ids.allocate()!;
    assert.ok(id > 0 && id <= 0xffff);
    assert.ok(!seen.has(id));
    seen.add(id);
  }
});
