import assert from 'node:assert/strict';
import test from 'node:test';
import { greCallIdFilter } from '../../src/net/bpf.ts';
import { runBpf } from '../support/bpf.ts';

/** An IPv4 header of `ihl` words (options zero) followed by an enhanced GRE header for `callId`. */
function grePacket(callId: number, ihl = 5, truncateTo?: number): Uint8Array {
  const p = new Uint8Array(ihl * 4 + 16);
  p[0] = 0x40 | ihl;
  p[9] = 47;
  const g = ihl * 4;
  p[g] = 0x30; // K and S bits
  p[g + 1] = 0x81; // version 1, A bit
  p[g + 2] = 0x88;
  p[g + 3] = 0x0b; // PPP
  p[g + 6] = callId >> 8;
  p[g + 7] = callId & 0xff;
  return truncateTo === undefined ? p : p.subarray(0, truncateTo);
}

test('greCallIdFilter: accepts exactly the call ids of its range, wherever the IP header ends', () => {
  const prog = greCallIdFilter(21_846, 43_690);
  for (const ihl of [5, 6, 15]) {
    for (const [id, want] of [
      [1, false],
      [21_845, false],
      [21_846, true],
      [30_000, true],
      [43_690, true],
      [43_691, false],
      [65_535, false],
    ] as const) {
      assert.equal(runBpf(prog, grePacket(id, ihl)) > 0, want, `call id ${id}, header ${ihl * 4} bytes`);
    }
  }
});

test('greCallIdFilter: a packet too short to hold a call id is dropped', () => {
  const prog = greCallIdFilter(1, 65_535);
  assert.ok(runBpf(prog, grePacket(7)) > 0);
  assert.equal(runBpf(prog, grePacket(7, 5, 27)), 0, 'one byte of the call id missing');
  assert.equal(runBpf(prog, grePacket(7, 15, 40)), 0, 'IP options push the call id past the end');
});
