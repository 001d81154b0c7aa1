/**
 * MD4 message digest (RFC 1320), in TypeScript because Node's OpenSSL 3 refuses MD4 without the
 * legacy provider. Used only for the NT password hash of MS-CHAP (RFC 2759 §8.3, RFC 2433 §A.2).
 */

const INIT = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476] as const;

/** Round 2 and round 3 additive constants (RFC 1320 §3.4): sqrt(2) and sqrt(3) scaled by 2^30. */
const ROUND2 = 0x5a827999;
const ROUND3 = 0x6ed9eba1;

/** Word order for round 3 (RFC 1320 §3.4). */
const R3_ORDER = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15] as const;

function rotl(x: number, s: number): number {
  return (x << s) | (x >>> (32 - s));
}

/** Process one 64-byte block at `off` of `view`, updating `h` (RFC 1320 §3.4, step 4). */
function compress(h: Uint32Array, view: DataView, off: number, x: Uint32Array): void {
  for (let i = 0; i < 16; i++) x[i] = view.getUint32(off + 4 * i, true);
  let a = h[0]!;
  let b = h[1]!;
  let c = h[2]!;
  let d = h[3]!;
  // Round 1: F(x,y,z) = xy | ~x z, shifts 3 7 11 19.
  for (let i = 0; i < 16; i += 4) {
    a = rotl((a + ((b & c) | (~b & d)) + x[i]!) | 0, 3);
    d = rotl((d + ((a & b) | (~a & c)) + x[i + 1]!) | 0, 7);
    c = rotl((c + ((d & a) | (~d & b)) + x[i + 2]!) | 0, 11);
    b = rotl((b + ((c & d) | (~c & a)) + x[i + 3]!) | 0, 19);
  }
  // Round 2: G(x,y,z) = xy | xz | yz, words in column order, shifts 3 5 9 13.
  for (let i = 0; i < 4; i++) {
    a = rotl((a + ((b & c) | (b & d) | (c & d)) + x[i]! + ROUND2) | 0, 3);
    d = rotl((d + ((a & b) | (a & c) | (b & c)) + x[i + 4]! + ROUND2) | 0, 5);
    c = rotl((c + ((d & a) | (d & b) | (a & b)) + x[i + 8]! + ROUND2) | 0, 9);
    b = rotl((b + ((c & d) | (c & a) | (d & a)) + x[i + 12]! + ROUND2) | 0, 13);
  }
  // Round 3: H(x,y,z) = x ^ y ^ z, bit-reversed word order, shifts 3 9 11 15.
  for (let i = 0; i < 16; i += 4) {
    a = rotl((a + (b ^ c ^ d) + x[R3_ORDER[i]!]! + ROUND3) | 0, 3);
    d = rotl((d + (a ^ b ^ c) + x[R3_ORDER[i + 1]!]! + ROUND3) | 0, 9);
    c = rotl((c + (d ^ a ^ b) + x[R3_ORDER[i + 2]!]! + ROUND3) | 0, 11);
    b = rotl((b + (c ^ d ^ a) + x[R3_ORDER[i + 3]!]! + ROUND3) | 0, 15);
  }
  h[0] = h[0]! + a;
  h[1] = h[1]! + b;
  h[2] = h[2]! + c;
  h[3] = h[3]! + d;
}

/** MD4 of `data`: 16 bytes (RFC 1320). */
export function md4(data: Uint8Array): Uint8Array {
  // Padding (RFC 1320 §3.1-3.2): 0x80, zeros to 56 mod 64, then the bit length as 64-bit LE.
  const padded = new Uint8Array((((data.length + 8) >>> 6) + 1) << 6);
  padded.set(data);
  padded[data.length] = 0x80;
  const view = new DataView(padded.buffer);
  const bits = data.length * 8;
  view.setUint32(padded.length - 8, bits >>> 0, true);
  view.setUint32(padded.length - 4, Math.floor(bits / 0x100000000), true);
  const h = Uint32Array.from(INIT);
  const x = new Uint32Array(16);
  for (let off = 0; off < padded.length; off += 64) compress(h, view, off, x);
  const out = new Uint8Array(16);
  const outView = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) outView.setUint32(4 * i, h[i]!, true);
  return out;
}
