import assert from 'node:assert/strict';
import { test } from 'node:test';
import { md4 } from '../../src/crypto/md4.ts';
import {
  challengeHash,
  challengeResponse,
  checkAuthenticatorResponse,
  generateAuthenticatorResponse,
  generateNtResponse,
  hashNtPasswordHash,
  ntChallengeResponseV1,
  ntPasswordHash,
  userNameForChallengeHash,
} from '../../src/crypto/mschap.ts';
import { fromHex, hex } from '../../src/wire/bytes.ts';

// RFC 2759 §9.2 (values re-checked in shared/design/TEST-VECTORS.md).
const v2 = {
  userName: 'User',
  password: 'clientPass',
  authChallenge: fromHex('5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28'),
  peerChallenge: fromHex('21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E'),
  challenge: 'd02e4386bce91226',
  passwordHash: '44ebba8d5312b8d611474411f56989ae',
  ntResponse: '82309ecd8d708b5ea08faa3981cd83544233114a3d85d6df',
  passwordHashHash: '41c00c584bd2d91c4017a2a12fa59f3f',
  authenticatorResponse: 'S=407A5589115FD0D6209F510FE9C04566932CDA56',
};

test('RFC 2759 §9.2: NtPasswordHash and HashNtPasswordHash', () => {
  assert.equal(hex(ntPasswordHash(v2.password)), v2.passwordHash);
  assert.equal(hex(hashNtPasswordHash(fromHex(v2.passwordHash))), v2.passwordHashHash);
});

test('RFC 2759 §9.2: ChallengeHash, NT-Response, AuthenticatorResponse', () => {
  const hash = fromHex(v2.passwordHash);
  assert.equal(hex(challengeHash(v2.peerChallenge, v2.authChallenge, v2.userName)), v2.challenge);
  assert.equal(hex(challengeResponse(fromHex(v2.challenge), hash)), v2.ntResponse);
  const nt = generateNtResponse(v2.authChallenge, v2.peerChallenge, v2.userName, hash);
  assert.equal(hex(nt), v2.ntResponse);
  const s = generateAuthenticatorResponse(hash, nt, v2.peerChallenge, v2.authChallenge, v2.userName);
  assert.equal(s, v2.authenticatorResponse);
});

test('checkAuthenticatorResponse accepts the right digest only', () => {
  const hash = fromHex(v2.passwordHash);
  const nt = fromHex(v2.ntResponse);
  const check = (r: string) =>
    checkAuthenticatorResponse(hash, nt, v2.peerChallenge, v2.authChallenge, 'User', r);
  assert.equal(check(v2.authenticatorResponse), true);
  assert.equal(check(v2.authenticatorResponse.toLowerCase().replace('s=', 'S=')), true);
  assert.equal(check(v2.authenticatorResponse.replace('56', '57')), false);
  assert.equal(check(`${v2.authenticatorResponse}0`), false);
  assert.equal(check(v2.authenticatorResponse.slice(2)), false);
  assert.equal(check(''), false);
  assert.equal(check('S=ZZ7A5589115FD0D6209F510FE9C04566932CDA56'), false);
});

test('RFC 2759 §8.2: the domain prefix is not part of the hashed user name', () => {
  const plain = challengeHash(v2.peerChallenge, v2.authChallenge, 'User');
  assert.deepEqual(challengeHash(v2.peerChallenge, v2.authChallenge, 'CORP\\User'), plain);
  assert.deepEqual(
    challengeHash(v2.peerChallenge, v2.authChallenge, new TextEncoder().encode('a\\b\\User')),
    plain,
  );
  assert.equal(hex(userNameForChallengeHash('User')), '55736572');
  assert.notDeepEqual(challengeHash(v2.peerChallenge, v2.authChallenge, 'user'), plain);
});

test('RFC 2433 B.2: MS-CHAPv1 NtPasswordHash and NtChallengeResponse ("MyPw")', () => {
  const hash = ntPasswordHash('MyPw');
  assert.equal(hex(hash), 'fc156af7edcd6c0edde3337d427f4eac');
  assert.equal(
    hex(ntChallengeResponseV1(fromHex('10 2D B5 DF 08 5D 30 41'), hash)),
    '4e9d3c8f9cfd385d5bf4d3246791956ca4c351ab409a3d61',
  );
});

test('passwords are hashed as UTF-16LE, non-ASCII included', () => {
  for (const pw of ['pässwörd', '密码', 'emoji 😀', '']) {
    assert.deepEqual(ntPasswordHash(pw), md4(Buffer.from(pw, 'utf16le')));
  }
  // 'é' is U+00E9: UTF-16LE E9 00, not the UTF-8 C3 A9.
  assert.deepEqual(ntPasswordHash('é'), md4(fromHex('e900')));
  assert.notDeepEqual(ntPasswordHash('é'), md4(fromHex('c3a9')));
  // '😀' is the surrogate pair D83D DE00.
  assert.deepEqual(ntPasswordHash('😀'), md4(fromHex('3dd800de')));
});

test('wrong-length inputs are rejected', () => {
  assert.throws(() => challengeResponse(new Uint8Array(7), new Uint8Array(16)), RangeError);
  assert.throws(() => challengeResponse(new Uint8Array(8), new Uint8Array(15)), RangeError);
});

test('a password hash used again gives the same answers, and a changed one never an old answer', () => {
  const hash = fromHex(v2.passwordHash);
  const challenge = fromHex(v2.challenge);
  for (let i = 0; i < 3; i++) {
    assert.equal(hex(challengeResponse(challenge, hash)), v2.ntResponse);
    assert.equal(hex(hashNtPasswordHash(hash)), v2.passwordHashHash);
  }
  // What a caller does to the hash it got back does not reach the next caller.
  hashNtPasswordHash(hash).fill(0);
  assert.equal(hex(hashNtPasswordHash(hash)), v2.passwordHashHash);
  // The same array with other content: derived from the new content.
  hash.set(ntPasswordHash('another password'));
  const fresh = ntPasswordHash('another password');
  assert.equal(hex(challengeResponse(challenge, hash)), hex(challengeResponse(challenge, fresh)));
  assert.equal(hex(hashNtPasswordHash(hash)), hex(md4(fresh)));
  assert.notEqual(hex(challengeResponse(challenge, hash)), v2.ntResponse);
});
