import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createGrePortPair, MemoryGreNetwork, MemoryTun } from '../../src/net/memory.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { parseIPv4 } from '../../src/wire/ip.ts';

const A = parseIPv4('192.0.2.1')!;
const B = parseIPv4('198.51.100.1')!;

test('a port pair exchanges packets after the delay, with source and destination, as copies', () => {
  const clock = new ManualClock();
  const [a, b] = createGrePortPair({ clock, delayMs: 5 });
  const got: [number[], number, number][] = [];
  b.onPacket((p, from, to) => got.push([[...p], from, to]));
  const pkt = new Uint8Array([1, 2, 3]);
  a.send(pkt, B);
  pkt[0] = 9; // the sender may reuse its buffer at once
  clock.advance(4);
  assert.equal(got.length, 0, 'not delivered synchronously or early');
  clock.advance(1);
  assert.deepEqual(got, [[[1, 2, 3], A, B]]);
});

test('packets sent in one turn arrive in order; unknown and closed destinations are counted', () => {
  const clock = new ManualClock();
  const [a, b, net] = createGrePortPair({ clock });
  const seen: number[] = [];
  b.onPacket((p) => seen.push(p[0]!));
  for (const n of [1, 2, 3]) a.send(new Uint8Array([n]), B);
  a.send(new Uint8Array([4]), parseIPv4('203.0.113.9')!);
  clock.advance(1);
  assert.deepEqual(seen, [1, 2, 3]);
  b.close();
  a.send(new Uint8Array([5]), B);
  clock.advance(1);
  assert.equal(net.stats.undeliverable, 2);
  assert.equal(net.stats.delivered, 3);
});

test('ports with different addresses on one network; duplicate addresses are refused', () => {
  const clock = new ManualClock();
  const net = new MemoryGreNetwork({ clock });
  const ports = ['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((ip) => net.port(ip));
  const log: string[] = [];
  ports.forEach((p, i) => {
    p.onPacket((pkt, from) => log.push(`${i}<-${from & 255}:${pkt[0]}`));
  });
  ports[0]!.send(new Uint8Array([7]), ports[2]!.address);
  ports[2]!.send(new Uint8Array([8]), ports[1]!.address);
  clock.advance(1);
  assert.deepEqual(log, ['2<-1:7', '1<-3:8']);
  assert.throws(() => net.port('10.0.0.1'), /already in use/);
  assert.throws(() => net.port('10.0.0.256'), RangeError);
});

test('loss, duplication and reordering follow the seeded random source and are counted', () => {
  const run = (seed: number) => {
    const clock = new ManualClock();
    const [a, b, net] = createGrePortPair({ clock, seed, loss: 0.2, duplicate: 0.1, reorder: 0.2 });
    const seen: number[] = [];
    b.onPacket((p) => seen.push(p[0]!));
    for (let i = 0; i < 200; i++) {
      a.send(new Uint8Array([i & 255]), B);
      clock.advance(1);
    }
    clock.runAll();
    return { seen, stats: { ...net.stats } };
  };
  const r = run(42);
  assert.deepEqual(run(42), r, 'same seed, same outcome');
  const s = r.stats;
  assert.ok(s.lost > 10 && s.lost < 80, `lost ${s.lost}`);
  assert.ok(s.duplicated > 0 && s.reordered > 0);
  assert.equal(r.seen.length, 200 - s.lost + s.duplicated);
  assert.equal(s.delivered, r.seen.length);
  const sorted = [...r.seen].sort((x, y) => x - y);
  assert.notDeepEqual(r.seen, sorted, 'some packets overtook others');
});

test('setConditions changes the link from now on', () => {
  const clock = new ManualClock();
  const [a, b, net] = createGrePortPair({ clock });
  let n = 0;
  b.onPacket(() => n++);
  net.setConditions({ loss: 1 });
  a.send(new Uint8Array(1), B);
  net.setConditions({ loss: 0, delayMs: 50 });
  a.send(new Uint8Array(1), B);
  clock.advance(49);
  assert.equal(n, 0);
  clock.advance(1);
  assert.equal(n, 1);
  assert.equal(net.stats.lost, 1);
});

test('property: without loss every packet arrives exactly once, whatever the reordering', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 1000 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (seed, reorder) => {
        const clock = new ManualClock();
        const [a, b] = createGrePortPair({ clock, seed, reorder });
        const seen: number[] = [];
        b.onPacket((p) => seen.push(p[0]!));
        for (let i = 0; i < 50; i++) a.send(new Uint8Array([i]), B);
        clock.runAll();
        assert.deepEqual(
          [...seen].sort((x, y) => x - y),
          Array.from({ length: 50 }, (_, i) => i),
        );
      },
    ),
    { numRuns: 50 },
  );
});

test('MemoryTun: inject reaches the reader, writes are kept and hooked, close stops both', () => {
  const tun = new MemoryTun('t0');
  assert.equal(tun.name, 't0');
  const read: number[] = [];
  assert.equal(tun.inject(new Uint8Array([1])), false, 'nobody reads yet');
  tun.onPacket((p) => read.push(p[0]!));
  assert.equal(tun.inject(new Uint8Array([2])), true);
  const hooked: number[] = [];
  tun.onWrite = (p) => hooked.push(p[0]!);
  const w = new Uint8Array([3]);
  tun.write(w);
  w[0] = 0;
  assert.deepEqual(read, [2]);
  assert.deepEqual(hooked, [3]);
  assert.deepEqual(
    tun.written.map((p) => p[0]),
    [3],
  );
  tun.close();
  assert.equal(tun.isClosed, true);
  assert.equal(tun.inject(new Uint8Array([4])), false);
  tun.write(new Uint8Array([5]));
  assert.equal(tun.written.length, 1);
});
