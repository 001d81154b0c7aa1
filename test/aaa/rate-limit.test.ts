import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatRate, parseRateLimit, TokenBucket } from '../../src/aaa/rate-limit.ts';
import { parseChapSecrets } from '../../src/config/chap-secrets-file.ts';
import { formatIssue } from '../../src/config/issues.ts';

test('rate-limit DOWN[/UP]: units k, M, G in bits per second; a bare number is kbit/s; UP defaults to DOWN', () => {
  assert.deepEqual(parseRateLimit('2M/512k'), { downBps: 2_000_000, upBps: 512_000 });
  assert.deepEqual(parseRateLimit('1024'), { downBps: 1_024_000, upBps: 1_024_000 });
  assert.deepEqual(parseRateLimit('1.5M/0'), { downBps: 1_500_000, upBps: 0 });
  for (const bad of ['', 'fast', '1M/2M/3M', '-5', '1T', '1M/']) {
    assert.equal(typeof parseRateLimit(bad), 'string', bad);
  }
  assert.equal(formatRate(2_000_000), '2 Mbit/s');
  assert.equal(formatRate(512_000), '512 kbit/s');
  assert.equal(formatRate(0), 'unlimited');
});

test('token bucket: a burst, then the rate', () => {
  const b = new TokenBucket(80_000, 0, 10_000); // 10,000 bytes/s, 10,000 bytes of burst
  let passed = 0;
  for (let i = 0; i < 20; i++) if (b.take(1000, 0)) passed++;
  assert.equal(passed, 10, 'the burst');
  assert.equal(b.take(1000, 50), false, '500 bytes refilled in 50 ms: not enough');
  assert.equal(b.take(1000, 100), true, '1000 bytes after 100 ms');
  assert.equal(b.take(1000, 100), false);
  let later = 0;
  for (let i = 0; i < 30; i++) if (b.take(1000, 10_000)) later++;
  assert.equal(later, 10, 'never more than the burst after a long pause');
});

test('chap-secrets: "-- rate-limit DOWN/UP" per user; other per-user options are warned about', () => {
  const { entries, issues } = parseChapSecrets(
    'alice * pw * -- rate-limit 2M/512k\nbob * pw 10.0.0.5 -- rate-limit 1M usepeerdns\ncarol * pw * -- rate-limit fast\n',
    '/etc/ppp/chap-secrets',
  );
  assert.deepEqual(entries[0]?.rateLimit, { downBps: 2_000_000, upBps: 512_000 });
  assert.deepEqual(entries[0]?.addresses, ['*']);
  assert.deepEqual(entries[1]?.rateLimit, { downBps: 1_000_000, upBps: 1_000_000 });
  assert.deepEqual(entries[1]?.addresses, ['10.0.0.5']);
  const text = issues.map(formatIssue);
  assert.ok(
    text.some((t) =>
      /:2: per-user pppd options after "--" other than "rate-limit DOWN\[\/UP\]" are not supported; "usepeerdns" ignored/.test(
        t,
      ),
    ),
    text.join('\n'),
  );
  assert.ok(
    text.some((t) => /:3: "rate-limit" expects DOWN\[\/UP\]/.test(t)),
    text.join('\n'),
  );
});

test('TokenBucket.msUntilRefilled: until 32 KiB, half the burst or 100 ms of traffic are back, whichever is least, and at least the packet refused', () => {
  const slow = new TokenBucket(200_000, 0); // 25 octets per ms, burst 16 KiB
  assert.equal(slow.msUntilRefilled(0), 0, 'full');
  assert.ok(slow.take(16_384, 0));
  assert.equal(slow.msUntilRefilled(0), 100, '100 ms of traffic: 2,500 octets');
  assert.equal(slow.msUntilRefilled(40), 60, 'what came back counts');
  assert.equal(slow.msUntilRefilled(0, 4000), 160, 'room for the packet refused');
  const medium = new TokenBucket(1_000_000, 0); // 125 octets per ms, burst 16 KiB
  assert.ok(medium.take(16_384, 0));
  assert.equal(medium.msUntilRefilled(0), Math.ceil(8192 / 125), 'half the burst');
  const fast = new TokenBucket(50_000_000, 0); // 6,250 octets per ms, burst 625,000
  assert.ok(fast.take(625_000, 0));
  assert.equal(fast.msUntilRefilled(0), Math.ceil(32_768 / 6250));
  assert.equal(fast.msUntilRefilled(6), 0);
});
