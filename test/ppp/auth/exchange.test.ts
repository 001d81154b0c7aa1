/**
 * Authenticator against peer, in memory, for every method: success, refusals, NT-hash secrets,
 * DOMAIN\user, non-ASCII passwords, lost packets, malformed packets and silent peers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Credential } from '../../../src/aaa/credentials.ts';
import { ntPasswordHash } from '../../../src/crypto/mschap.ts';
import {
  type AuthExchange,
  type AuthenticatorOptions,
  type AuthMethod,
  type AuthPeerOptions,
  createAuthenticator,
  createAuthPeer,
  PPP_CHAP,
  PPP_PAP,
} from '../../../src/ppp/auth/index.ts';
import { DropCounter } from '../../../src/util/counters.ts';
import { fromHex } from '../../../src/wire/bytes.ts';
import { connect, countingRandom, makePair, type Pair, store } from './harness.ts';

const METHODS: AuthMethod[] = ['pap', 'chap-md5', 'mschap', 'mschapv2'];

interface Run extends Pair {
  authenticator: AuthExchange;
  peer: AuthExchange;
  serverDrops: DropCounter;
  clientDrops: DropCounter;
}

function run(
  method: AuthMethod,
  opts: {
    credentials?: Partial<Credential>[];
    stripDomain?: boolean;
    user?: string;
    password?: string;
    lose?: Parameters<typeof connect>[3];
    server?: Partial<AuthenticatorOptions>;
    start?: boolean;
  } = {},
): Run {
  const pair = makePair();
  const serverDrops = new DropCounter(pair.server.log, 'auth packet');
  const clientDrops = new DropCounter(pair.client.log, 'auth packet');
  const authenticator = createAuthenticator(method, pair.server, {
    credentials: store(
      opts.credentials ?? [{ user: 'alice', secret: { kind: 'password', password: 'secret' } }],
    ),
    serverName: 'poptop',
    stripDomain: opts.stripDomain ?? false,
    random: countingRandom(1),
    drops: serverDrops,
    peerAddress: '203.0.113.5',
    ...opts.server,
  });
  const peerCfg: AuthPeerOptions = {
    user: opts.user ?? 'alice',
    password: opts.password ?? 'secret',
    random: countingRandom(2),
    drops: clientDrops,
  };
  const peer = createAuthPeer(method, pair.client, peerCfg);
  connect(pair, authenticator, peer, opts.lose);
  if (opts.start !== false) {
    peer.start();
    authenticator.start();
    pair.clock.advance(60_000);
  }
  return { ...pair, authenticator, peer, serverDrops, clientDrops };
}

const NEEDS_CLEAR: Record<AuthMethod, boolean> = {
  pap: false,
  'chap-md5': true,
  mschap: false,
  mschapv2: false,
};

for (const method of METHODS) {
  describe(`${method}: authenticator vs peer`, () => {
    it('succeeds with the right password', () => {
      const r = run(method);
      assert.equal(r.server.outcome, 'success', r.log.text());
      assert.equal(r.client.outcome, 'success', r.log.text());
      const s = r.server.successes[0]!;
      assert.equal(s.method, method);
      assert.equal(s.user, 'alice');
      assert.equal(s.rawUser, 'alice');
      assert.equal(s.credential?.user, 'alice');
      assert.equal(r.client.successes[0]?.user, 'alice');
      assert.equal(r.serverDrops.total + r.clientDrops.total, 0);
      assert.equal(r.clock.pending, 0, 'no timer left behind');
      assert.ok(!r.log.text().includes('secret'), 'the password never reaches the log');
      const protocol = method === 'pap' ? PPP_PAP : PPP_CHAP;
      assert.ok(r.server.sent.every((s) => s.protocol === protocol));
    });

    it('refuses a wrong password, with the reason in words', () => {
      const r = run(method, { password: 'guess' });
      assert.equal(r.server.outcome, 'failure');
      assert.equal(r.client.outcome, 'failure');
      assert.equal(r.server.failures[0]?.reason, 'wrong password for "alice"');
      assert.ok(r.log.has(/authentication of peer from 203\.0\.113\.5 failed: wrong password for "alice"/));
      assert.match(r.client.failures[0]!.reason, /refused/);
      assert.ok(!r.log.text().includes('guess'));
    });

    it('refuses an unknown user, distinctly from a wrong password', () => {
      const r = run(method, { user: 'bob' });
      assert.equal(r.server.failures[0]?.reason, 'unknown user "bob"');
      assert.equal(r.client.outcome, 'failure');
    });

    it(`${NEEDS_CLEAR[method] ? 'refuses' : 'accepts'} a user whose secret is only an NT hash`, () => {
      const r = run(method, {
        credentials: [{ user: 'alice', secret: { kind: 'nthash', hash: ntPasswordHash('secret') } }],
      });
      if (NEEDS_CLEAR[method]) {
        assert.equal(r.server.outcome, 'failure');
        assert.match(r.server.failures[0]!.reason, /only an NT hash .* needs the clear password/);
        assert.equal(r.client.outcome, 'failure');
      } else {
        assert.equal(r.server.outcome, 'success', r.log.text());
        assert.equal(r.client.outcome, 'success');
      }
    });

    it('strips DOMAIN\\ for lookup when configured, and keeps the raw name', () => {
      const r = run(method, { user: 'CORP\\alice', stripDomain: true });
      assert.equal(r.server.outcome, 'success', r.log.text());
      assert.equal(r.client.outcome, 'success');
      assert.equal(r.server.successes[0]?.user, 'alice');
      assert.equal(r.server.successes[0]?.rawUser, 'CORP\\alice');
    });

    it('without stripping, DOMAIN\\user is looked up as written', () => {
      const unknown = run(method, { user: 'CORP\\alice' });
      assert.equal(unknown.server.failures[0]?.reason, 'unknown user "CORP\\\\alice"');
      const known = run(method, { user: 'CORP\\alice', credentials: [{ user: 'CORP\\alice' }] });
      assert.equal(known.server.outcome, 'success', known.log.text());
      assert.equal(known.client.outcome, 'success');
      assert.equal(known.server.successes[0]?.user, 'CORP\\alice');
    });

    it('accepts a non-ASCII password (stored clear or as NT hash)', () => {
      const password = 'pässwörd€ 日本';
      for (const secret of [
        { kind: 'password' as const, password },
        { kind: 'nthash' as const, hash: ntPasswordHash(password) },
      ]) {
        if (secret.kind === 'nthash' && NEEDS_CLEAR[method]) continue;
        const r = run(method, { password, credentials: [{ user: 'alice', secret }] });
        assert.equal(r.server.outcome, 'success', r.log.text());
        assert.equal(r.client.outcome, 'success');
      }
    });

    it('recovers from a lost first packet in each direction (retransmission)', () => {
      for (const lost of ['to-client', 'to-server'] as const) {
        const r = run(method, { lose: (dir, n) => dir === lost && n === 0 });
        assert.equal(r.server.outcome, 'success', `${lost}: ${r.log.text()}`);
        assert.equal(r.client.outcome, 'success', lost);
      }
    });

    it('answers a repeated request with the same verdict when the verdict was lost', () => {
      // The first Ack (PAP) / Success (CHAP: packet 1 after the Challenge) is lost.
      const r = run(method, {
        start: false,
        lose: (dir, n) => dir === 'to-client' && n === (method === 'pap' ? 0 : 1),
      });
      r.peer.start();
      r.authenticator.start();
      r.clock.advance(100);
      assert.equal(r.server.outcome, 'success');
      assert.equal(r.client.outcome, 'pending');
      if (method === 'pap') {
        r.clock.advance(3_000); // the peer retransmits its Authenticate-Request; the Ack is repeated
      } else {
        // CHAP peers do not retransmit: a Response repeated by the link (or a re-sent Challenge
        // answered again) must get the same Success.
        r.authenticator.receive(r.client.sent.at(-1)!.packet);
        r.clock.advance(100);
      }
      assert.equal(r.client.outcome, 'success', r.log.text());
      assert.equal(r.server.successes.length, 1, 'the authenticator reports success once');
    });

    it('drops and counts malformed and wrong-role packets, never throws', () => {
      const r = run(method, { start: false });
      r.peer.start();
      r.authenticator.start();
      const garbage = [
        new Uint8Array(0),
        fromHex('01'),
        fromHex('02 01 0003'),
        fromHex('02 01 00ff 10'),
        fromHex('09 01 0004'),
        fromHex('01 01 0005 00'),
      ];
      for (const g of garbage) {
        r.authenticator.receive(g);
        r.peer.receive(g);
      }
      // wrong role: the peer gets its own kind of packet, the authenticator the peer's answers
      r.peer.receive(method === 'pap' ? fromHex('01 01 0006 00 00') : fromHex('02 01 0006 01 aa'));
      r.authenticator.receive(method === 'pap' ? fromHex('02 01 0005 00') : fromHex('03 01 0004'));
      assert.ok(r.serverDrops.total >= garbage.length + 1, JSON.stringify(r.serverDrops.snapshot()));
      assert.ok(r.clientDrops.total >= garbage.length, JSON.stringify(r.clientDrops.snapshot()));
      r.clock.advance(60_000);
      assert.equal(r.server.outcome, 'success', r.log.text());
      assert.equal(r.client.outcome, 'success');
    });

    it('fails when the peer never answers', () => {
      const r = run(method, { start: false, lose: () => true });
      r.authenticator.start();
      r.peer.start();
      r.clock.advance(120_000);
      assert.equal(r.server.outcome, 'failure');
      assert.match(
        r.server.failures[0]!.reason,
        method === 'pap'
          ? /no Authenticate-Request from the peer within 30 s/
          : /no Response to 10 Challenges/,
      );
      assert.match(
        r.client.failures[0]!.reason,
        method === 'pap'
          ? /no answer to 10 Authenticate-Requests/
          : /no Challenge from the authenticator within 30 s/,
      );
      assert.equal(r.clock.pending, 0);
      if (method !== 'pap') assert.equal(r.server.sent.length, 10, 'Challenge sent maxChallenges times');
    });
  });
}
