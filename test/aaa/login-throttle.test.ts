import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_LOGIN_THROTTLE,
  LoginThrottle,
  type LoginThrottleSettings,
} from '../../src/aaa/login-throttle.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';

const A = '203.0.113.5';
const B = '198.51.100.7';

function make(over: Partial<LoginThrottleSettings> = {}) {
  const clock = new ManualClock();
  const log = new MemoryLogger();
  const throttle = new LoginThrottle(over, { clock, log });
  return { clock, log, throttle };
}

/** One guess the way an authenticator makes it: assess, then (if allowed) record the failure. */
function guess(t: LoginThrottle, source: string, user: string): { locked: boolean; delayMs: number } {
  const v = t.assess(source, user);
  if (!v.locked) t.failed(source, user);
  return v;
}

describe('LoginThrottle: per source address', () => {
  it('answers a clean address at once', () => {
    const { throttle } = make();
    assert.deepEqual(throttle.assess(A, 'alice'), { locked: false, delayMs: 0 });
  });

  it('grows the delay with each failure (1, 2, 4, 8 s, capped)', () => {
    const { throttle } = make({ failLimit: 100, userFreeFailures: 1000 });
    const delays = Array.from({ length: 6 }, () => guess(throttle, A, 'alice').delayMs);
    assert.deepEqual(delays, [0, 1000, 2000, 4000, 8000, 8000]);
  });

  it('locks an address out after failLimit failures, logged once with the counts', () => {
    const { throttle, log, clock } = make({ failLimit: 5, lockoutS: 300, userFreeFailures: 1000 });
    const users = ['alice', 'bob', 'carol', 'alice', 'bob'];
    for (const u of users) {
      assert.equal(guess(throttle, A, u).locked, false);
      clock.advance(10_000);
    }
    assert.equal(throttle.isLocked(A), true);
    assert.equal(guess(throttle, A, 'alice').locked, true);
    const warns = log.lines.filter((l) => l.level === 'warn');
    assert.equal(warns.length, 1, log.text());
    assert.equal(warns[0]!.line, `${A}: 5 failed logins for 3 users in 40 s; locked out for 300 s`);
    // another address is not affected
    assert.deepEqual(throttle.assess(B, 'alice'), { locked: false, delayMs: 0 });
  });

  it('a locked-out address stays locked whatever it sends, then the lockout ends with a summary', () => {
    const { throttle, log, clock } = make({ failLimit: 3, lockoutS: 60, userFreeFailures: 1000 });
    for (let i = 0; i < 3; i++) guess(throttle, A, 'alice');
    for (let i = 0; i < 50; i++) assert.equal(guess(throttle, A, 'alice').locked, true);
    clock.advance(59_999);
    assert.equal(throttle.isLocked(A), true);
    clock.advance(1);
    assert.equal(throttle.isLocked(A), false);
    assert.equal(log.lines.length, 2, log.text());
    assert.equal(log.lines[1]!.line, `${A}: lockout over; 50 login attempts were refused during it`);
    assert.equal(throttle.assess(A, 'alice').locked, false);
  });

  it('doubles the lockout for an address that comes back, up to maxLockoutS', () => {
    const { throttle, clock, log } = make({
      failLimit: 2,
      lockoutS: 100,
      maxLockoutS: 300,
      userFreeFailures: 1000,
    });
    const lengths: number[] = [];
    for (let round = 0; round < 4; round++) {
      guess(throttle, A, 'x');
      guess(throttle, A, 'x');
      let t = 0;
      while (throttle.isLocked(A)) {
        clock.advance(1000);
        t += 1000;
      }
      lengths.push(t / 1000);
    }
    assert.deepEqual(lengths, [100, 200, 300, 300]);
    assert.match(log.text(), /locked out for 200 s \(lockout 2 of this address\)/);
  });

  it('a success clears the address record: no delay afterwards', () => {
    const { throttle } = make({ userFreeFailures: 1000 });
    guess(throttle, A, 'alice');
    guess(throttle, A, 'alice');
    assert.equal(throttle.assess(A, 'alice').delayMs, 2000);
    throttle.succeeded(A, 'alice');
    assert.equal(throttle.assess(A, 'alice').delayMs, 0);
  });

  it('a success does not lift a lockout (the password is not even checked while locked)', () => {
    const { throttle } = make({ failLimit: 2, userFreeFailures: 1000 });
    guess(throttle, A, 'alice');
    guess(throttle, A, 'alice');
    throttle.succeeded(A, 'alice');
    assert.equal(throttle.isLocked(A), true);
  });

  it('forgets failures after the window', () => {
    const { throttle, clock } = make({ failLimit: 3, windowS: 600, userFreeFailures: 1000 });
    guess(throttle, A, 'alice');
    guess(throttle, A, 'alice');
    clock.advance(600_000);
    assert.equal(throttle.assess(A, 'alice').delayMs, 0);
    guess(throttle, A, 'alice');
    guess(throttle, A, 'alice');
    assert.equal(throttle.isLocked(A), false, 'the old failures no longer count');
    assert.equal(throttle.size.sources, 1);
  });
});

