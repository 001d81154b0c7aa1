/**
 * RC4 stream cipher (the "ARCFOUR" algorithm as used by MPPE, RFC 3078 §2; test vectors in
 * RFC 6229), in TypeScript because Node's OpenSSL 3 refuses RC4 without the legacy provider.
 *
 * Each instance keeps its state: one 256-octet permutation plus two indices. `process` allocates
 * nothing when given an output buffer, and may run in place (output === input).
 *
 * The arithmetic runs on one module-level permutation, WORK, never on the instance's own array.
 * V8 compiles the loops with WORK as a constant, whose length it knows, and drops most of the
 * bounds checks of the permutation accesses; an instance's array it must load and check at each
 * access. That takes about a fifth off MPPE per packet (bench/datapath.ts: 5.7 → 4.4 µs). The
 * instance whose state WORK holds is `loaded`; every operation leaves WORK and that instance's
 * array equal, so switching instances costs one 256-octet copy in, and each operation one copy
 * out. The event loop is single-threaded and no operation calls out, so nothing sees WORK half-done.
 */
/** 0, 1, ..., 255: the state before the key schedule. */
const IDENTITY = Uint8Array.from({ length: 256 }, (_, k) => k);

/** The permutation being worked on: a copy of `loaded.s`. */
const WORK = new Uint8Array(256);
let loaded: Rc4 | undefined;

export class Rc4 {
  private readonly s = new Uint8Array(256);
  private i = 0;
  private j = 0;

  constructor(key: Uint8Array) {
    this.setKey(key);
  }

  /** Re-run the key schedule with `key` (1..256 octets), discarding the current stream position. */
  setKey(key: Uint8Array): void {
    const n = key.length;
    if (n < 1 || n > 256) throw new RangeError(`RC4 key must be 1..256 octets, got ${n}`);
    const s = WORK;
    s.set(IDENTITY);
    let j = 0;
    // The key index wraps by comparison, not division (a hot path: stateless MPPE keys RC4 twice
    // per packet).
    for (let k = 0, ki = 0; k < 256; k++) {
      const t = s[k]!;
      j = (j + t + key[ki]!) & 0xff;
      s[k] = s[j]!;
      s[j] = t;
      if (++ki === n) ki = 0;
    }
    loaded = this;
    this.s.set(s);
    this.i = 0;
    this.j = 0;
  }

  /**
   * XOR the next `input.length` octets of keystream into `input`, writing to `output` (a new array
   * when omitted; may be `input` itself). Returns the output, of at least `input.length` octets.
   */
  process(input: Uint8Array, output: Uint8Array = new Uint8Array(input.length)): Uint8Array {
    if (output.length < input.length) throw new RangeError('RC4 output shorter than input');
    this.processAt(input, 0, output, 0, input.length);
    return output;
  }

  /**
   * XOR the next `length` octets of keystream into `input[inStart..]`, writing to
   * `output[outStart..]` (the same array and offset: in place). Offsets rather than views, so the
   * packet path allocates nothing (a view costs an object per packet).
   */
  processAt(input: Uint8Array, inStart: number, output: Uint8Array, outStart: number, length: number): void {
    if (inStart < 0 || outStart < 0 || inStart + length > input.length || outStart + length > output.length)
      throw new RangeError('RC4 range outside its array');
    if (loaded !== this) {
      WORK.set(this.s);
      loaded = this;
    }
    const s = WORK;
    let i = this.i;
    let j = this.j;
    const d = outStart - inStart;
    const end = inStart + length;
    let n = inStart;
    // Two octets a turn: V8 keeps i, j and the two state reads in registers across the pair, which
    // takes a quarter off a 1400-octet packet (bench/mppe.ts); one octet at a time for the rest.
    for (const pairs = inStart + (length & ~1); n < pairs; n += 2) {
      i = (i + 1) & 0xff;
      let si = s[i]!;
      j = (j + si) & 0xff;
      let sj = s[j]!;
      s[i] = sj;
      s[j] = si;
      output[n + d] = input[n]! ^ s[(si + sj) & 0xff]!;
      i = (i + 1) & 0xff;
      si = s[i]!;
      j = (j + si) & 0xff;
      sj = s[j]!;
      s[i] = sj;
      s[j] = si;
      output[n + 1 + d] = input[n + 1]! ^ s[(si + sj) & 0xff]!;
    }
    if (n < end) {
      i = (i + 1) & 0xff;
      const si = s[i]!;
      j = (j + si) & 0xff;
      const sj = s[j]!;
      s[i] = sj;
      s[j] = si;
      output[n + d] = input[n]! ^ s[(si + sj) & 0xff]!;
    }
    this.s.set(s);
    this.i = i;
    this.j = j;
  }
}
