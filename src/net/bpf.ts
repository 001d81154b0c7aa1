/**
 * Classic BPF programs for SO_ATTACH_FILTER on our raw sockets: the kernel runs them on each
 * packet (from its IPv4 header) and queues only those they accept, so a process is never woken for
 * traffic that is not its own. struct sock_filter { u16 code; u8 jt; u8 jf; u32 k }, host order.
 */

/** One instruction: [code, jump-if-true, jump-if-false, k]. */
export type BpfInsn = readonly [code: number, jt: number, jf: number, k: number];

/** The opcodes these programs use (linux/filter.h, BPF_CLASS | BPF_SIZE/OP | BPF_MODE/SRC). */
export const BPF = {
  /** A = 32-bit word at offset k. */
  LD_W_ABS: 0x20,
  /** A = 16-bit word at offset X + k. */
  LD_H_IND: 0x48,
  /** X = 4 * (byte at k & 0x0f): the IPv4 header length. */
  LDX_B_MSH: 0xb1,
  JEQ_K: 0x15,
  JGE_K: 0x35,
  JGT_K: 0x25,
  /** Accept k bytes of the packet (0: drop it). */
  RET_K: 0x06,
} as const;

/** Accept up to 64 KiB: the whole packet. */
export const BPF_ACCEPT = 0xffff;

export function encodeBpf(prog: readonly BpfInsn[]): Uint8Array {
  const buf = new ArrayBuffer(prog.length * 8);
  const u16 = new Uint16Array(buf);
  const u8 = new Uint8Array(buf);
  const u32 = new Uint32Array(buf);
  prog.forEach(([code, jt, jf, k], i) => {
    u16[i * 4] = code;
    u8[i * 8 + 2] = jt;
    u8[i * 8 + 3] = jf;
    u32[i * 2 + 1] = k >>> 0;
  });
  return u8;
}

/** Offset of the Call ID in an enhanced GRE header (RFC 2637 §4.1): flags, protocol, payload length. */
const GRE_CALL_ID_OFFSET = 6;

/**
 * Keep the GRE packets whose Call ID (our call id: the key the peer puts in every packet of the
 * call) is within [first, last]: the socket of the worker that owns those calls. A packet too short
 * to hold a Call ID is dropped by the kernel (a load past the end ends the program with 0).
 */
export function greCallIdFilter(first: number, last: number): Uint8Array {
  return encodeBpf([
    [BPF.LDX_B_MSH, 0, 0, 0],
    [BPF.LD_H_IND, 0, 0, GRE_CALL_ID_OFFSET],
    [BPF.JGE_K, 0, 2, first],
    [BPF.JGT_K, 1, 0, last],
    [BPF.RET_K, 0, 0, BPF_ACCEPT],
    [BPF.RET_K, 0, 0, 0],
  ]);
}
