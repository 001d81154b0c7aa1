/**
 * MS-CHAPv1/v2 at the packet level: the RFC 2759 §9.2 and RFC 2433 B.2 values through our
 * authenticator and peer, mutual authentication, Failure messages and MPPE key orientation.
 */
import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import { ntPasswordHash } from '../../../src/crypto/mschap.ts';
import { ChapCode, decodeChapPacket, encodeChapPacket } from '../../../src/ppp/auth/chap-codec.ts';
import {
  type AuthMethod,
  createAuthenticator,
  createAuthPeer,
  MsChapError,
} from '../../../src/ppp/auth/index.ts';
import { ntHashOfOwnPassword, ntHashOfSecret } from '../../../src/ppp/auth/ms-common.ts';
import type { MppeKeySource } from '../../../src/ppp/mppe/types.ts';
import { DropCounter } from '../../../src/util/counters.ts';
import { fromHex, hex } from '../../../src/wire/bytes.ts';
import { connect, countingRandom, type FakeHost, makePair, store } from './harness.ts';

/** RFC 2759 §9.2 (see shared/design/TEST-VECTORS.md). */
const V2 = {
  user: 'User',
  password: 'clientPass',
  authChallenge: fromHex('5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28'),
  peerChallenge: fromHex('21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E'),
  ntResponse: fromHex('82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF'),
  authResponse: 'S=407A5589115FD0D6209F510FE9C04566932CDA56',
  /** RFC 3079 §3.5: the server's send start key (the client's receive key) and the other one. */
  serverSend128: '8b7cdc149b993a1ba118cb153f56dccb',
  serverRecv128: 'd5f0e9521e3ea9589645e86051c82226',
};

/** RFC 2433 B.2. */
const V1 = {
  password: 'MyPw',
  challenge: fromHex('10 2D B5 DF 08 5D 30 41'),
  ntResponse: fromHex('4E 9D 3C 8F 9C FD 38 5D 5B F4 D3 24 67 91 95 6C A4 C3 51 AB 40 9A 3D 61'),
};

/** A random source that hands out the given chunks in order. */
function scripted(...chunks: Uint8Array[]): (n: number) => Uint8Array {
  return (n) => {
    const next = chunks.shift();
    if (!next || next.length !== n) throw new Error(`unexpected random(${n})`);
    return next;
  };
}

type StartKeys = { send: Uint8Array; recv: Uint8Array };

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

function lastPacket(host: FakeHost) {
  return decodeChapPacket(host.sent.at(-1)!.packet);
}

function v2Response(name: string): Uint8Array {
  const value = new Uint8Array(49);
  value.set(V2.peerChallenge, 0);
  value.set(V2.ntResponse, 24);
  return encodeChapPacket({ code: ChapCode.Response, id: 0x2a, value, name: new TextEncoder().encode(name) });
}

function v2Authenticator(user: string, stripDomain = false) {
  const pair = makePair();
  const drops = new DropCounter(pair.server.log, 'CHAP packet');
  const auth = createAuthenticator('mschapv2', pair.server, {
    credentials: store([{ user, secret: { kind: 'password', password: V2.password } }]),
    serverName: 'poptop',
    stripDomain,
    random: scripted(Uint8Array.of(0x2a), V2.authChallenge, new Uint8Array(16)),
    drops,
  });
  auth.start();
  return { pair, auth, drops };
}

