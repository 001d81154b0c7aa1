import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { frame, frameNumber, pair } from './harness.ts';

// Random loss, duplication and reordering in both directions: the invariants must hold whatever
// the link does (wireguard-style invariant checks, not outputs).
test('random loss/duplication/reordering: delivery stays strictly increasing, nothing throws', () => {
  fc.assert(
    fc.property(
      fc.record({
        seed: fc.integer(),
        loss: fc.constantFrom(0, 0.01, 0.1, 0.3),
        duplicate: fc.constantFrom(0, 0.05, 0.3),
        jitterMs: fc.integer({ min: 0, max: 120 }),
        window: fc.integer({ min: 1, max: 16 }),
        reorderWindow: fc.integer({ min: 1, max: 16 }),
        initialSeq: fc.oneof(fc.constant(0), fc.integer({ min: 0xffffff00, max: 0xffffffff }), fc.nat()),
        count: fc.integer({ min: 1, max: 200 }),
        backEvery: fc.integer({ min: 1, max: 10 }),
      }),
      (p) => {
        const { clock, a, b } = pair(
          { loss: p.loss, duplicate: p.duplicate, delayMs: 2, jitterMs: p.jitterMs },
          {
            seed: p.seed,
            a: { peerRecvWindow: p.window, initialSeq: p.initialSeq, reorderTimeoutMs: 50 },
            b: { reorderWindow: p.reorderWindow, initialSeq: p.initialSeq ^ 0x5555, reorderTimeoutMs: 50 },
          },
        );
        // The receiver takes its start from the first data packet: let that one arrive alone.
        a.channel.send(frame(0));
        clock.advance(200);
        for (let i = 1; i < p.count; i++) {
          a.channel.send(frame(i));
          if (i % p.backEvery === 0) b.channel.send(frame(i));
          if (i % 3 === 0) clock.advance(1);
        }
        clock.runAll();
        for (const end of [a, b]) {
          const got = end.got.map(frameNumber);
          for (let i = 1; i < got.length; i++) assert.ok(got[i]! > got[i - 1]!, `order: ${got.join(',')}`);
          assert.ok(got.every((n) => n < p.count));
        }
        const sa = a.channel.stats;
        const sb = b.channel.stats;
        assert.ok(a.maxWireInFlight <= p.window || sa.windowStalls > 0, `in flight ${a.maxWireInFlight}`);
        assert.ok(sa.inFlight <= p.window);
        assert.equal(clock.pending, 0, 'every timer settles');
        if (p.loss === 0 && p.jitterMs < 50 && p.reorderWindow >= p.window) {
          assert.equal(b.got.length, p.count - (sa.drops['tx-queue-full'] ?? 0), 'lossless: all delivered');
          assert.equal(sb.rxLost, 0);
          assert.equal(sa.inFlight, 0, 'lossless: all acknowledged');
        }
      },
    ),
    { numRuns: 150 },
  );
});
