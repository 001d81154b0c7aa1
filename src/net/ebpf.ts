import { endianness } from 'node:os';
import { IPV4_DESTINATION_OFFSET } from '../wire/ip.ts';

/**
 * eBPF programs we load with bpf(2) (linux/bpf.h): an encoder for struct bpf_insn and the one
 * program the server attaches to its TUN device. Classic BPF (socket filters on raw sockets) is
 * net/bpf.ts; loading, maps and attaching are net/tun-filter.ts through the addon.
 *
 * struct bpf_insn { u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm }, host byte order; a
 * 64-bit immediate load takes two instructions (the second holds the upper half of imm).
 */

/** One instruction. */
export interface EbpfInsn {
  readonly code: number;
  readonly dst: number;
  readonly src: number;
  readonly off: number;
  readonly imm: number;
}

/** The opcodes our programs use: class | size or operation | mode or source. */
export const EBPF = {
  /** dst = src (64-bit). */
  MOV64_REG: 0xbf,
  /** dst = imm (64-bit, sign-extended). */
  MOV64_IMM: 0xb7,
  /** dst += imm (64-bit). */
  ADD64_IMM: 0x07,
  /** dst >>= imm (64-bit, logical). */
  RSH64_IMM: 0x77,
  /** r0 = packet byte at imm (the socket-filter packet load: r6 holds the context; ends the program with 0 past the end). */
  LD_ABS_B: 0x30,
  /** r0 = ntohl(packet word at imm), as LD_ABS_B. */
  LD_ABS_W: 0x20,
  /** dst = *(u32 *)(src + off). */
  LDX_MEM_W: 0x61,
  /** *(u32 *)(dst + off) = src. */
  STX_MEM_W: 0x63,
  /** *(u32 *)(dst + off) = imm. */
  ST_MEM_W: 0x62,
  /** dst = the low imm bits of dst in big-endian order (htonl for imm 32; 32-bit, upper half zeroed). */
  TO_BE: 0xdc,
  /** *(u64 *)(dst + off) += src, atomically (imm = BPF_ADD). */
  ATOMIC_ADD_DW: 0xdb,
  /** dst = 64-bit imm (two instructions); src = PSEUDO_MAP_FD makes imm a map's fd. */
  LD_IMM64: 0x18,
  /** pc += off if dst == imm. */
  JEQ_IMM: 0x15,
  /** pc += off if dst != imm. */
  JNE_IMM: 0x55,
  /** r0 = helper imm (r1..r5 arguments). */
  CALL: 0x85,
  EXIT: 0x95,
} as const;

export const EBPF_PSEUDO_MAP_FD = 1;
/** Helper number of bpf_map_lookup_elem(map, key): a pointer to the value, or 0. */
export const EBPF_FUNC_MAP_LOOKUP_ELEM = 1;
/** enum bpf_map_type / bpf_prog_type values and map flags used here. */
export const BPF_MAP_TYPE_HASH = 1;
/** Longest-prefix match: key { u32 prefix length (host order); u8 address[4] (network order) }. */
export const BPF_MAP_TYPE_LPM_TRIE = 11;
export const BPF_PROG_TYPE_SOCKET_FILTER = 1;
/** Elements are allocated as they are added, not all at creation (an LPM trie requires it). */
export const BPF_F_NO_PREALLOC = 1;

/** Registers: r0 return value, r1–r5 arguments, r6–r9 kept across calls, r10 frame pointer. */
const R0 = 0;
const R1 = 1;
const R2 = 2;
const R6 = 6;
const R10 = 10;

function insn(code: number, dst = 0, src = 0, off = 0, imm = 0): EbpfInsn {
  return { code, dst, src, off, imm };
}

const LITTLE_ENDIAN = endianness() === 'LE';

export function encodeEbpf(prog: readonly EbpfInsn[]): Uint8Array {
  const out = new Uint8Array(prog.length * 8);
  const view = new DataView(out.buffer);
  prog.forEach((i, n) => {
    const at = n * 8;
    view.setUint8(at, i.code);
    // The register bit-fields: dst_reg in the low nibble on a little-endian host.
    view.setUint8(
      at + 1,
      LITTLE_ENDIAN ? (i.dst & 0xf) | ((i.src & 0xf) << 4) : ((i.dst & 0xf) << 4) | (i.src & 0xf),
    );
    view.setInt16(at + 2, i.off, LITTLE_ENDIAN);
    view.setInt32(at + 4, i.imm, LITTLE_ENDIAN);
  });
  return out;
}

/**
 * The TUN device's drop filter (TUNSETFILTEREBPF; the kernel runs it on each packet routed to the
 * device, at the IP header, before queueing it for us). An IPv4 packet whose destination is a key
 * of the hash map `mapFd` (u32 address, host order → u64 count) is counted in that element and
 * dropped (return 0); anything else is kept whole (return skb->len). A packet too short for the
 * loads ends the program with 0, dropped, as the reader would drop it.
 *
 *   r6 = ctx; r0 = pkt[0] >> 4; if r0 != 4 → keep
 *   key = ntohl(pkt[16..20]); r0 = lookup(map, &key); if r0 == 0 → keep
 *   *r0 += 1; return 0
 *   keep: return skb->len
 */
