import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GreChannel, type GreChannelOptions } from '../../src/gre/channel.ts';
import { decodeGreHeader, type GreHeader } from '../../src/gre/codec.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';
import { feed, frame, frameNumber, packet, pair } from './harness.ts';

/** One channel alone: what it sends and delivers, packets fed by hand. */
function solo(opts: Partial<GreChannelOptions> = {}) {
  const clock = new ManualClock();
  const log = new MemoryLogger();
  const sent: GreHeader[] = [];
  const got: number[] = [];
  const ch = new GreChannel({
    clock,
    log,
    peerCallId: 7,
    peerRecvWindow: 64,
    sendPacket: (p) => sent.push(decodeGreHeader(p)),
    deliver: (p) => got.push(frameNumber(p)),
    ...opts,
  });
  return { clock, log, sent, got, ch };
}

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

test('both directions: every frame arrives in order when nothing is lost', () => {
  const { clock, a, b } = pair({ delayMs: 5 });
  for (let i = 0; i < 200; i++) {
    a.channel.send(frame(i));
    if (i % 3 === 0) b.channel.send(frame(1000 + i));
    clock.advance(1);
  }
  clock.runAll();
  assert.deepEqual(b.got.map(frameNumber), range(0, 200));
  assert.deepEqual(
    a.got.map(frameNumber),
    range(0, 200)
      .filter((i) => i % 3 === 0)
      .map((i) => 1000 + i),
  );
  assert.deepEqual(b.channel.stats.drops, {});
  assert.equal(a.channel.stats.inFlight, 0, 'everything acknowledged in the end');
  assert.equal(b.channel.stats.inFlight, 0);
  assert.equal(a.sent[0]?.seq, 0, 'first sequence number is 0 (RFC 2637)');
});

test('duplicated packets are delivered once and counted', () => {
  const { clock, a, b } = pair({ duplicate: 1, delayMs: 2 });
  for (let i = 0; i < 50; i++) a.channel.send(frame(i));
  clock.runAll();
  assert.deepEqual(b.got.map(frameNumber), range(0, 50));
  assert.equal(b.channel.stats.drops['duplicate-or-late'], 50);
});

test('reordering within the window is repaired', () => {
  const { ch, got, clock } = solo();
  for (const s of [0, 2, 4, 3, 1, 5]) feed(ch, packet(s));
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5]);
  assert.equal(ch.stats.reordered, 3);
  assert.equal(ch.stats.rxLost, 0);
  assert.equal(clock.pending, 1, 'only the ack timer is left, not the reorder timer');
});

test('a duplicate of a held packet is dropped', () => {
  const { ch, got } = solo();
  for (const s of [0, 2, 2, 1]) feed(ch, packet(s));
  assert.deepEqual(got, [0, 1, 2]);
  assert.equal(ch.stats.drops.duplicate, 1);
});

test('a lost packet: the gap is skipped after reorderTimeoutMs, late arrival dropped', () => {
  const { ch, got, clock } = solo({ reorderTimeoutMs: 50 });
  for (const s of [0, 2, 3]) feed(ch, packet(s));
  clock.advance(49);
  assert.deepEqual(got, [0]);
  clock.advance(1);
  assert.deepEqual(got, [0, 2, 3]);
  assert.equal(ch.stats.rxLost, 1);
  feed(ch, packet(1));
  assert.deepEqual(got, [0, 2, 3]);
  assert.equal(ch.stats.drops['duplicate-or-late'], 1);
});

test('the reorder timeout counts from each held packet, not from the first gap', () => {
  const { ch, got, clock } = solo({ reorderTimeoutMs: 50 });
  feed(ch, packet(0));
  feed(ch, packet(2)); // t=0
  clock.advance(30);
  feed(ch, packet(5)); // t=30
  clock.advance(20); // t=50: gap 1 skipped, 5 still waits for 3 and 4
  assert.deepEqual(got, [0, 2]);
  clock.advance(29);
  assert.deepEqual(got, [0, 2]);
  clock.advance(1);
  assert.deepEqual(got, [0, 2, 5]);
  assert.equal(ch.stats.rxLost, 3);
});

