/**
 * The login back-off wired into the authenticators: a locked-out address is refused with the
 * ordinary failure answer without its password being checked; answers are held back by the growing
 * delay; one log line per failed guess at most.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoginThrottle, type LoginThrottleSettings } from '../../../src/aaa/login-throttle.ts';
import { ChapCode, decodeChapPacket } from '../../../src/ppp/auth/chap-codec.ts';
import { decodeText } from '../../../src/ppp/auth/common.ts';
import {
  type AuthExchange,
  type AuthMethod,
  createAuthenticator,
  createAuthPeer,
  PPP_CHAP,
} from '../../../src/ppp/auth/index.ts';
import { decodePapPacket, PapCode } from '../../../src/ppp/auth/pap-codec.ts';
import { ManualClock } from '../../../src/util/clock.ts';
import { MemoryLogger } from '../../../src/util/log.ts';
import { connect, countingRandom, makePair, type Pair, store } from './harness.ts';

const ATTACKER = '203.0.113.5';
const METHODS: AuthMethod[] = ['pap', 'chap-md5', 'mschap', 'mschapv2'];

interface Attempt extends Pair {
  authenticator: AuthExchange;
  peer: AuthExchange;
}

/** One login attempt (one PPP link) from `source` with `password`, sharing `throttle`. */
function attempt(
  method: AuthMethod,
  throttle: LoginThrottle | undefined,
  opts: { source?: string; password?: string; user?: string; clock?: ManualClock; log?: MemoryLogger } = {},
): Attempt {
  const pair = makePair();
  if (opts.clock) {
    // share the throttle's clock
    Object.assign(pair, { clock: opts.clock });
    Object.assign(pair.server, { clock: opts.clock });
    Object.assign(pair.client, { clock: opts.clock });
  }
  if (opts.log) {
    Object.assign(pair.server, { log: opts.log });
  }
  const authenticator = createAuthenticator(method, pair.server, {
    credentials: store([{ user: 'alice', secret: { kind: 'password', password: 'secret' } }]),
    serverName: 'poptop',
    stripDomain: false,
    random: countingRandom(1),
    peerAddress: opts.source ?? ATTACKER,
    ...(throttle ? { throttle } : {}),
  });
  const peer = createAuthPeer(method, pair.client, {
    user: opts.user ?? 'alice',
    password: opts.password ?? 'secret',
    random: countingRandom(2),
  });
  connect(pair, authenticator, peer);
  peer.start();
  authenticator.start();
  return { ...pair, authenticator, peer };
}

function throttleWith(clock: ManualClock, over: Partial<LoginThrottleSettings> = {}) {
  const log = new MemoryLogger();
  return { log, throttle: new LoginThrottle(over, { clock, log }) };
}

/** The answer the authenticator sent: 'success' | 'failure' and its message text. */
function answerOf(method: AuthMethod, a: Attempt): { ok: boolean; message: string } | undefined {
  const last = a.server.sent.at(-1);
  if (!last) return undefined;
  if (method === 'pap') {
    const p = decodePapPacket(last.packet);
    if (p.code === PapCode.AuthenticateRequest) return undefined;
    return { ok: p.code === PapCode.AuthenticateAck, message: decodeText(p.message) };
  }
  assert.equal(last.protocol, PPP_CHAP);
  const p = decodeChapPacket(last.packet);
  if (p.code !== ChapCode.Success && p.code !== ChapCode.Failure) return undefined;
  return { ok: p.code === ChapCode.Success, message: decodeText(p.message) };
}

/** Log lines above debug level. */
function visible(log: MemoryLogger): string[] {
  return log.lines.filter((l) => l.level !== 'debug').map((l) => l.line);
}

