import assert from 'node:assert/strict';
import test from 'node:test';
import { greCallIdFilter } from '../../src/net/bpf.ts';
import { EBPF, encodeEbpf, tunDropProgram } from '../../src/net/ebpf.ts';
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
