import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Rc4 } from '../../../src/crypto/rc4.ts';
import {
  createMppe,
  MPPE_ENCRYPTED,
  MPPE_FLUSHED,
  MPPE_FREE_KEY_CHANGES,
  MPPE_KEY_CHANGE_CREDIT,
} from '../../../src/ppp/mppe/cipher.ts';
import { changeSessionKey, initialSessionKey, keyLength } from '../../../src/ppp/mppe/keys.ts';
import { DropCounter } from '../../../src/util/counters.ts';
import { nullLogger } from '../../../src/util/log.ts';
import { ALL_BITS, ccountOf, frame, KEY_A, KEY_B, pair } from './helpers.ts';

const MODES = [true, false];

test('round trip in both directions, both modes, all strengths, across flag packets', () => {
  for (const bits of ALL_BITS) {
    for (const stateless of MODES) {
      const { a, b } = pair({ bits, stateless });
      for (let n = 0; n < 600; n++) {
        const f = frame(n, 20 + (n % 50));
        assert.deepEqual(b.decryptor.decrypt(a.encryptor.encrypt(f)), f, `${bits} ${stateless} a→b #${n}`);
        assert.deepEqual(a.decryptor.decrypt(b.encryptor.encrypt(f)), f, `${bits} ${stateless} b→a #${n}`);
      }
      assert.equal(b.decryptor.takeResetRequest(), false);
    }
  }
});

test('header: D always, A on every stateless packet; stateful A only on flag packets', () => {
  for (const stateless of MODES) {
    const { a } = pair({ bits: 128, stateless });
    for (let n = 0; n < 300; n++) {
      const pkt = a.encryptor.encrypt(frame(n));
      assert.equal(pkt.length, 42);
      assert.equal(ccountOf(pkt), n);
      assert.equal(pkt[0]! & MPPE_ENCRYPTED, MPPE_ENCRYPTED);
      const flagged = stateless || (n & 0xff) === 0xff;
      assert.equal((pkt[0]! & MPPE_FLUSHED) !== 0, flagged, `packet ${n}`);
    }
  }
});

test('first packets match the RFC 3079 session key: stateful uses it, stateless changes it first', () => {
  for (const bits of ALL_BITS) {
    const start = KEY_A.slice(0, keyLength(bits));
    const f = frame(0);
    const initial = initialSessionKey(start, bits);
    const stateful = pair({ bits, stateless: false }).a.encryptor.encrypt(f);
    assert.deepEqual(stateful.subarray(2), new Rc4(initial).process(f));
    const stateless = pair({ bits, stateless: true }).a.encryptor.encrypt(f);
    assert.deepEqual(stateless.subarray(2), new Rc4(changeSessionKey(start, initial, bits)).process(f));
  }
});

test('coherency count wraps at 4096 in both modes', () => {
  for (const stateless of MODES) {
    const { a, b } = pair({ bits: 40, stateless });
    for (let n = 0; n < 4096 + 300; n++) {
      const pkt = a.encryptor.encrypt(frame(n));
      assert.equal(ccountOf(pkt), n & 0xfff);
      assert.deepEqual(b.decryptor.decrypt(pkt), frame(n), `stateless=${stateless} #${n}`);
    }
  }
});

test('stateless: lost packets cost nothing; late, repeated and out-of-window packets are dropped', () => {
  const drops = new DropCounter(nullLogger, 'MPPE packet');
  const { a, b } = pair({ bits: 128, stateless: true, drops });
  const sent = Array.from({ length: 5000 }, (_, n) => a.encryptor.encrypt(frame(n)));
  let delivered = 0;
  for (let n = 0; n < sent.length; n++) {
    if (n % 3 === 1 || (n > 1000 && n < 1250)) continue; // a third lost, plus a burst of 249
    assert.deepEqual(b.decryptor.decrypt(sent[n]!.slice()), frame(n));
    delivered++;
  }
  assert.ok(delivered > 3000);
  assert.equal(b.decryptor.decrypt(sent[4998]!.slice()), null, 'replay');
  assert.equal(b.decryptor.lastDrop, 'coherency count late or repeated');
  assert.equal(b.decryptor.decrypt(sent[4990]!.slice()), null, 'late');
  const next = a.encryptor.encrypt(frame(5000));
  assert.deepEqual(b.decryptor.decrypt(next), frame(5000));
  assert.equal(drops.total, 2);
});

test('stateless: a count jump beyond the window is dropped without disturbing the state', () => {
  const { a, b } = pair({ bits: 128, stateless: true });
  assert.deepEqual(b.decryptor.decrypt(a.encryptor.encrypt(frame(0))), frame(0));
  const forged = a.encryptor.encrypt(frame(1));
  const bogus = forged.slice();
  bogus[0] = (bogus[0]! & 0xf0) | 0x0b; // count 0xB01: 2816 ahead
  assert.equal(b.decryptor.decrypt(bogus), null);
  assert.deepEqual(b.decryptor.decrypt(forged), frame(1));
  assert.equal(b.decryptor.takeResetRequest(), false);
});

