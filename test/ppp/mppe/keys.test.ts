import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { hashNtPasswordHash, ntPasswordHash } from '../../../src/crypto/mschap.ts';
import {
  changeSessionKey,
  getAsymmetricStartKey,
  getMasterKey,
  getNewKeyFromSha,
  initialSessionKey,
  mppeKeysFromMschapV1,
  mppeKeysFromMschapV2,
  mppeKeysFromStartKeys,
  reduceSessionKey,
} from '../../../src/ppp/mppe/keys.ts';
import { fromHex, hex } from '../../../src/wire/bytes.ts';

// RFC 3079 §3.5: the inputs of RFC 2759 §9.2 (user "User", password "clientPass").
const passwordHash = fromHex('44 EB BA 8D 53 12 B8 D6 11 47 44 11 F5 69 89 AE');
const ntResponse = fromHex('82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF');
const v = {
  masterKey: 'fdece3717a8c838cb388e527ae3cdd31',
  sendStartKey8: '8b7cdc149b993a1b', // server send = client receive (Magic3)
  sendSessionKey40: 'd1269ec49fa62e3e',
  sendSessionKey56: 'd15c00c49fa62e3e',
  newKey8BeforeReduction: '965c00c49fa62e3e',
  sendStartKey128: '8b7cdc149b993a1ba118cb153f56dccb',
  sendSessionKey128: '405cb2247a7956e6e211007ae27b22d4',
  recvStartKey128: 'd5f0e9521e3ea9589645e86051c82226', // server receive = client send (Magic2)
};

test('RFC 3079 §3.5: MasterKey and the server send/receive start keys', () => {
  assert.equal(hex(ntPasswordHash('clientPass')), hex(passwordHash));
  const master = getMasterKey(hashNtPasswordHash(passwordHash), ntResponse);
  assert.equal(hex(master), v.masterKey);
  assert.equal(hex(getAsymmetricStartKey(master, 16, true, true)), v.sendStartKey128);
  assert.equal(hex(getAsymmetricStartKey(master, 8, true, true)), v.sendStartKey8);
  assert.equal(hex(getAsymmetricStartKey(master, 16, false, true)), v.recvStartKey128);
  // The client's keys are the server's, crossed.
  assert.equal(hex(getAsymmetricStartKey(master, 16, true, false)), v.recvStartKey128);
  assert.equal(hex(getAsymmetricStartKey(master, 16, false, false)), v.sendStartKey128);
});

test('RFC 3079 §3.5: initial session keys for 40, 56 and 128 bits', () => {
  const start8 = fromHex(v.sendStartKey8);
  assert.equal(hex(getNewKeyFromSha(start8, start8, 8)), v.newKey8BeforeReduction);
  assert.equal(hex(initialSessionKey(start8, 40)), v.sendSessionKey40);
  assert.equal(hex(initialSessionKey(start8, 56)), v.sendSessionKey56);
  assert.equal(hex(initialSessionKey(fromHex(v.sendStartKey128), 128)), v.sendSessionKey128);
});

test('reduceSessionKey weakens 40/56-bit keys in place and leaves 128-bit keys alone', () => {
  assert.equal(hex(reduceSessionKey(fromHex(v.newKey8BeforeReduction), 40)), v.sendSessionKey40);
  assert.equal(hex(reduceSessionKey(fromHex(v.newKey8BeforeReduction), 56)), v.sendSessionKey56);
  assert.equal(hex(reduceSessionKey(fromHex(v.sendSessionKey128), 128)), v.sendSessionKey128);
});

test('changeSessionKey: RC4 of GetNewKeyFromSHA(start, current) keyed by itself, then reduced', () => {
  const start = fromHex(v.sendStartKey128);
  const current = fromHex(v.sendSessionKey128);
  const next = changeSessionKey(start, current, 128);
  assert.equal(next.length, 16);
  assert.notEqual(hex(next), hex(current));
  const next40 = changeSessionKey(fromHex(v.sendStartKey8), fromHex(v.sendSessionKey40), 40);
  assert.equal(hex(next40.subarray(0, 3)), 'd1269e');
});

test('mppeKeysFromMschapV2 orients keys by role; 40/56-bit start keys are 8 octets', () => {
  const server = mppeKeysFromMschapV2(passwordHash, ntResponse, 'server');
  const client = mppeKeysFromMschapV2(passwordHash, ntResponse, 'client');
  const s128 = server.startKeys(128);
  assert.equal(hex(s128.send), v.sendStartKey128);
  assert.equal(hex(s128.recv), v.recvStartKey128);
  const c128 = client.startKeys(128);
  assert.deepEqual(c128, { send: s128.recv, recv: s128.send });
  for (const bits of [40, 56] as const) {
    const s = server.startKeys(bits);
    assert.equal(hex(s.send), v.sendStartKey8);
    assert.equal(s.recv.length, 8);
    assert.deepEqual(client.startKeys(bits).recv, s.send);
  }
  const viaHashHash = mppeKeysFromMschapV2(
    { passwordHashHash: hashNtPasswordHash(passwordHash) },
    ntResponse,
    'server',
  );
  assert.deepEqual(viaHashHash.startKeys(128), s128);
});

test('mppeKeysFromMschapV1: SHA-1(hash hash ‖ hash hash ‖ challenge), same key both ways', () => {
  const challenge = fromHex('10 2D B5 DF 08 5D 30 41');
  const hash = ntPasswordHash('MyPw');
  const hh = hashNtPasswordHash(hash);
  const expected = createHash('sha1').update(hh).update(hh).update(challenge).digest().subarray(0, 16);
  const keys = mppeKeysFromMschapV1(hash, challenge, 'server').startKeys(128);
  assert.equal(hex(keys.send), expected.toString('hex'));
  assert.deepEqual(keys.recv, keys.send);
  assert.deepEqual(
    mppeKeysFromMschapV1(hash, challenge, 'client').startKeys(40).send,
    keys.send.subarray(0, 8),
  );
  assert.throws(() => mppeKeysFromMschapV1(hash, new Uint8Array(16)), RangeError);
});

test('key sources hand out copies that callers cannot corrupt', () => {
  const src = mppeKeysFromStartKeys(new Uint8Array(16).fill(1), new Uint8Array(16).fill(2));
  src.startKeys(128).send.fill(9);
  assert.equal(hex(src.startKeys(128).send), '01'.repeat(16));
  assert.throws(() => mppeKeysFromStartKeys(new Uint8Array(8), new Uint8Array(16)), RangeError);
});
