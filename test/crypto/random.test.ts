import assert from 'node:assert/strict';
import { test } from 'node:test';
import { secureRandom } from '../../src/crypto/random.ts';

test('secureRandom: the asked length, fresh arrays, never the same octets twice across refills', () => {
  const seen = new Set<string>();
  // 16-octet pieces across several 4 KiB refills, and one larger than the reserve takes.
  for (let i = 0; i < 1000; i++) {
    const r = secureRandom(16);
    assert.equal(r.length, 16);
    const hex = Buffer.from(r).toString('hex');
    assert.ok(!seen.has(hex), 'a piece handed out twice');
    seen.add(hex);
  }
  const big = secureRandom(5000);
  assert.equal(big.length, 5000);
  const a = secureRandom(8);
  a.fill(0);
  assert.notDeepEqual(secureRandom(8), new Uint8Array(8), 'a caller changing its piece changes no other');
  // Roughly uniform: over 16,000 octets each bit value appears about half the time.
  let ones = 0;
  for (let i = 0; i < 1000; i++) for (const b of secureRandom(16)) ones += b & 1;
  assert.ok(ones > 7000 && ones < 9000, `low bits set ${ones} of 16000`);
});