test('the wrong keys do not produce the plaintext', () => {
  for (const stateless of MODES) {
    const settings = { bits: 128 as const, stateless };
    const sender = createMppe({ send: KEY_A, recv: KEY_B }, settings);
    const wrong = createMppe({ send: KEY_B, recv: KEY_B }, settings);
    const f = frame(1, 200);
    const out = wrong.decryptor.decrypt(sender.encryptor.encrypt(f));
    assert.ok(out);
    assert.notDeepEqual(out, f);
  }
});

test('encryptInto writes at an offset, in place too, and encryptInPlace from where the plaintext lies: exactly what encrypt returns', () => {
  for (const stateless of MODES) {
    const x = pair({ bits: 128, stateless });
    const y = pair({ bits: 128, stateless });
    const zenc = pair({ bits: 128, stateless }).a.encryptor;
    for (let n = 0; n < 300; n++) {
      const f = frame(n, 64);
      const expected = x.a.encryptor.encrypt(f);
      const buf = new Uint8Array(100).fill(0xee);
      buf.set(f, 12); // headroom of 10 + 2 before the frame: encrypt in place
      assert.equal(y.a.encryptor.encryptInto(buf.subarray(12, 12 + f.length), buf, 10), 66);
      assert.deepEqual(buf.subarray(10, 76), expected);
      assert.equal(buf[9], 0xee);
      assert.equal(buf[76], 0xee);
      // encryptInPlace: the same octets, from the plaintext where it lies.
      const z = new Uint8Array(100).fill(0xee);
      z.set(f, 22);
      assert.equal(zenc.encryptInPlace(z, 20, f.length), 66);
      assert.deepEqual(z.subarray(20, 86), expected);
      assert.equal(z[19], 0xee);
      assert.equal(z[86], 0xee);
    }
    assert.throws(() => y.a.encryptor.encryptInto(frame(0, 64), new Uint8Array(65), 0), RangeError);
    assert.throws(() => zenc.encryptInPlace(new Uint8Array(65), 0, 64), RangeError);
  }
});

test('a 1-octet (compressed) protocol field comes back as it was sent', () => {
  const { a, b } = pair({ bits: 128, stateless: true });
  const f = Uint8Array.of(0x21, 0x45, 0, 0, 20);
  assert.deepEqual(b.decryptor.decrypt(a.encryptor.encrypt(f)), f);
});

test('decryption happens in place: the plaintext is a view of the packet', () => {
  const { a, b } = pair({ bits: 128, stateless: true });
  const pkt = a.encryptor.encrypt(frame(0));
  const plain = b.decryptor.decrypt(pkt);
  assert.ok(plain);
  assert.equal(plain.buffer, pkt.buffer);
  assert.equal(plain.byteOffset, pkt.byteOffset + 2);
});

test('malformed packets are dropped and counted, never thrown', () => {
  for (const stateless of MODES) {
    const drops = new DropCounter(nullLogger, 'MPPE packet');
    const { a, b } = pair({ bits: 128, stateless, drops });
    const good = a.encryptor.encrypt(frame(0));
    const bad = [
      new Uint8Array(0),
      Uint8Array.of(0x90),
      Uint8Array.of(0x90, 0x00),
      Uint8Array.of(good[0]! & ~MPPE_ENCRYPTED, good[1]!, 1, 2), // not encrypted
      Uint8Array.of(good[0]! | 0x20, good[1]!, 1, 2), // MPPC bit C
      Uint8Array.of(good[0]! | 0x40, good[1]!, 1, 2), // MPPC bit B
    ];
    if (stateless) bad.push(Uint8Array.of(good[0]! & ~MPPE_FLUSHED, good[1]!, 1, 2));
    for (const pkt of bad) assert.equal(b.decryptor.decrypt(pkt), null);
    assert.equal(drops.total, bad.length);
    assert.deepEqual(b.decryptor.decrypt(good), frame(0), 'state untouched by the bad packets');
  }
});

test('property: arbitrary input never throws; a result is a view of the packet past the header', () => {
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 40 }),
      (stateless, junk) => {
        const { b } = pair({ bits: 128, stateless });
        for (const j of junk) {
          const r = b.decryptor.decrypt(j);
          if (r === null) continue;
          assert.equal(r.buffer, j.buffer);
          assert.equal(r.byteOffset, j.byteOffset + 2);
          assert.equal(r.length, j.length - 2);
        }
      },
    ),
    { numRuns: 200 },
  );
});

// Junk that passes the header checks is indistinguishable from a forged packet: in stateless mode
// two forged jumps of 2047 move the receiver a whole 4096-count cycle of keys ahead, which no
// implementation can detect (MPPE has no integrity check). Only malformed junk is harmless.
test('property: malformed headers never disturb a following good packet (both modes)', () => {
  const malformed = fc.oneof(
    fc.uint8Array({ maxLength: 2 }),
    fc.uint8Array({ minLength: 3, maxLength: 64 }).map((j) => {
      j[0] = j[0]! & ~MPPE_ENCRYPTED; // D clear
      return j;
    }),
    fc.uint8Array({ minLength: 3, maxLength: 64 }).map((j) => {
      j[0] = j[0]! | 0x40; // MPPC bit B
      return j;
    }),
  );
  fc.assert(
    fc.property(fc.boolean(), fc.array(malformed, { maxLength: 20 }), (stateless, junk) => {
      const { a, b } = pair({ bits: 128, stateless });
      for (const j of junk) assert.equal(b.decryptor.decrypt(j), null);
      assert.deepEqual(b.decryptor.decrypt(a.encryptor.encrypt(frame(99))), frame(99));
      assert.equal(b.decryptor.takeResetRequest(), false);
    }),
    { numRuns: 100 },
  );
});