export function tunDropProgram(mapFd: number): Uint8Array {
  const keep = 16;
  const prog: EbpfInsn[] = [
    /* 0 */ insn(EBPF.MOV64_REG, R6, R1),
    /* 1 */ insn(EBPF.LD_ABS_B, 0, 0, 0, 0),
    /* 2 */ insn(EBPF.RSH64_IMM, R0, 0, 0, 4),
    /* 3 */ insn(EBPF.JNE_IMM, R0, 0, keep - 4, 4),
    /* 4 */ insn(EBPF.LD_ABS_W, 0, 0, 0, IPV4_DESTINATION_OFFSET),
    /* 5 */ insn(EBPF.STX_MEM_W, R10, R0, -4),
    /* 6 */ insn(EBPF.MOV64_REG, R2, R10),
    /* 7 */ insn(EBPF.ADD64_IMM, R2, 0, 0, -4),
    /* 8 */ insn(EBPF.LD_IMM64, R1, EBPF_PSEUDO_MAP_FD, 0, mapFd),
    /* 9 */ insn(0),
    /* 10 */ insn(EBPF.CALL, 0, 0, 0, EBPF_FUNC_MAP_LOOKUP_ELEM),
    /* 11 */ insn(EBPF.JEQ_IMM, R0, 0, keep - 12, 0),
    /* 12 */ insn(EBPF.MOV64_IMM, R1, 0, 0, 1),
    /* 13 */ insn(EBPF.ATOMIC_ADD_DW, R0, R1, 0, 0),
    /* 14 */ insn(EBPF.MOV64_IMM, R0, 0, 0, 0),
    /* 15 */ insn(EBPF.EXIT),
    /* 16: keep */ insn(EBPF.LDX_MEM_W, R0, R6, 0),
    /* 17 */ insn(EBPF.EXIT),
  ];
  return encodeEbpf(prog);
}

/**
 * The multi-queue TUN device's queue selection (TUNSETSTEERINGEBPF; the kernel runs it on each
 * packet routed to the device and queues the packet on the queue its return value names, modulo
 * the number of queues). An IPv4 packet's destination is looked up in the LPM trie `mapFd`
 * ({ 32, address } → u32 queue): the queue of the longest prefix holding it, a client's own
 * address or a subnet behind a client. Anything else goes to queue 0, whose reader drops what it
 * has no session for.
 *
 *   r6 = ctx; r0 = pkt[0] >> 4; if r0 != 4 → queue 0
 *   key = { 32, pkt[16..20] as it is on the wire }; r0 = lookup(map, &key); if r0 == 0 → queue 0
 *   return *r0
 */
export function tunSteeringProgram(mapFd: number): Uint8Array {
  const first = 16;
  const prog: EbpfInsn[] = [
    /* 0 */ insn(EBPF.MOV64_REG, R6, R1),
    /* 1 */ insn(EBPF.LD_ABS_B, 0, 0, 0, 0),
    /* 2 */ insn(EBPF.RSH64_IMM, R0, 0, 0, 4),
    /* 3 */ insn(EBPF.JNE_IMM, R0, 0, first - 4, 4),
    // LD_ABS gives the word in host order: back to network order, as the trie compares octets.
    /* 4 */ insn(EBPF.LD_ABS_W, 0, 0, 0, IPV4_DESTINATION_OFFSET),
    /* 5 */ insn(EBPF.TO_BE, R0, 0, 0, 32),
    /* 6 */ insn(EBPF.STX_MEM_W, R10, R0, -4),
    /* 7 */ insn(EBPF.ST_MEM_W, R10, 0, -8, 32),
    /* 8 */ insn(EBPF.MOV64_REG, R2, R10),
    /* 9 */ insn(EBPF.ADD64_IMM, R2, 0, 0, -8),
    /* 10 */ insn(EBPF.LD_IMM64, R1, EBPF_PSEUDO_MAP_FD, 0, mapFd),
    /* 11 */ insn(0),
    /* 12 */ insn(EBPF.CALL, 0, 0, 0, EBPF_FUNC_MAP_LOOKUP_ELEM),
    /* 13 */ insn(EBPF.JEQ_IMM, R0, 0, first - 14, 0),
    /* 14 */ insn(EBPF.LDX_MEM_W, R0, R0, 0),
    /* 15 */ insn(EBPF.EXIT),
    /* 16: queue 0 */ insn(EBPF.MOV64_IMM, R0, 0, 0, 0),
    /* 17 */ insn(EBPF.EXIT),
  ];
  return encodeEbpf(prog);
}
