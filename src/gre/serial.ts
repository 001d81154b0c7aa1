/**
 * 32-bit sequence-number arithmetic (RFC 1982 style, SERIAL_BITS = 32), as GRE sequence and
 * acknowledgment numbers wrap modulo 2^32 (RFC 2637 §4.2, RFC 2890 §2.2).
 */

/** `a - b` as a signed 32-bit distance: > 0 when a is after b, < 0 when before (within 2^31). */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** `a + n` modulo 2^32. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** How many numbers lie from b (inclusive) up to a (exclusive), modulo 2^32. */
export function seqCount(a: number, b: number): number {
  return (a - b) >>> 0;
}
