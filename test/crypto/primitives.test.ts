import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { desEncryptBlock, expandDesKey } from '../../src/crypto/des.ts';
import { md4 } from '../../src/crypto/md4.ts';
import { Rc4 } from '../../src/crypto/rc4.ts';
import { sha1 } from '../../src/crypto/sha1.ts';
import { fromHex, hex } from '../../src/wire/bytes.ts';

test('MD4: RFC 1320 §A.5 test suite', () => {
  const suite: [string, string][] = [
    ['', '31d6cfe0d16ae931b73c59d7e0c089c0'],
    ['a', 'bde52cb31de33e46245e05fbdbd6fb24'],
    ['abc', 'a448017aaf21d8525fc10ae87aa6729d'],
    ['message digest', 'd9130a8164549fe818874806e1c7014b'],
    ['abcdefghijklmnopqrstuvwxyz', 'd79e1c308aa5bbcdeea8ed63df412da9'],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', '043f8582f241db351ce627e153e7f0e4'],
    ['1234567890'.repeat(8), 'e33b4ddc9c38f2199c3e7b164fcc0536'],
  ];
  for (const [input, digest] of suite) assert.equal(hex(md4(Buffer.from(input, 'ascii'))), digest, input);
});

test('MD4: padding boundaries (55, 56, 63, 64, 65 octets) and subarray input', () => {
  const seen = new Set<string>();
  for (const n of [55, 56, 63, 64, 65, 119, 120]) {
    const d = hex(md4(new Uint8Array(n).fill(0x61)));
    assert.equal(d.length, 32);
    seen.add(d);
  }
  assert.equal(seen.size, 7);
  const big = Buffer.from('xxabcxx', 'ascii');
  assert.equal(hex(md4(big.subarray(2, 5))), 'a448017aaf21d8525fc10ae87aa6729d');
});

test('DES: known answers from FIPS/NBS (SP 800-17) tables and the classic worked example', () => {
  // [key, plaintext, ciphertext]
  const vectors: [string, string, string][] = [
    ['133457799bbcdff1', '0123456789abcdef', '85e813540f0ab405'], // worked example (FIPS 46 tutorial key)
    ['0101010101010101', '95f8a5e5dd31d900', '8000000000000000'], // SP 800-17 variable plaintext
    ['0101010101010101', 'dd7f121ca5015619', '4000000000000000'],
    ['0101010101010101', '8000000000000000', '95f8a5e5dd31d900'], // inverse-permutation table
    ['8001010101010101', '0000000000000000', '95a8d72813daa94d'], // variable key
    ['4001010101010101', '0000000000000000', '0eec1487dd8c26d5'],
    ['2001010101010101', '0000000000000000', '7ad16ffb79c45926'],
    ['1046913489980131', '0000000000000000', '88d55e54f54c97b4'], // permutation operation
    ['7ca110454a1a6e57', '01a1d6d039776742', '690f5b0d9a26939b'], // substitution table
    ['0131d9619dc1376e', '5cd54ca83def57da', '7a389d10354bd271'],
    ['07a1133e4a0b2686', '0248d43806f67172', '868ebb51cab4599a'],
  ];
  for (const [key, plain, cipher] of vectors) {
    assert.equal(hex(desEncryptBlock(fromHex(key), fromHex(plain))), cipher, `key ${key}`);
  }
});

test('DES: parity bits of the key are ignored', () => {
  const a = desEncryptBlock(fromHex('133457799bbcdff1'), fromHex('0123456789abcdef'));
  const b = desEncryptBlock(fromHex('123456789abcdef0'), fromHex('0123456789abcdef'));
  assert.deepEqual(a, b);
});

test('expandDesKey: RFC 2759 §9.3 / RFC 2433 B.3 parity-corrected keys', () => {
  assert.equal(hex(expandDesKey(fromHex('FC 15 6A F7 ED CD 6C'))), 'fd0b5b5e7f6e34d9');
  assert.equal(hex(expandDesKey(fromHex('0E DD E3 33 7D 42 7F'))), '0e6e796737ea08fe');
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 7, maxLength: 7 }), (k7) => {
      for (const octet of expandDesKey(k7)) {
        let ones = 0;
        for (let b = 0; b < 8; b++) ones += (octet >>> b) & 1;
        assert.equal(ones % 2, 1);
      }
    }),
  );
  assert.throws(() => expandDesKey(new Uint8Array(8)), RangeError);
});