/** Decrypt, returning the key changes that one packet cost. */
function costOf(d: ReturnType<typeof pair>['b']['decryptor'], pkt: Uint8Array): [Uint8Array | null, number] {
  const before = d.keyChanges ?? Number.NaN;
  const out = d.decrypt(pkt);
  return [out, (d.keyChanges ?? Number.NaN) - before];
}

test('stateless: a peer advancing the count by 2047 per packet gets bounded work per packet, its packets dropped', () => {
  const drops = new DropCounter(nullLogger, 'MPPE packet');
  const { a, b } = pair({ bits: 128, stateless: true, drops });
  assert.deepEqual(b.decryptor.decrypt(a.encryptor.encrypt(frame(0))), frame(0));
  let total = 0;
  let decrypted = 0;
  for (let k = 0; k < 12; k++) {
    let pkt: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < 2047; i++) pkt = a.encryptor.encrypt(frame(i)); // what an attacker skips
    const [out, cost] = costOf(b.decryptor, pkt);
    assert.ok(cost <= MPPE_FREE_KEY_CHANGES + MPPE_KEY_CHANGE_CREDIT, `packet ${k} cost ${cost} key changes`);
    total += cost;
    if (out) decrypted++;
  }
  assert.ok(total <= MPPE_FREE_KEY_CHANGES + MPPE_KEY_CHANGE_CREDIT + 11 * MPPE_FREE_KEY_CHANGES, `${total}`);
  assert.equal(decrypted, 0);
  assert.ok(drops.get('coherency count too far ahead') > 0);
  assert.equal(b.decryptor.lastDrop !== undefined, true);
  assert.equal(b.decryptor.consecutiveDrops, 12);
});

test('stateless: a genuine outage of 1500 packets is caught up in bounded steps, then every packet decrypts', () => {
  const { a, b } = pair({ bits: 128, stateless: true });
  const sent = Array.from({ length: 2000 }, (_, n) => a.encryptor.encrypt(frame(n)));
  for (let n = 0; n < 100; n++) assert.deepEqual(b.decryptor.decrypt(sent[n]!), frame(n));
  let dropped = 0;
  for (let n = 1600; n < 2000; n++) {
    const [out, cost] = costOf(b.decryptor, sent[n]!);
    assert.ok(cost <= MPPE_FREE_KEY_CHANGES + MPPE_KEY_CHANGE_CREDIT);
    if (out) assert.deepEqual(out, frame(n));
    else {
      assert.equal(b.decryptor.lastDrop, 'coherency count too far ahead');
      assert.equal(dropped, n - 1600, 'only the first packets after the outage are dropped');
      dropped++;
    }
  }
  assert.ok(dropped > 0 && dropped < 100, `${dropped}`);
  assert.equal(b.decryptor.consecutiveDrops, 0);
});

test('stateless: far packets being caught up do not disturb packets continuing the current count', () => {
  const { a, b } = pair({ bits: 128, stateless: true });
  const sent = Array.from({ length: 1200 }, (_, n) => a.encryptor.encrypt(frame(n)));
  assert.deepEqual(b.decryptor.decrypt(sent[0]!.slice()), frame(0));
  for (let n = 1; n < 300; n++) {
    assert.equal(b.decryptor.decrypt(sent[1100 + (n % 50)]!.slice()), null); // forged far ahead
    assert.deepEqual(b.decryptor.decrypt(sent[n]!.slice()), frame(n));
  }
});

test('decryption that keeps failing is flagged after failAfter consecutive drops', () => {
  for (const stateless of MODES) {
    const { a, b } = pair({ bits: 128, stateless, failAfter: 5 });
    const good = a.encryptor.encrypt(frame(0));
    for (let i = 0; i < 4; i++) b.decryptor.decrypt(Uint8Array.of(0x90));
    assert.equal(b.decryptor.failing, false);
    assert.equal(b.decryptor.lastDrop, 'packet too short');
    b.decryptor.decrypt(Uint8Array.of(good[0]! & ~MPPE_ENCRYPTED, good[1]!, 1, 2));
    assert.equal(b.decryptor.lastDrop, 'encrypted bit missing');
    assert.equal(b.decryptor.failing, true);
    assert.deepEqual(b.decryptor.decrypt(good), frame(0));
    assert.equal(b.decryptor.failing, false);
    assert.equal(b.decryptor.consecutiveDrops, 0);
    assert.equal(b.decryptor.lastDrop, undefined);
  }
});