test('reorder buffer overflow skips the oldest gap at once', () => {
  const { ch, got } = solo({ reorderWindow: 4 });
  for (const s of [0, 2, 3, 4, 5]) feed(ch, packet(s));
  assert.deepEqual(got, [0]);
  feed(ch, packet(7)); // 5 held > 4: skip 1, deliver 2..5, 7 waits for 6
  assert.deepEqual(got, [0, 2, 3, 4, 5]);
  feed(ch, packet(6));
  assert.deepEqual(got, [0, 2, 3, 4, 5, 6, 7]);
  assert.equal(ch.stats.rxLost, 1);
});

test("the peer's window: at most W unacknowledged, the rest queued and sent as acks arrive", () => {
  const { ch, sent } = solo({ peerRecvWindow: 4, windowStallMs: 60_000 });
  for (let i = 0; i < 10; i++) ch.send(frame(i));
  assert.deepEqual(
    sent.map((h) => h.seq),
    [0, 1, 2, 3],
  );
  assert.equal(ch.stats.queued, 6);
  feed(ch, packet(undefined, 1)); // peer acks 0 and 1
  assert.deepEqual(
    sent.map((h) => h.seq),
    [0, 1, 2, 3, 4, 5],
  );
  feed(ch, packet(undefined, 0)); // an old ack changes nothing
  assert.equal(sent.length, 6);
  feed(ch, packet(undefined, 9)); // never sent: ignored and counted
  assert.equal(ch.stats.drops['ack-unsent'], 1);
  assert.equal(ch.stats.inFlight, 4);
  feed(ch, packet(undefined, 5));
  assert.equal(sent.length, 10);
  assert.equal(ch.stats.queued, 0);
});

test('over a jittery link no more than W packets are ever in flight', () => {
  const W = 5;
  const { clock, a, b } = pair(
    { delayMs: 3, jitterMs: 4 },
    { a: { peerRecvWindow: W, windowStallMs: 60_000 } },
  );
  let worst = 0;
  // The receiver takes its start from the first data packet, so let that one arrive alone.
  a.channel.send(frame(0));
  clock.advance(10);
  for (let i = 1; i < 300; i++) {
    a.channel.send(frame(i));
    if (i % 4 === 0) clock.advance(1);
    const s = a.channel.stats;
    worst = Math.max(worst, s.inFlight);
  }
  clock.runAll();
  assert.ok(worst <= W, `in flight reached ${worst}`);
  // the same from the wire: each data packet's number minus the best ack the sender had seen
  assert.ok(a.maxWireInFlight <= W && a.maxWireInFlight > 0, `wire in flight ${a.maxWireInFlight}`);
  const got = b.got.map(frameNumber);
  assert.equal(got.length, 300 - (a.channel.stats.drops['tx-queue-full'] ?? 0));
  assert.ok(
    got.every((n, i) => i === 0 || n > got[i - 1]!),
    'in order',
  );
  assert.ok(b.channel.stats.ackOnlySent > 0);
});

test('a peer that never acks: the window reopens after windowStallMs, counted', () => {
  const { ch, sent, clock, log } = solo({ peerRecvWindow: 2, windowStallMs: 1000, maxQueue: 3 });
  for (let i = 0; i < 6; i++) ch.send(frame(i));
  assert.equal(sent.length, 2);
  assert.equal(ch.stats.drops['tx-queue-full'], 1);
  clock.advance(999);
  assert.equal(sent.length, 2);
  clock.advance(1);
  assert.equal(sent.length, 4);
  assert.equal(ch.stats.windowStalls, 1);
  clock.advance(1000);
  assert.equal(sent.length, 5);
  assert.equal(ch.stats.windowStalls, 2);
  assert.ok(log.has('reopening'));
  assert.equal(clock.pending, 0);
});