describe('MS-CHAPv2 with the RFC 2759 §9.2 values', () => {
  it('authenticator: sends the Challenge, verifies the NT-Response, answers the exact S=', () => {
    const { pair, auth } = v2Authenticator('User');
    const challenge = lastPacket(pair.server);
    assert.ok(challenge.code === ChapCode.Challenge);
    assert.equal(challenge.id, 0x2a);
    assert.deepEqual(challenge.value, V2.authChallenge);
    assert.equal(text(challenge.name), 'poptop');

    auth.receive(v2Response('User'));
    const success = lastPacket(pair.server);
    assert.ok(success.code === ChapCode.Success);
    assert.equal(success.id, 0x2a);
    assert.equal(text(success.message), `${V2.authResponse} M=Access granted`);
    const result = pair.server.successes[0]!;
    assert.equal(result.user, 'User');
    const keys = result.mppeKeys!.startKeys(128);
    assert.equal(hex(keys.send), V2.serverSend128);
    assert.equal(hex(keys.recv), V2.serverRecv128);
  });

  it('the ChallengeHash ignores a DOMAIN\\ prefix, with or without stripping for lookup', () => {
    for (const [stored, strip] of [
      ['CORP\\User', false],
      ['User', true],
    ] as const) {
      const { pair, auth } = v2Authenticator(stored, strip);
      auth.receive(v2Response('CORP\\User'));
      assert.equal(pair.server.outcome, 'success', pair.log.text());
      assert.equal(
        text((lastPacket(pair.server) as { message: Uint8Array }).message).slice(0, 42),
        V2.authResponse,
      );
      assert.equal(pair.server.successes[0]?.rawUser, 'CORP\\User');
      assert.equal(pair.server.successes[0]?.user, stored);
    }
  });

  it('peer: builds the exact Response (Value-Size 49) and accepts the exact S=', () => {
    const pair = makePair();
    const peer = createAuthPeer('mschapv2', pair.client, {
      user: V2.user,
      password: V2.password,
      random: scripted(V2.peerChallenge),
    });
    peer.start();
    peer.receive(
      encodeChapPacket({
        code: ChapCode.Challenge,
        id: 0x2a,
        value: V2.authChallenge,
        name: new TextEncoder().encode('srv'),
      }),
    );
    assert.deepEqual(pair.client.sent.at(-1)!.packet, v2Response('User'));
    const success = `${V2.authResponse} M=Access granted`;
    peer.receive(
      encodeChapPacket({ code: ChapCode.Success, id: 0x2a, message: new TextEncoder().encode(success) }),
    );
    assert.equal(pair.client.outcome, 'success', pair.log.text());
    const keys = pair.client.successes[0]!.mppeKeys!.startKeys(128);
    assert.equal(hex(keys.recv), V2.serverSend128, 'client receive key = server send key');
    assert.equal(hex(keys.send), V2.serverRecv128);
  });

  for (const [name, message, reason] of [
    [
      'a wrong S=',
      'S=407A5589115FD0D6209F510FE9C04566932CDA57 M=Access granted',
      /wrong authenticator response/,
    ],
    ['no S=', 'Access granted', /no authenticator response/],
  ] as const) {
    it(`peer: fails on ${name} in the Success message (mutual authentication)`, () => {
      const pair = makePair();
      const peer = createAuthPeer('mschapv2', pair.client, {
        user: V2.user,
        password: V2.password,
        random: scripted(V2.peerChallenge),
      });
      peer.start();
      peer.receive(
        encodeChapPacket({
          code: ChapCode.Challenge,
          id: 1,
          value: V2.authChallenge,
          name: new Uint8Array(0),
        }),
      );
      peer.receive(
        encodeChapPacket({ code: ChapCode.Success, id: 1, message: new TextEncoder().encode(message) }),
      );
      assert.equal(pair.client.outcome, 'failure');
      assert.match(pair.client.failures[0]!.reason, reason);
      assert.equal(pair.client.successes.length, 0);
    });
  }

  it('peer: answers a retransmitted Challenge with the same Response, a new one with a new Response', () => {
    const pair = makePair();
    const peer = createAuthPeer('mschapv2', pair.client, {
      user: 'u',
      password: 'p',
      random: countingRandom(9),
    });
    peer.start();
    const challenge = (id: number) =>
      encodeChapPacket({ code: ChapCode.Challenge, id, value: V2.authChallenge, name: new Uint8Array(0) });
    peer.receive(challenge(5));
    peer.receive(challenge(5));
    peer.receive(challenge(6));
    const [a, b, c] = pair.client.sent.map((s) => hex(s.packet));
    assert.equal(a, b);
    assert.notEqual(b, c);
  });

  it('authenticator: Failure is "E=691 R=0 C=<32 hex> V=3 M=..." and a wrong Value-Size is dropped', () => {
    const { pair, auth, drops } = v2Authenticator('User');
    const short = encodeChapPacket({
      code: ChapCode.Response,
      id: 0x2a,
      value: new Uint8Array(48),
      name: new Uint8Array(0),
    });
    auth.receive(short);
    const stale = v2Response('User');
    stale[1] = 0x2b; // an Identifier we did not send
    auth.receive(stale);
    assert.equal(drops.total, 2);
    assert.equal(pair.server.outcome, 'pending');
    const bad = v2Response('User');
    bad[5 + 30] = (bad[5 + 30] ?? 0) ^ 1; // flip a bit of the NT-Response
    auth.receive(bad);
    const failure = lastPacket(pair.server);
    assert.ok(failure.code === ChapCode.Failure);
    assert.equal(
      text(failure.message),
      `E=${MsChapError.AuthenticationFailure} R=0 C=${'00'.repeat(16)} V=3 M=Authentication failed`,
    );
    assert.equal(pair.server.failures[0]?.reason, 'wrong password for "User"');
  });
});

