import { randomFillSync } from 'node:crypto';

/**
 * Cryptographically secure random octets from node:crypto, drawn from a 4 KiB reserve refilled in
 * one call when it runs low: each session takes a few small pieces (challenges, identifiers), and
 * asking OpenSSL for each piece costs far more than the octets. Every octet is handed out once.
 */
const RESERVE = new Uint8Array(4096);
let used = RESERVE.length;

export function secureRandom(n: number): Uint8Array {
  if (n > RESERVE.length / 4) return randomFillSync(new Uint8Array(n));
  if (used + n > RESERVE.length) {
    randomFillSync(RESERVE);
    used = 0;
  }
  const out = RESERVE.slice(used, used + n);
  // Nothing handed out stays in memory to be handed out again.
  RESERVE.fill(0, used, used + n);
  used += n;
  return out;
}
