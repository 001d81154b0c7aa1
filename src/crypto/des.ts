/**
 * Single DES block encryption (FIPS 46-3), in TypeScript because Node's OpenSSL 3 refuses DES
 * without the legacy provider. MS-CHAP uses it only to encrypt an 8-octet challenge under three
 * 7-octet pieces of the NT password hash (RFC 2759 §8.5, RFC 2433 §A.5). Every login runs three
 * blocks, each under its own key, so the key schedule and the rounds both work on 32-bit words,
 * with the S-boxes and P folded into one table; the FIPS tables are used as printed.
 */

/** Initial permutation IP (FIPS 46-3), 1-based input bit numbers, bit 1 = MSB of octet 0. */
const IP = [
  58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40,
  32, 24, 16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61, 53, 45, 37, 29, 21, 13, 5,
  63, 55, 47, 39, 31, 23, 15, 7,
] as const;

/** Final permutation IP^-1, derived from IP rather than typed in. */
const FP: readonly number[] = (() => {
  const inv = new Array<number>(64).fill(0);
  IP.forEach((from, to) => {
    inv[from - 1] = to + 1;
  });
  return inv;
})();

/** Expansion E: 32 → 48 bits; each 4-bit group is flanked by its neighbours' edge bits. */
const E: readonly number[] = Array.from({ length: 48 }, (_, i) => {
  const group = Math.floor(i / 6);
  return ((group * 4 + (i % 6) - 1 + 32) % 32) + 1;
});

/** Permutation P applied to the S-box output. */
const P = [
  16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22,
  11, 4, 25,
] as const;

/** Permuted choice 1: 64-bit key → 56 bits (parity bits dropped). */
const PC1 = [
  57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
  63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
] as const;

/** Permuted choice 2: 56-bit C‖D → 48-bit round key. */
const PC2 = [
  14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52, 31, 37, 47,
  55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
] as const;

/** Left rotations of C and D before each of the 16 rounds. */
const SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1] as const;

/** S-boxes S1..S8, each 4 rows of 16, indexed [row * 16 + column]. */
const SBOX: readonly (readonly number[])[] = [
  [
    14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3,
    8, 4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6,
    13,
  ],
  [
    15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11,
    5, 0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5,
    14, 9,
  ],
  [
    10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15,
    1, 13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2,
    12,
  ],
  [
    7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14,
    9, 10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2,
    14,
  ],
  [
    2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8,
    6, 4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4,
    5, 3,
  ],
  [
    12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3,
    8, 9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8,
    13,
  ],
  [
    4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8,
    6, 1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3,
    12,
  ],
  [
    13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9,
    2, 7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6,
    11,
  ],
];

function toBits(bytes: Uint8Array): Uint8Array {
  const bits = new Uint8Array(bytes.length * 8);
  for (let i = 0; i < bits.length; i++) bits[i] = (bytes[i >>> 3]! >>> (7 - (i & 7))) & 1;
  return bits;
}

/**
 * The S-boxes with P folded in: SP[box * 64 + x] is P applied to box's 4-bit output for the 6-bit
 * input x (bit 5 of x is the first of its six bits), placed where that box's output sits in the
 * 32-bit word. P only moves bits, so f's output is the OR of the eight entries. Derived from SBOX
 * and P at load, not typed in.
 */
const SP: Uint32Array = (() => {
  const sp = new Uint32Array(8 * 64);
  for (let box = 0; box < 8; box++) {
    for (let x = 0; x < 64; x++) {
      const row = ((x >>> 4) & 2) | (x & 1);
      const col = (x >>> 1) & 15;
      const s = SBOX[box]![row * 16 + col]! << (28 - 4 * box);
      let out = 0;
      // Bit i of the word counts from the most significant bit (FIPS bit i + 1).
      for (let i = 0; i < 32; i++) if ((s >>> (31 - (P[i]! - 1))) & 1) out |= 1 << (31 - i);
      sp[box * 64 + x] = out >>> 0;
    }
  }
  return sp;
})();

/**
 * Where each box's six bits of E(R) start in R, 0-based from the MSB: E's groups are runs of six
 * consecutive bits (wrapping from bit 32 to bit 1), so one rotation of R brings a group to the top.
 */
const E_START: readonly number[] = Array.from({ length: 8 }, (_, box) => E[box * 6]! - 1);

/** The cipher function f(R, K) on a 32-bit half: expand, mix in the round key, S-boxes and P. */
function feistel(r: number, keys: Uint8Array, round: number): number {
  let f = 0;
  for (let box = 0; box < 8; box++) {
    const s = E_START[box]!;
    const rot = s === 0 ? r : (r << s) | (r >>> (32 - s));
    f |= SP[box * 64 + ((rot >>> 26) ^ keys[round * 8 + box]!)]!;
  }
  return f;
}

