import assert from 'node:assert/strict';
import test from 'node:test';
import { greCallIdFilter } from '../../src/net/bpf.ts';
import { EBPF, encodeEbpf, tunDropProgram, tunSteeringProgram } from '../../src/net/ebpf.ts';
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

test('eBPF encoding: struct bpf_insn as the kernel reads it (dst_reg in the low nibble, off and imm in host order)', () => {
  assert.deepEqual(
    [...encodeEbpf([{ code: EBPF.MOV64_REG, dst: 6, src: 1, off: 0, imm: 0 }])],
    [0xbf, 0x16, 0, 0, 0, 0, 0, 0],
  );
  assert.deepEqual(
    [...encodeEbpf([{ code: EBPF.STX_MEM_W, dst: 10, src: 0, off: -4, imm: 0 }])],
    [0x63, 0x0a, 0xfc, 0xff, 0, 0, 0, 0],
  );
  const prog = tunDropProgram(7);
  assert.equal(prog.length, 18 * 8);
  // The map's fd in the 64-bit immediate load (src_reg = BPF_PSEUDO_MAP_FD), its upper half zero.
  assert.deepEqual([...prog.subarray(8 * 8, 10 * 8)], [0x18, 0x11, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  // Both conditional jumps land on the "keep" instructions (return skb->len).
  for (const at of [3, 11]) {
    const off = new DataView(prog.buffer).getInt16(at * 8 + 2, true);
    assert.equal(at + 1 + off, 16, `jump at ${at}`);
  }
  assert.deepEqual([...prog.subarray(16 * 8, 17 * 8)], [0x61, 0x60, 0, 0, 0, 0, 0, 0]);
});

test("eBPF steering program: the destination in network order after the prefix length 32 (the LPM trie's key), a lookup, the queue or 0", () => {
  const prog = tunSteeringProgram(9);
  assert.equal(prog.length, 18 * 8);
  const at = (n: number) => [...prog.subarray(n * 8, (n + 1) * 8)];
  assert.deepEqual(at(4), [0x20, 0, 0, 0, 16, 0, 0, 0], 'the destination word (host order)');
  assert.deepEqual(at(5), [0xdc, 0x00, 0, 0, 32, 0, 0, 0], 'back to network order');
  assert.deepEqual(at(6), [0x63, 0x0a, 0xfc, 0xff, 0, 0, 0, 0], 'address at fp-4');
  assert.deepEqual(at(7), [0x62, 0x0a, 0xf8, 0xff, 32, 0, 0, 0], 'prefix length 32 at fp-8');
  assert.deepEqual(at(9), [0x07, 0x02, 0, 0, 0xf8, 0xff, 0xff, 0xff], 'the key pointer is fp-8');
  assert.deepEqual(
    [...prog.subarray(10 * 8, 12 * 8)],
    [0x18, 0x11, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  );
  assert.deepEqual(at(14), [0x61, 0x00, 0, 0, 0, 0, 0, 0], 'the queue: the u32 the lookup points at');
  for (const j of [3, 13]) {
    const off = new DataView(prog.buffer).getInt16(j * 8 + 2, true);
    assert.equal(j + 1 + off, 16, `jump at ${j} goes to queue 0`);
  }
  assert.deepEqual(at(16), [0xb7, 0, 0, 0, 0, 0, 0, 0]);
});