test('onAccepting: false once the queue is full, true once acks or the stall timeout bring it down to half; each change once', () => {
  const changes: boolean[] = [];
  const { ch, sent, clock } = solo({
    peerRecvWindow: 2,
    maxQueue: 3,
    windowStallMs: 1000,
    onAccepting: (a) => changes.push(a),
  });
  for (let i = 0; i < 4; i++) ch.send(frame(i));
  assert.deepEqual(changes, [], 'two sent, two queued: still accepting');
  ch.send(frame(4));
  assert.deepEqual(changes, [false], 'the queue is full');
  assert.equal(ch.accepting, false);
  ch.send(frame(5));
  assert.equal(ch.stats.drops['tx-queue-full'], 1, 'what is sent meanwhile is dropped');
  assert.deepEqual(changes, [false], 'and not reported again');
  feed(ch, packet(undefined, 0));
  assert.equal(sent.length, 3, 'the ack for the first let one queued frame out');
  assert.equal(ch.accepting, true, 'room for one frame');
  assert.deepEqual(changes, [false], 'not reported while the queue is above half (2 of 3)');
  feed(ch, packet(undefined, 1));
  assert.equal(sent.length, 4);
  assert.deepEqual(changes, [false, true], 'down to 1 of 3');
  ch.send(frame(6));
  assert.deepEqual(changes, [false, true]);
  ch.send(frame(7));
  assert.deepEqual(changes, [false, true, false], 'full again');
  clock.advance(1000);
  assert.equal(ch.stats.windowStalls, 1);
  assert.deepEqual(changes, [false, true, false, true], 'the stall timeout reopened the window');
});

test('ack progress postpones the stall timeout', () => {
  const { ch, sent, clock } = solo({ peerRecvWindow: 1, windowStallMs: 1000 });
  for (let i = 0; i < 4; i++) ch.send(frame(i));
  clock.advance(900);
  feed(ch, packet(undefined, 0));
  assert.equal(sent.length, 2);
  clock.advance(900);
  assert.equal(ch.stats.windowStalls, 0);
  clock.advance(100);
  assert.equal(ch.stats.windowStalls, 1);
  assert.equal(sent.length, 3);
});

test('ack-only packet after ackDelayMs when no data flows back; piggy-backed otherwise', () => {
  const { ch, sent, clock } = solo({ ackDelayMs: 20 });
  for (const s of [0, 1, 2]) feed(ch, packet(s));
  clock.advance(19);
  assert.equal(sent.length, 0);
  clock.advance(1);
  assert.deepEqual(sent, [{ callId: 7, payloadLength: 0, seq: undefined, ack: 2, headerLength: 12 }]);
  assert.equal(ch.stats.ackOnlySent, 1);
  feed(ch, packet(3));
  ch.send(frame(100));
  assert.deepEqual(sent[1], { callId: 7, payloadLength: 8, seq: 0, ack: 3, headerLength: 16 });
  ch.send(frame(101));
  assert.equal(sent[2]?.ack, undefined, 'no ack when nothing new was received');
  clock.advance(1000);
  assert.equal(sent.length, 3);
  assert.equal(ch.stats.acksSent, 2);
});

test('a piggy-backed ack leaves the ack timer armed: one timer per delay for a two-way flow, the ack-only packet still exactly ackDelayMs after the packet owed', () => {
  const { ch, sent, clock } = solo({ ackDelayMs: 20 });
  let timers = 0;
  const setTimer = clock.setTimer.bind(clock);
  clock.setTimer = (ms, fn) => {
    timers++;
    return setTimer(ms, fn);
  };
  // Two-way flow for 100 ms: a packet in and one out every millisecond, each out carrying the ack.
  for (let i = 0; i < 100; i++) {
    feed(ch, packet(i, i > 0 ? i - 1 : undefined)); // the peer acks what we sent
    ch.send(frame(i));
    clock.advance(1);
  }
  assert.equal(sent.length, 100);
  assert.ok(
    sent.every((h, i) => h.ack === i),
    'every data packet carries the ack of the one just received',
  );
  assert.ok(timers <= 6, `${timers} timers armed for 100 packets received`);
  // Now a packet that nothing piggy-backs: its ack-only packet goes 20 ms after it arrived,
  // although the timer left armed by the flow falls due sooner.
  clock.advance(7);
  feed(ch, packet(100));
  const at = clock.now();
  clock.advance(19);
  assert.equal(sent.length, 100, 'no ack-only packet before the delay');
  clock.advance(1);
  assert.equal(clock.now() - at, 20);
  assert.deepEqual(sent[100], { callId: 7, payloadLength: 0, seq: undefined, ack: 100, headerLength: 12 });
  clock.advance(1000);
  assert.equal(sent.length, 101, 'one ack-only packet, nothing after it');
});

test('an ack goes out at once when half the advertised receive window is unacknowledged', () => {
  const { ch, sent } = solo({ recvWindow: 8 });
  for (const s of [0, 1, 2]) feed(ch, packet(s));
  assert.equal(sent.length, 0);
  feed(ch, packet(3));
  assert.deepEqual(
    sent.map((h) => h.ack),
    [3],
  );
});