describe('LoginThrottle: per user name', () => {
  it('slows a name attacked from many addresses, never locks it', () => {
    const { throttle, log } = make({ userFreeFailures: 3, userDelayS: 1, userMaxDelayS: 5 });
    const delays: number[] = [];
    for (let i = 0; i < 20; i++) {
      const source = `192.0.2.${i + 1}`;
      const v = throttle.assess(source, 'alice');
      assert.equal(v.locked, false);
      delays.push(v.delayMs);
      throttle.failed(source, 'alice');
    }
    assert.deepEqual(delays.slice(0, 9), [0, 0, 0, 0, 1000, 2000, 3000, 4000, 5000]);
    assert.equal(Math.max(...delays), 5000);
    // the real user, from a clean address: a small delay, not a lockout
    assert.deepEqual(throttle.assess('10.1.1.1', 'alice'), { locked: false, delayMs: 5000 });
    // other names are not slowed
    assert.deepEqual(throttle.assess('10.1.1.1', 'bob'), { locked: false, delayMs: 0 });
    const userLines = log.lines.filter((l) => l.line.startsWith('user '));
    assert.equal(userLines.length, 1, log.text());
    assert.match(
      userLines[0]!.line,
      /^user "alice": 4 failed logins from 4 addresses in 0 s; answers for this name are delayed/,
    );
  });

  it('an attacker cannot lock the real user out: only its own address is locked', () => {
    const { throttle } = make({ failLimit: 5 });
    for (let i = 0; i < 100; i++) guess(throttle, A, 'alice');
    assert.equal(throttle.isLocked(A), true);
    const v = throttle.assess(B, 'alice');
    assert.equal(v.locked, false);
    assert.ok(v.delayMs <= DEFAULT_LOGIN_THROTTLE.userMaxDelayS * 1000);
  });

  it('quotes a hostile user name in its log line', () => {
    const { throttle, log } = make({ userFreeFailures: 0 });
    throttle.failed(A, 'ev"il\n\u001b[2J');
    assert.match(log.lines[0]!.line, /^user "ev\\"il\\n\\x1b\[2J": 1 failed logins/);
  });
});

describe('LoginThrottle: bounded memory', () => {
  it('keeps at most maxSources addresses and maxUsers names, forgetting the least recently seen', () => {
    const { throttle } = make({ maxSources: 100, maxUsers: 50, failLimit: 1000 });
    for (let i = 0; i < 10_000; i++)
      throttle.failed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, `u${i}`);
    assert.deepEqual(throttle.size, { sources: 100, users: 50 });
    // the most recent are kept
    assert.equal(throttle.assess('10.0.39.15', 'u9999').delayMs, 1000);
    assert.equal(throttle.assess('10.0.0.0', 'u0').delayMs, 0);
  });

  it('expires entries once their window (and lockout memory) is over', () => {
    const { throttle, clock } = make({ failLimit: 2, windowS: 60, lockoutS: 30, maxLockoutS: 120 });
    guess(throttle, A, 'alice');
    guess(throttle, B, 'bob');
    guess(throttle, B, 'bob'); // B locked out
    clock.advance(61_000);
    throttle.assess('192.0.2.1', 'x'); // any call sweeps
    assert.deepEqual(throttle.size, { sources: 1, users: 0 }, 'B is remembered for its escalation');
    clock.advance(120_000);
    throttle.assess('192.0.2.1', 'x');
    assert.deepEqual(throttle.size, { sources: 0, users: 0 });
    assert.equal(clock.pending, 0);
  });

  it('refuses nonsense settings', () => {
    assert.throws(() => make({ failLimit: 0 }), /failLimit/);
    assert.throws(() => make({ delayS: -1 }), /delayS/);
  });

  it('close() cancels the lockout timers', () => {
    const { throttle, clock } = make({ failLimit: 1 });
    guess(throttle, A, 'x');
    assert.equal(clock.pending, 1);
    throttle.close();
    assert.equal(clock.pending, 0);
  });
});

describe('LoginThrottle: reload', () => {
  it('update() applies new limits and keeps the counts and lockouts under way', () => {
    const { throttle } = make({ failLimit: 10, userFreeFailures: 1000 });
    for (let i = 0; i < 3; i++) guess(throttle, A, 'alice');
    throttle.update({ failLimit: 4, userFreeFailures: 1000 });
    assert.equal(throttle.settings.failLimit, 4);
    guess(throttle, A, 'alice');
    assert.equal(throttle.isLocked(A), true);
    throttle.update({ failLimit: 100, maxSources: 1, userFreeFailures: 1000 });
    assert.equal(throttle.isLocked(A), true, 'a running lockout keeps its end');
    guess(throttle, B, 'bob');
    assert.equal(throttle.size.sources, 1);
    assert.throws(() => throttle.update({ maxUsers: 0 }), /maxUsers/);
  });
});
