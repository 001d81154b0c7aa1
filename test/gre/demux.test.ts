/**
 * The GRE demultiplexer: a call's peer may still send GRE once the call has ended (typically the
 * acknowledgement of our last packet, after its ack delay). That is counted as "just ended" and
 * logged at debug; GRE for a call id that never was ours, or from another address, or long after,
 * stays "unknown" and is warned about.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeGrePacket } from '../../src/gre/codec.ts';
import { ENDED_CALL_GRACE_MS, GRE_DEMUX_EXPECTED, GreDemux, type GreEndpoint } from '../../src/gre/demux.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { DropCounter } from '../../src/util/counters.ts';
import { MemoryLogger } from '../../src/util/log.ts';
import { parseIPv4 } from '../../src/wire/ip.ts';

const A = parseIPv4('192.0.2.10')!;
const B = parseIPv4('192.0.2.20')!;

function setup() {
  const clock = new ManualClock(5_000);
  const log = new MemoryLogger();
  const drops = new DropCounter(log, 'packet', undefined, { expected: GRE_DEMUX_EXPECTED });
  const demux = new GreDemux(drops, clock);
  const received: number[] = [];
  const endpoint = (peer: number): GreEndpoint => ({ peer, receiveGre: (_p, h) => received.push(h.callId) });
  return { clock, log, drops, demux, received, endpoint };
}

/** An acknowledgement without data, as a peer sends one after its ack delay. */
const ackOnly = (callId: number) => encodeGrePacket({ callId, ack: 7 }, new Uint8Array(0));

test("a call's peer acknowledging after the call ended: counted as just ended, not warned about", () => {
  const s = setup();
  const e = s.endpoint(A);
  s.demux.bind(40, e);
  s.demux.receive(ackOnly(40), A);
  assert.deepEqual(s.received, [40]);
  s.demux.unbind(40, e);
  s.clock.advance(400);
  s.demux.receive(ackOnly(40), A);
  s.demux.receive(encodeGrePacket({ callId: 40, seq: 3 }, new Uint8Array([0xc0, 0x21])), A);
  assert.equal(s.drops.get('GRE for a call that just ended'), 2);
  assert.equal(s.drops.get('GRE for an unknown call id'), 0);
  assert.deepEqual(s.log.lines, [], 'nothing at info or warn');
  assert.deepEqual(s.received, [40], 'nothing delivered');
});

test('another address, a call id never bound, or after the grace period: unknown, with a warning', () => {
  const s = setup();
  const e = s.endpoint(A);
  s.demux.bind(41, e);
  s.demux.unbind(41, e);
  s.demux.receive(ackOnly(41), B);
  assert.equal(s.drops.get('GRE for an unknown call id'), 1, 'only the call’s own peer gets the grace');
  s.demux.receive(ackOnly(42), A);
  assert.equal(s.drops.get('GRE for an unknown call id'), 2);
  s.clock.advance(ENDED_CALL_GRACE_MS);
  s.demux.receive(ackOnly(41), A);
  assert.equal(s.drops.get('GRE for an unknown call id'), 3);
  assert.equal(s.drops.get('GRE for a call that just ended'), 0);
  assert.match(
    s.log.text(),
    /^warn dropped packet: GRE for an unknown call id \(call id 41 from 192\.0\.2\.20\)$/m,
  );
});

test('a call id bound again is delivered; unbinding with another endpoint changes nothing', () => {
  const s = setup();
  const first = s.endpoint(A);
  const second = s.endpoint(B);
  s.demux.bind(43, first);
  s.demux.unbind(43, first);
  s.demux.bind(43, second);
  s.demux.unbind(43, first);
  s.demux.receive(ackOnly(43), B);
  assert.deepEqual(s.received, [43]);
  s.demux.unbind(43, second);
  s.demux.receive(ackOnly(43), A);
  assert.equal(
    s.drops.get('GRE for an unknown call id'),
    1,
    'the first peer’s grace ended when 43 was bound again',
  );
  s.demux.receive(ackOnly(43), B);
  assert.equal(s.drops.get('GRE for a call that just ended'), 1);
});

test('ended calls are forgotten as they age: 100,000 ended over time leave only the recent ones', () => {
  const s = setup();
  for (let i = 0; i < 100_000; i++) {
    const id = i % 65_536;
    const e = s.endpoint(A);
    s.demux.bind(id, e);
    s.demux.unbind(id, e);
    s.clock.advance(1);
  }
  const ended = (s.demux as unknown as { ended: Map<number, unknown> }).ended;
  assert.ok(ended.size <= ENDED_CALL_GRACE_MS, `${ended.size} remembered`);
  // The last call still counts as just ended; one from the start no longer does.
  s.demux.receive(ackOnly(99_999 % 65_536), A);
  s.demux.receive(ackOnly(5), A);
  assert.equal(s.drops.get('GRE for a call that just ended'), 1);
  assert.equal(s.drops.get('GRE for an unknown call id'), 1);
});

test('a live call: GRE from another address or with a malformed header is dropped, counted, named, never delivered', () => {
  const s = setup();
  s.demux.bind(44, s.endpoint(A));
  s.demux.receive(ackOnly(44), B);
  assert.equal(s.drops.get('GRE from the wrong address'), 1);
  assert.match(
    s.log.text(),
    /^warn dropped packet: GRE from the wrong address \(call id 44 belongs to 192\.0\.2\.10, packet from 192\.0\.2\.20\)$/m,
  );
  const version0 = ackOnly(44);
  version0[1] = version0[1]! & 0xf8; // version 0: plain GRE, not PPTP's enhanced GRE
  s.demux.receive(version0, A);
  s.demux.receive(ackOnly(44).subarray(0, 5), A);
  assert.equal(s.drops.get('GRE header malformed'), 2);
  assert.match(s.log.text(), /^warn dropped packet: GRE header malformed \(.+, from 192\.0\.2\.10\)$/m);
  assert.deepEqual(s.received, [], 'nothing reached the call');
  s.demux.receive(ackOnly(44), A);
  assert.deepEqual(s.received, [44], 'the call itself still gets its peer’s GRE');
});