test('a gap skipped by timeout is acknowledged, so the peer does not stall', () => {
  const { ch, sent, clock } = solo({ reorderTimeoutMs: 50, ackDelayMs: 20 });
  feed(ch, packet(1)); // first packet sets the start: 1
  feed(ch, packet(3));
  clock.advance(100);
  assert.deepEqual(
    sent.map((h) => h.ack),
    [1, 3],
  );
});

test('sequence numbers wrap around 2^32 on both sides', () => {
  const { clock, a, b } = pair(
    { delayMs: 2, jitterMs: 3 },
    { a: { initialSeq: 0xfffffff0, peerRecvWindow: 8 }, b: { initialSeq: 0xfffffffe } },
  );
  for (let i = 0; i < 60; i++) {
    a.channel.send(frame(i));
    if (i % 2) b.channel.send(frame(i));
    clock.advance(1);
  }
  clock.runAll();
  assert.deepEqual(b.got.map(frameNumber), range(0, 60));
  assert.equal(a.got.length, 30);
  assert.equal(a.sent[0]?.seq, 0xfffffff0);
  assert.ok(a.sent.some((h) => h.seq === 0xffffffff) && a.sent.some((h) => h.seq === 0));
  assert.equal(a.channel.stats.inFlight, 0);
  assert.deepEqual(b.channel.stats.drops, {});
});

test('reordering across the wrap point is repaired', () => {
  const { ch, got } = solo();
  for (const s of [0xfffffffe, 0, 0xffffffff, 1]) feed(ch, packet(s));
  assert.deepEqual(got, [0xfffffffe, 0xffffffff, 0, 1]);
});

test('bad input is dropped and counted, never thrown', () => {
  const { ch, got, log } = solo();
  feed(ch, packet(5));
  // a payload without a sequence number (S clear): cannot be ordered
  const p = packet(undefined, undefined);
  ch.receive(new Uint8Array([...p, 1, 2]), { ...decodeGreHeader(p), payloadLength: 2 });
  assert.equal(ch.stats.drops['unsequenced-payload'], 1);
  // a throwing PPP layer does not escape receive
  const bad = new GreChannel({
    clock: new ManualClock(),
    log,
    peerCallId: 1,
    peerRecvWindow: 1,
    sendPacket: () => {
      throw new Error('socket gone');
    },
    deliver: () => {
      throw new Error('ppp bug');
    },
  });
  feed(bad, packet(0));
  bad.send(frame(1));
  assert.equal(bad.stats.drops['deliver-error'], 1);
  assert.equal(bad.stats.drops['send-error'], 1);
  assert.deepEqual(got, [5]);
});

test('close cancels every timer and drops later traffic', () => {
  const { ch, clock, sent } = solo({ peerRecvWindow: 1 });
  feed(ch, packet(0));
  feed(ch, packet(2)); // reorder timer
  ch.send(frame(1));
  ch.send(frame(2)); // queued: stall timer
  feed(ch, packet(3)); // ack timer
  assert.ok(clock.pending >= 2);
  ch.close();
  assert.equal(clock.pending, 0);
  ch.send(frame(3));
  feed(ch, packet(1));
  assert.equal(ch.stats.drops.closed, 2);
  assert.equal(sent.length, 1);
});

test('zero-copy send writes the header into the headroom', () => {
  const { ch, clock } = solo();
  const out: Uint8Array[] = [];
  const z = new GreChannel({
    clock,
    log: new MemoryLogger(),
    peerCallId: 9,
    peerRecvWindow: 1,
    sendPacket: (p) => out.push(p),
    deliver: () => {},
  });
  const buf = new Uint8Array(16 + 8);
  buf.set(frame(77), 16);
  z.sendWithHeadroom(buf, 16, 8);
  assert.equal(out[0]?.buffer, buf.buffer, 'no copy');
  assert.deepEqual(decodeGreHeader(out[0]!), {
    callId: 9,
    payloadLength: 8,
    seq: 0,
    ack: undefined,
    headerLength: 12,
  });
  assert.equal(frameNumber(out[0]!.subarray(12)), 77);
  z.sendWithHeadroom(buf, 16, 8); // window full: queued as a copy
  assert.equal(z.stats.queued, 1);
  assert.throws(() => z.sendWithHeadroom(buf, 15, 8), RangeError);
  assert.equal(ch.stats.txPackets, 0);
});