/** Bit `i` (0-based from the MSB of octet 0) of a 64-bit block held as two words. */
function bitOf(hi: number, lo: number, i: number): number {
  return i < 32 ? (hi >>> (31 - i)) & 1 : (lo >>> (63 - i)) & 1;
}

/** Applies a 64-entry FIPS table to the block hi‖lo. */
function permute64(hi: number, lo: number, table: readonly number[]): [number, number] {
  let a = 0;
  let b = 0;
  for (let i = 0; i < 32; i++) a = (a << 1) | bitOf(hi, lo, table[i]! - 1);
  for (let i = 32; i < 64; i++) b = (b << 1) | bitOf(hi, lo, table[i]! - 1);
  return [a >>> 0, b >>> 0];
}

/** An octet string's 32-bit big-endian word at `at`. */
function word(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/**
 * The key schedule (FIPS 46-3, "Key Schedule Calculation"): PC1 splits the key into the 28-bit
 * halves C and D, each round rotates them and PC2 picks 48 bits of C‖D. The round keys are kept as
 * 8 six-bit groups each (one per S-box), round-major.
 */
function roundKeyGroups(key8: Uint8Array): Uint8Array {
  const hi = word(key8, 0);
  const lo = word(key8, 4);
  let c = 0;
  let d = 0;
  for (let i = 0; i < 28; i++) c = (c << 1) | bitOf(hi, lo, PC1[i]! - 1);
  for (let i = 28; i < 56; i++) d = (d << 1) | bitOf(hi, lo, PC1[i]! - 1);
  const groups = new Uint8Array(16 * 8);
  for (let round = 0; round < 16; round++) {
    const n = SHIFTS[round]!;
    c = ((c << n) | (c >>> (28 - n))) & 0xfffffff;
    d = ((d << n) | (d >>> (28 - n))) & 0xfffffff;
    for (let box = 0; box < 8; box++) {
      let v = 0;
      for (let j = 0; j < 6; j++) {
        const from = PC2[box * 6 + j]! - 1;
        v = (v << 1) | (from < 28 ? (c >>> (27 - from)) & 1 : (d >>> (55 - from)) & 1);
      }
      groups[round * 8 + box] = v;
    }
  }
  return groups;
}

/**
 * An 8-octet DES key's schedule (parity bits ignored), for desEncryptWith: a key used again (an
 * MS-CHAP user's password hash at every login) need not be scheduled again.
 */
export function desKeySchedule(key8: Uint8Array): Uint8Array {
  if (key8.length !== 8) throw new RangeError('DES key must be 8 octets');
  return roundKeyGroups(key8);
}

/** Encrypt one 8-octet block under an 8-octet DES key (parity bits ignored). */
export function desEncryptBlock(key8: Uint8Array, block8: Uint8Array): Uint8Array {
  return desEncryptWith(desKeySchedule(key8), block8);
}

/** Encrypt one 8-octet block under a key scheduled by desKeySchedule. */
export function desEncryptWith(keys: Uint8Array, block8: Uint8Array): Uint8Array {
  if (keys.length !== 16 * 8 || block8.length !== 8)
    throw new RangeError('a DES key schedule and an 8-octet block are needed');
  let [l, r] = permute64(word(block8, 0), word(block8, 4), IP);
  for (let round = 0; round < 16; round++) {
    const next = (l ^ feistel(r, keys, round)) >>> 0;
    l = r;
    r = next;
  }
  // The last round's halves are not swapped: the pre-output block is R16 ‖ L16.
  const [a, b] = permute64(r, l, FP);
  return new Uint8Array([
    a >>> 24,
    (a >>> 16) & 255,
    (a >>> 8) & 255,
    a & 255,
    b >>> 24,
    (b >>> 16) & 255,
    (b >>> 8) & 255,
    b & 255,
  ]);
}

/**
 * Spread 7 octets (56 key bits) over 8 octets, 7 bits each in the high bits, and set the low bit
 * of each octet for odd parity (RFC 2759 §8.5 / RFC 2433 §A.5 "DesEncrypt" key expansion).
 */
export function expandDesKey(key7: Uint8Array): Uint8Array {
  if (key7.length !== 7) throw new RangeError('DES key to expand must be 7 octets');
  const bits = toBits(key7);
  const out = new Uint8Array(8);
  for (let i = 0; i < 8; i++) {
    let v = 0;
    for (let j = 0; j < 7; j++) v = (v << 1) | bits[i * 7 + j]!;
    let ones = 0;
    for (let j = 0; j < 7; j++) ones += (v >>> j) & 1;
    out[i] = (v << 1) | (ones & 1 ? 0 : 1);
  }
  return out;
}