for (const method of METHODS) {
  describe(`${method} with the login back-off`, () => {
    it('a locked-out address is refused even with the right password, with the wrong-password answer', () => {
      const clock = new ManualClock();
      const { throttle } = throttleWith(clock, { failLimit: 3 });
      const wrong: (string | undefined)[] = [];
      for (let i = 0; i < 3; i++) {
        const a = attempt(method, throttle, { clock, password: `guess${i}` });
        clock.advance(30_000);
        assert.equal(a.server.outcome, 'failure');
        wrong.push(answerOf(method, a)?.message);
      }
      assert.equal(throttle.isLocked(ATTACKER), true);
      const a = attempt(method, throttle, { clock, password: 'secret' });
      clock.advance(30_000);
      assert.equal(a.server.outcome, 'failure');
      assert.equal(a.server.failures[0]!.logged, true);
      assert.match(a.server.failures[0]!.reason, /locked out/);
      const answer = answerOf(method, a);
      assert.equal(answer?.ok, false);
      // Same form as a wrong password's answer (MS-CHAPv2's carries a fresh random challenge).
      assert.equal(answer?.message.replace(/C=[0-9A-F]+/, 'C=*'), wrong[0]?.replace(/C=[0-9A-F]+/, 'C=*'));
      // Another address with the right password gets in.
      const ok = attempt(method, throttle, { clock, source: '198.51.100.9' });
      clock.advance(30_000);
      assert.equal(ok.server.outcome, 'success');
    });

    it('holds the answer back by the growing delay, whatever the outcome', () => {
      const clock = new ManualClock();
      const { throttle } = throttleWith(clock, { failLimit: 10, delayS: 1, maxDelayS: 8 });
      const first = attempt(method, throttle, { clock, password: 'wrong' });
      clock.advance(10); // no delay for a clean address: answered at the round trip
      assert.equal(answerOf(method, first)?.ok, false);
      assert.equal(first.server.outcome, 'failure');

      const second = attempt(method, throttle, { clock, password: 'wrong' });
      clock.advance(10);
      assert.equal(answerOf(method, second), undefined, 'held back');
      assert.equal(second.server.outcome, 'pending');
      clock.advance(1000);
      assert.equal(answerOf(method, second)?.ok, false);
      assert.equal(second.server.outcome, 'failure');

      // Now 2 failures: the next answer, a success, waits 2 s (its timing must not give it away).
      const third = attempt(method, throttle, { clock });
      clock.advance(1500);
      assert.equal(third.server.outcome, 'pending');
      clock.advance(1000);
      assert.equal(third.server.outcome, 'success');
      assert.equal(third.client.outcome, 'success');
      // The success cleared the address: answered at once again.
      const fourth = attempt(method, throttle, { clock, password: 'wrong' });
      clock.advance(10);
      assert.equal(fourth.server.outcome, 'failure');
    });

    it('stop() while an answer is held back sends nothing more', () => {
      const clock = new ManualClock();
      const { throttle } = throttleWith(clock);
      attempt(method, throttle, { clock, password: 'wrong' });
      clock.advance(100);
      const a = attempt(method, throttle, { clock, password: 'wrong' });
      clock.advance(10);
      const sent = a.server.sent.length;
      a.authenticator.stop();
      clock.advance(60_000);
      assert.equal(a.server.sent.length, sent);
      assert.equal(a.server.outcome, 'pending');
    });

    it('one log line per failed guess, none for a locked-out one (the episode is summarised)', () => {
      const clock = new ManualClock();
      const { throttle, log: throttleLog } = throttleWith(clock, {
        failLimit: 5,
        lockoutS: 3600,
        userFreeFailures: 1000,
      });
      const log = new MemoryLogger({ debug: true });
      const counts: number[] = [];
      for (let i = 0; i < 20; i++) {
        const before = visible(log).length;
        attempt(method, throttle, { clock, log, password: `guess${i}` });
        clock.advance(30_000);
        counts.push(visible(log).length - before);
      }
      assert.deepEqual(counts, [...Array(5).fill(1), ...Array(15).fill(0)], log.text());
      assert.equal(visible(throttleLog).length, 1, throttleLog.text());
      assert.match(
        visible(throttleLog)[0]!,
        /^203\.0\.113\.5: 5 failed logins for 1 user in \d+ s; locked out for 3600 s$/,
      );
    });
  });
}

describe('the brute-force scenario of the report', () => {
  it('673 MS-CHAPv2 guesses from one address, then the right password: refused', () => {
    const clock = new ManualClock();
    const { throttle } = throttleWith(clock);
    let answered = 0;
    for (let i = 0; i < 673; i++) {
      const a = attempt('mschapv2', throttle, { clock, password: `guess${i}` });
      clock.advance(1);
      clock.advance(1);
      if (a.server.outcome !== 'pending') answered++;
      a.authenticator.stop(); // the attacker does not wait for held-back answers
    }
    assert.ok(answered <= 1, `${answered} guesses answered at once`);
    const a = attempt('mschapv2', throttle, { clock });
    clock.advance(30_000);
    assert.equal(a.server.outcome, 'failure');
    assert.equal(a.client.outcome, 'failure');
  });

  it('without a throttle nothing changes (answers at once)', () => {
    for (let i = 0; i < 3; i++) {
      const a = attempt('mschapv2', undefined, { password: 'wrong' });
      a.clock.advance(10);
      assert.equal(a.server.outcome, 'failure');
    }
  });
});

describe('PAP retransmissions while the answer is held back', () => {
  it('are answered once, with the latest Identifier', () => {
    const clock = new ManualClock();
    const { throttle } = throttleWith(clock, { delayS: 8, maxDelayS: 8 });
    attempt('pap', throttle, { clock, password: 'wrong' });
    clock.advance(100);
    const a = attempt('pap', throttle, { clock, password: 'wrong' });
    clock.advance(7_000); // the PAP peer retransmits every 3 s meanwhile
    assert.equal(a.server.sent.length, 0);
    clock.advance(1_500);
    assert.equal(a.server.sent.length, 1);
    const nak = decodePapPacket(a.server.sent[0]!.packet);
    assert.equal(nak.code, PapCode.AuthenticateNak);
    const requests = a.client.sent.map((s) => decodePapPacket(s.packet).id);
    assert.equal(requests.length, 3);
    assert.equal(nak.id, requests.at(-1));
    assert.equal(a.client.outcome, 'failure');
  });
});