/** RFC 6229 §2 keystream samples: key → (offset, 16 octets). */
const RC4_VECTORS: [string, [number, string][]][] = [
  [
    '0102030405',
    [
      [0x0, 'b2396305f03dc027ccc3524a0a1118a8'],
      [0x10, '6982944f18fc82d589c403a47a0d0919'],
      [0xf0, '28cb1132c96ce286421dcaadb8b69eae'],
      [0x100, '1cfcf62b03eddb641d77dfcf7f8d8c93'],
      [0x5f0, '3294f744d8f9790507e70f62e5bbceea'],
      [0xff0, '068326a2118416d21f9d04b2cd1ca050'],
      [0x1000, 'ff25b58995996707e51fbdf08b34d875'],
    ],
  ],
  [
    '0102030405060708090a0b0c0d0e0f10',
    [
      [0x0, '9ac7cc9a609d1ef7b2932899cde41b97'],
      [0x10, '5248c4959014126a6e8a84f11d1a9e1c'],
      [0x3f0, 'e7a72574f8782ae26aabcf9ebcd66065'],
      [0x1000, 'a36a4c301ae8ac13610ccbc12256cacc'],
    ],
  ],
  [
    '833222772a',
    [
      [0x0, '80ad97bdc973df8a2e879e92a497efda'],
      [0x7f0, 'e7119bd6dd9b22afe8f89585432881e2'],
      [0x1000, 'bf42c3018c2f7c66bfde524975768115'],
    ],
  ],
];

test('RC4: RFC 6229 keystream vectors', () => {
  for (const [key, samples] of RC4_VECTORS) {
    const stream = new Rc4(fromHex(key)).process(new Uint8Array(0x1010));
    for (const [offset, expected] of samples) {
      assert.equal(hex(stream.subarray(offset, offset + 16)), hex(fromHex(expected)), `${key} @${offset}`);
    }
  }
});

test('RC4: chunked, in-place and out-of-place processing agree; decrypt inverts encrypt', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 32 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.integer({ min: 0, max: 300 }),
      (key, data, cut) => {
        const whole = new Rc4(key).process(data);
        const r = new Rc4(key);
        const copy = data.slice();
        const split = Math.min(cut, copy.length);
        r.process(copy.subarray(0, split), copy.subarray(0, split));
        r.process(copy.subarray(split), copy.subarray(split));
        assert.deepEqual(copy, whole);
        assert.deepEqual(new Rc4(key).process(whole), data);
      },
    ),
  );
});

test('RC4: instances taking turns each keep their own stream (the shared working state)', () => {
  // Every instance runs on one module-level permutation: a turn of another instance (a re-key,
  // or keystream) must never leak into a stream.
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 24 }), { minLength: 2, maxLength: 4 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 40 }), fc.boolean()), { maxLength: 40 }),
      (keys, turns) => {
        const mixed = keys.map((k) => new Rc4(k));
        const got: number[][] = keys.map(() => []);
        const expected: number[][] = keys.map(() => []);
        const alone = keys.map((k) => new Rc4(k));
        for (const [who, length, rekey] of turns) {
          const k = who % keys.length;
          if (rekey) {
            mixed[k]!.setKey(keys[k]!);
            // What setKey must give: the stream from its start, as a fresh instance has it.
            got[k]!.length = 0;
            expected[k]!.length = 0;
            alone[k] = new Rc4(keys[k]!);
          } else {
            got[k]!.push(...mixed[k]!.process(new Uint8Array(length)));
          }
        }
        for (let k = 0; k < keys.length; k++) {
          expected[k]!.push(...alone[k]!.process(new Uint8Array(got[k]!.length)));
          assert.deepEqual(got[k], expected[k], `instance ${k}`);
        }
      },
    ),
  );
});

test('RC4: setKey restarts the stream; bad keys and short outputs are rejected', () => {
  const r = new Rc4(fromHex('0102030405'));
  r.process(new Uint8Array(100));
  r.setKey(fromHex('0102030405'));
  assert.equal(hex(r.process(new Uint8Array(4))), 'b2396305');
  assert.throws(() => new Rc4(new Uint8Array(0)), RangeError);
  assert.throws(() => r.process(new Uint8Array(4), new Uint8Array(3)), RangeError);
});

test('SHA-1: FIPS 180 examples and agreement with node:crypto at every padding boundary', () => {
  assert.equal(hex(sha1(Buffer.from('abc', 'ascii'))), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  assert.equal(
    hex(sha1(Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq', 'ascii'))),
    '84983e441c3bd26ebaae4aa1f95129e5e54670f1',
  );
  for (let n = 0; n <= 200; n++) {
    const data = new Uint8Array(n).map((_, i) => (i * 37 + n) & 0xff);
    assert.equal(hex(sha1(data)), createHash('sha1').update(data).digest('hex'), `length ${n}`);
  }
  const out = new Uint8Array(20);
  assert.equal(sha1(new Uint8Array(3), out), out);
});
