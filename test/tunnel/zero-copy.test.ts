/**
 * The send path writes GRE + PPP + MPPE headers in the free bytes before a TUN packet and sends
 * it from where it is: no allocation or copy per packet when the headroom is there, one copy when
 * it is not. Both come out as the same bytes on the wire.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GreChannel } from '../../src/gre/channel.ts';
import { decodeGreHeader, GRE_HEADER_LENGTH_MAX } from '../../src/gre/codec.ts';
import { decodeFrame } from '../../src/ppp/frame.ts';
import { createMppe } from '../../src/ppp/mppe/cipher.ts';
import { MppeFraming } from '../../src/ppp/mppe/framing.ts';
import { TUNNEL_HEADROOM } from '../../src/tunnel/call.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { DropCounter } from '../../src/util/counters.ts';
import { nullLogger } from '../../src/util/log.ts';

const key = new Uint8Array(16).fill(7);

function sender(out: Uint8Array[]) {
  const clock = new ManualClock();
  const drops = new DropCounter(nullLogger, 'test');
  const framing = new MppeFraming(
    { clock, drops, sendResetRequest: () => {}, failed: () => {} },
    createMppe({ send: key, recv: key }, { bits: 128, stateless: true }),
  );
  const channel = new GreChannel({
    clock,
    log: nullLogger,
    peerCallId: 0x4242,
    peerRecvWindow: 64,
    sendPacket: (p) => out.push(p),
    deliver: () => {},
  });
  return { framing, channel };
}

function receive(packet: Uint8Array): Uint8Array {
  const header = decodeGreHeader(packet);
  const frame = decodeFrame(packet.slice(header.headerLength));
  assert.equal(frame.protocol, 0x00fd);
  const rx = createMppe({ send: key, recv: key }, { bits: 128, stateless: true });
  const plain = rx.decryptor.decrypt(frame.info);
  assert.ok(plain);
  return plain;
}

test('with TUNNEL_HEADROOM free bytes the packet is encrypted and sent in its own buffer', () => {
  const out: Uint8Array[] = [];
  const { framing, channel } = sender(out);
  const slot = new Uint8Array(TUNNEL_HEADROOM + 100);
  const ip = slot.subarray(TUNNEL_HEADROOM);
  ip.fill(0xab);
  const { frame, headroom } = framing.encryptFrame(
    0x0021,
    ip,
    { acfc: true, pfc: true },
    TUNNEL_HEADROOM,
    16,
  );
  assert.equal(frame.buffer, slot.buffer, 'no new buffer for the frame');
  assert.ok(headroom >= GRE_HEADER_LENGTH_MAX);
  channel.sendFrame(frame, headroom);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.buffer, slot.buffer, 'the GRE packet is a view of the TUN slot');
  const plain = receive(out[0]!);
  assert.deepEqual([...plain.subarray(0, 2)], [0x00, 0x21]);
  assert.ok(plain.subarray(2).every((b) => b === 0xab));
});

test('without headroom the packet is copied once, into a buffer with room for the GRE header', () => {
  const out: Uint8Array[] = [];
  const { framing, channel } = sender(out);
  const ip = new Uint8Array(100).fill(0xcd);
  const { frame, headroom } = framing.encryptFrame(0x0021, ip, { acfc: false, pfc: false }, 0, 16);
  assert.notEqual(frame.buffer, ip.buffer);
  assert.equal(headroom, 16);
  channel.sendFrame(frame, headroom);
  assert.equal(out[0]!.buffer, frame.buffer, 'GRE wrote its header in the room left for it');
  assert.ok(
    ip.every((b) => b === 0xcd),
    'the caller’s packet is untouched',
  );
  const plain = receive(out[0]!);
  assert.ok(plain.subarray(2).every((b) => b === 0xcd));
});
