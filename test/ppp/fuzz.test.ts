import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { bench } from './harness.ts';

const PROTOCOLS = [0xc021, 0x8021, 0x80fd, 0x8057, 0xc223, 0xc023, 0x0021, 0x00fd, 0x0057, 0x4021];

/** A frame: random bytes, or a plausible header for one of our protocols with random contents. */
const frame = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc
    .record({ p: fc.constantFrom(...PROTOCOLS), ac: fc.boolean(), body: fc.uint8Array({ maxLength: 48 }) })
    .map(({ p, ac, body }) => Uint8Array.from([...(ac ? [0xff, 0x03] : []), p >>> 8, p & 0xff, ...body])),
);

test('property: random frames into receiveFrame in every phase never throw', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 30 }), fc.array(frame, { maxLength: 30 }), (settle, frames) => {
      const b = bench();
      b.open();
      b.clock.advance(settle); // stop somewhere in the set-up (each frame takes 1 ms)
      for (const f of frames) {
        b.server.link.receiveFrame(f);
        b.client.link.receiveFrame(f);
      }
      b.clock.advance(120_000);
      assert.equal(b.server.link.stats.drops['internal error'], undefined);
      assert.equal(b.client.link.stats.drops['internal error'], undefined);
      assert.ok(!b.server.log.has('internal error'), b.server.log.text());
    }),
    { numRuns: 300 },
  );
});
