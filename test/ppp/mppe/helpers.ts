/** Shared fixtures for the MPPE data-path tests. */
import { createMppe } from '../../../src/ppp/mppe/cipher.ts';
import { keyLength } from '../../../src/ppp/mppe/keys.ts';
import type { MppeBits, MppeSettings } from '../../../src/ppp/mppe/types.ts';

export const ALL_BITS: MppeBits[] = [40, 56, 128];
export const KEY_A = Uint8Array.from({ length: 16 }, (_, i) => i * 11 + 1);
export const KEY_B = Uint8Array.from({ length: 16 }, (_, i) => 200 - i * 7);

/** Two ends of a link: `a` sends with KEY_A and receives with KEY_B; `b` the reverse. */
export function pair(settings: MppeSettings) {
  const len = keyLength(settings.bits);
  const a = createMppe({ send: KEY_A.slice(0, len), recv: KEY_B.slice(0, len) }, settings);
  const b = createMppe({ send: KEY_B.slice(0, len), recv: KEY_A.slice(0, len) }, settings);
  return { a, b };
}

/** An IPv4 frame: protocol 0x0021 then a payload that names its sequence number. */
export function frame(n: number, size = 40): Uint8Array {
  const f = new Uint8Array(size);
  f[1] = 0x21;
  new DataView(f.buffer).setUint32(2, n);
  for (let i = 6; i < size; i++) f[i] = (n * 7 + i) & 0xff;
  return f;
}

export const ccountOf = (pkt: Uint8Array): number => ((pkt[0]! & 0x0f) << 8) | pkt[1]!;
