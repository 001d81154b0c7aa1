import { ipv4FromBytes } from '../../src/wire/ip.ts';

/**
 * A classic BPF interpreter for the instructions src/net/bpf.ts emits, with the kernel's rule that
 * a load past the end of the packet ends the program with 0 (drop). Returns what the program returns.
 */
export function runBpf(prog: Uint8Array, packet: Uint8Array): number {
  const u16 = new Uint16Array(prog.buffer, prog.byteOffset, prog.length / 2);
  const u32 = new Uint32Array(prog.buffer, prog.byteOffset, prog.length / 4);
  let a = 0;
  let x = 0;
  for (let pc = 0; pc < prog.length / 8; pc++) {
    const code = u16[pc * 4]!;
    const jt = prog[pc * 8 + 2]!;
    const jf = prog[pc * 8 + 3]!;
    const k = u32[pc * 2 + 1]!;
    switch (code) {
      case 0x20: // ld w [k]
        if (k + 4 > packet.length) return 0;
        a = ipv4FromBytes(packet, k);
        break;
      case 0x48: // ld h [x + k]
        if (x + k + 2 > packet.length) return 0;
        a = (packet[x + k]! << 8) | packet[x + k + 1]!;
        break;
      case 0xb1: // ldx 4 * ([k] & 0xf)
        if (k + 1 > packet.length) return 0;
        x = 4 * (packet[k]! & 0x0f);
        break;
      case 0x15:
        pc += a === k ? jt : jf;
        break;
      case 0x35:
        pc += a >= k ? jt : jf;
        break;
      case 0x25:
        pc += a > k ? jt : jf;
        break;
      case 0x06:
        return k;
      default:
        throw new Error(`unexpected BPF code 0x${code.toString(16)}`);
    }
  }
  throw new Error('BPF program fell off its end');
}