describe('MS-CHAPv1 with the RFC 2433 B.2 values', () => {
  function v1Authenticator() {
    const pair = makePair();
    const auth = createAuthenticator('mschap', pair.server, {
      credentials: store([{ user: 'User', secret: { kind: 'password', password: V1.password } }]),
      serverName: 'poptop',
      stripDomain: false,
      random: scripted(Uint8Array.of(7), V1.challenge),
    });
    auth.start();
    return { pair, auth };
  }
  const response = (flags: number) => {
    const value = new Uint8Array(49);
    value.set(V1.ntResponse, 24);
    value[48] = flags;
    return encodeChapPacket({
      code: ChapCode.Response,
      id: 7,
      value,
      name: new TextEncoder().encode('User'),
    });
  };

  it('accepts the published NT-Response', () => {
    const { pair, auth } = v1Authenticator();
    assert.deepEqual((lastPacket(pair.server) as { value: Uint8Array }).value, V1.challenge);
    auth.receive(response(1));
    assert.equal(pair.server.outcome, 'success', pair.log.text());
    assert.equal(text((lastPacket(pair.server) as { message: Uint8Array }).message), 'Access granted');
  });

  it('refuses a LAN Manager-only Response with "E=691 R=0 V=2"', () => {
    const { pair, auth } = v1Authenticator();
    auth.receive(response(0));
    assert.match(pair.server.failures[0]!.reason, /LAN Manager/);
    assert.equal(text((lastPacket(pair.server) as { message: Uint8Array }).message), 'E=691 R=0 V=2');
  });

  it('peer builds the published Response', () => {
    const pair = makePair();
    const peer = createAuthPeer('mschap', pair.client, { user: 'User', password: V1.password });
    peer.start();
    peer.receive(
      encodeChapPacket({ code: ChapCode.Challenge, id: 7, value: V1.challenge, name: new Uint8Array(0) }),
    );
    assert.deepEqual(pair.client.sent.at(-1)!.packet, response(1));
  });
});

describe('MPPE keys from an in-memory MS-CHAP run', () => {
  for (const method of ['mschap', 'mschapv2'] as AuthMethod[]) {
    it(`${method}: server send = client receive and vice versa, at every strength`, () => {
      const pair = makePair();
      const auth = createAuthenticator(method, pair.server, {
        credentials: store([{ user: 'alice' }]),
        serverName: 'poptop',
        stripDomain: false,
      });
      const peer = createAuthPeer(method, pair.client, { user: 'alice', password: 'secret' });
      connect(pair, auth, peer);
      peer.start();
      auth.start();
      pair.clock.advance(1000);
      const server: MppeKeySource | undefined = pair.server.successes[0]?.mppeKeys;
      const client: MppeKeySource | undefined = pair.client.successes[0]?.mppeKeys;
      if (!server || !client) assert.fail(pair.log.text());
      for (const bits of [40, 56, 128] as const) {
        const s: StartKeys = server.startKeys(bits);
        const c: StartKeys = client.startKeys(bits);
        assert.equal(s.send.length, bits === 128 ? 16 : 8);
        assert.deepEqual(s.send, c.recv);
        assert.deepEqual(s.recv, c.send);
      }
    });
  }
});

describe('MS-CHAP Failure seen by the peer', () => {
  it('reports the error code in words', () => {
    const pair = makePair();
    const peer = createAuthPeer('mschapv2', pair.client, { user: 'u', password: 'p' });
    peer.start();
    peer.receive(
      encodeChapPacket({ code: ChapCode.Challenge, id: 3, value: V2.authChallenge, name: new Uint8Array(0) }),
    );
    const msg = `E=${MsChapError.NoDialinPermission} R=0 C=${'AB'.repeat(16)} V=3 M=No dial-in`;
    peer.receive(encodeChapPacket({ code: ChapCode.Failure, id: 3, message: new TextEncoder().encode(msg) }));
    assert.equal(
      pair.client.failures[0]?.reason,
      'authenticator refused us: E=649 (no dial-in permission): "No dial-in"',
    );
  });
});

test("a stored password's NT hash is computed once per secret, and follows a change", () => {
  const secret = { kind: 'password' as const, password: 'clientPass' };
  const first = ntHashOfSecret(secret);
  assert.equal(hex(first), '44ebba8d5312b8d611474411f56989ae');
  assert.equal(ntHashOfSecret(secret), first, 'the same array at every login');
  // A caller that changed the shared array costs a recomputation, never a wrong hash.
  first.fill(0);
  assert.equal(hex(ntHashOfSecret(secret)), '44ebba8d5312b8d611474411f56989ae');
  (secret as { password: string }).password = 'another';
  assert.equal(hex(ntHashOfSecret(secret)), hex(ntPasswordHash('another')));
  const stored = { kind: 'nthash' as const, hash: fromHex('44ebba8d5312b8d611474411f56989ae') };
  assert.equal(ntHashOfSecret(stored), stored.hash);
});

test("the client's own password: computed once, and any number of passwords stay right", () => {
  const a = ntHashOfOwnPassword('clientPass');
  assert.equal(ntHashOfOwnPassword('clientPass'), a);
  for (let i = 0; i < 40; i++) assert.equal(hex(ntHashOfOwnPassword(`p${i}`)), hex(ntPasswordHash(`p${i}`)));
  assert.equal(hex(ntHashOfOwnPassword('clientPass')), '44ebba8d5312b8d611474411f56989ae');
});
