/**
 * SHA-1 (FIPS 180-4) for short inputs: the MPPE hot path (a stateless key change hashes 96 or 112
 * octets before every packet, RFC 3078 §7.3) and the handful of hashes of each MS-CHAP login and
 * key derivation. node:crypto's createHash costs an object and a native call each time, several
 * times the hashing itself. Long inputs belong to node:crypto.
 */

/** Workspaces overwritten by every call (the event loop is single-threaded): schedule, padding, state. */
const W = new Int32Array(80);
const TAIL = new Uint8Array(128);
const H = new Int32Array(5);

function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

function compress(h: Int32Array, block: Uint8Array, off: number): void {
  for (let t = 0; t < 16; t++) {
    const p = off + 4 * t;
    W[t] = (block[p]! << 24) | (block[p + 1]! << 16) | (block[p + 2]! << 8) | block[p + 3]!;
  }
  for (let t = 16; t < 80; t++) W[t] = rotl(W[t - 3]! ^ W[t - 8]! ^ W[t - 14]! ^ W[t - 16]!, 1);
  let a = h[0]!;
  let b = h[1]!;
  let c = h[2]!;
  let d = h[3]!;
  let e = h[4]!;
  for (let t = 0; t < 20; t++) {
    const tmp = (rotl(a, 5) + ((b & c) | (~b & d)) + e + W[t]! + 0x5a827999) | 0;
    e = d;
    d = c;
    c = rotl(b, 30);
    b = a;
    a = tmp;
  }
  for (let t = 20; t < 40; t++) {
    const tmp = (rotl(a, 5) + (b ^ c ^ d) + e + W[t]! + 0x6ed9eba1) | 0;
    e = d;
    d = c;
    c = rotl(b, 30);
    b = a;
    a = tmp;
  }
  for (let t = 40; t < 60; t++) {
    const tmp = (rotl(a, 5) + ((b & c) | (b & d) | (c & d)) + e + W[t]! + 0x8f1bbcdc) | 0;
    e = d;
    d = c;
    c = rotl(b, 30);
    b = a;
    a = tmp;
  }
  for (let t = 60; t < 80; t++) {
    const tmp = (rotl(a, 5) + (b ^ c ^ d) + e + W[t]! + 0xca62c1d6) | 0;
    e = d;
    d = c;
    c = rotl(b, 30);
    b = a;
    a = tmp;
  }
  h[0] = h[0]! + a;
  h[1] = h[1]! + b;
  h[2] = h[2]! + c;
  h[3] = h[3]! + d;
  h[4] = h[4]! + e;
}

/** SHA-1 of `data` into `out` (20 octets, a new array when omitted); returns `out`. */
export function sha1(data: Uint8Array, out: Uint8Array = new Uint8Array(20)): Uint8Array {
  const h = H;
  h[0] = 0x67452301;
  h[1] = 0xefcdab89;
  h[2] = 0x98badcfe;
  h[3] = 0x10325476;
  h[4] = 0xc3d2e1f0;
  const full = data.length & ~63;
  for (let off = 0; off < full; off += 64) compress(h, data, off);
  // Padding (FIPS 180-4 §5.1.1): 0x80, zeros, then the bit length as a 64-bit big-endian number.
  const rest = data.length - full;
  const tailLength = rest + 9 <= 64 ? 64 : 128;
  TAIL.fill(0, 0, tailLength);
  TAIL.set(data.subarray(full), 0);
  TAIL[rest] = 0x80;
  const bits = data.length * 8;
  writeU32(TAIL, tailLength - 8, Math.floor(bits / 0x100000000));
  writeU32(TAIL, tailLength - 4, bits);
  for (let off = 0; off < tailLength; off += 64) compress(h, TAIL, off);
  for (let i = 0; i < 5; i++) writeU32(out, 4 * i, h[i]!);
  return out;
}

function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = v >>> 16;
  buf[off + 2] = v >>> 8;
  buf[off + 3] = v;
}

/** SHA-1 of the parts one after the other, as a new 20-octet array. */
export function sha1Parts(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const joined = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    joined.set(p, at);
    at += p.length;
  }
  return sha1(joined);
}