test('the first data packet sets the receive start (interop: peers that do not start at 0)', () => {
  const { ch, got } = solo();
  for (const s of [1000, 1001, 999, 1002]) feed(ch, packet(s));
  assert.deepEqual(got, [1000, 1001, 1002]);
  assert.equal(ch.stats.drops['duplicate-or-late'], 1);
});

test('a forged packet far ahead in the middle of a live flow is dropped and counted; the flow continues', () => {
  const { clock, a, b, log } = pair({ delayMs: 2 });
  for (let i = 0; i < 300; i++) {
    a.channel.send(frame(i));
    if (i === 100) feed(b.channel, packet(0x4000_0000 + i, 0x7000_0000)); // victim's call, seq and ack far ahead
    if (i === 200) feed(b.channel, packet(0xc000_0000)); // and one far behind
    clock.advance(1);
    if (i % 7 === 0) b.channel.send(frame(1000 + i));
  }
  clock.runAll();
  assert.deepEqual(b.got.map(frameNumber), range(0, 300));
  assert.equal(b.channel.stats.drops['sequence number far ahead'], 1);
  assert.equal(b.channel.stats.drops['sequence number far behind'], 1);
  assert.equal(b.channel.stats.rxLost, 0);
  assert.equal(b.channel.stats.resyncs, 0);
  assert.equal(b.channel.stats.inFlight, 0);
  assert.match(
    log.text(),
    /dropped GRE packet: sequence number far ahead \(seq 1073741924, expected \d+: more than 1024 away/,
  );
});

test('the ack of a packet whose sequence number is not believed does not open our window', () => {
  const { ch } = solo();
  feed(ch, packet(0));
  for (let i = 0; i < 10; i++) ch.send(frame(i));
  assert.equal(ch.stats.inFlight, 10);
  feed(ch, packet(1_000_000, 9)); // forged: plausible ack, implausible sequence number
  assert.equal(ch.stats.inFlight, 10);
  feed(ch, packet(undefined, 50)); // an ack of a sequence number we never sent
  assert.equal(ch.stats.inFlight, 10);
  assert.equal(ch.stats.drops['ack-unsent'], 1);
  feed(ch, packet(1, 4));
  assert.equal(ch.stats.inFlight, 5);
});

test('a forged run of far packets between live packets does not resynchronise', () => {
  const { ch, got, clock } = solo();
  for (let i = 0; i < 20; i++) {
    feed(ch, packet(i));
    for (let k = 0; k < 5; k++) feed(ch, packet(0x1000_0000 + 5 * i + k)); // coherent, but the live flow goes on
    clock.advance(100);
  }
  assert.deepEqual(got, range(0, 20));
  assert.equal(ch.stats.resyncs, 0);
  assert.equal(ch.stats.drops['sequence number far ahead'], 100);
});

test('a genuine jump beyond maxSeqJump (long outage): resynchronised after a short run, logged', () => {
  const { ch, got, clock, log } = solo({ maxSeqJump: 1024 });
  for (let i = 0; i < 10; i++) feed(ch, packet(i));
  clock.advance(500);
  for (let i = 600; i < 605; i++) feed(ch, packet(i)); // a burst of 590 lost: the gap is skipped
  clock.advance(100);
  assert.deepEqual(got.slice(10), range(600, 5));
  clock.advance(5000); // an outage; the peer went on numbering
  for (let i = 9000; i < 9010; i++) feed(ch, packet(i));
  assert.deepEqual(got.slice(15), range(9002, 8)); // the first two are not believed yet
  assert.equal(ch.stats.resyncs, 1);
  assert.match(log.text(), /GRE receive sequence resynchronised from 605 to 9002/);
});

test('a forged first packet cannot capture the channel: the genuine sequence takes over', () => {
  const { ch, got, clock } = solo();
  feed(ch, packet(0x5000_0000)); // forged, before any genuine packet: becomes the start
  for (let i = 0; i < 6; i++) {
    clock.advance(400);
    feed(ch, packet(i));
  }
  assert.deepEqual(got, [0x5000_0000, 2, 3, 4, 5]);
  assert.equal(ch.stats.resyncs, 1);
});
