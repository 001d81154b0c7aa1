import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock, SystemClock } from '../../src/util/clock.ts';
import { DropCounter } from '../../src/util/counters.ts';
import { MemoryLogger } from '../../src/util/log.ts';
import { formatIPv4, parseIPv4 } from '../../src/wire/ip.ts';

test('ManualClock fires timers in order, including ones armed while advancing', () => {
  const c = new ManualClock();
  const seen: string[] = [];
  c.setTimer(20, () => seen.push('b'));
  c.setTimer(10, () => {
    seen.push('a');
    c.setTimer(5, () => seen.push('a2'));
  });
  const h = c.setTimer(12, () => seen.push('cancelled'));
  h.cancel();
  c.advance(15);
  assert.deepEqual(seen, ['a', 'a2']);
  assert.equal(c.now(), 15);
  c.advance(10);
  assert.deepEqual(seen, ['a', 'a2', 'b']);
  assert.equal(c.pending, 0);
});

test('DropCounter logs a reason once, then at powers of ten', () => {
  const log = new MemoryLogger();
  const d = new DropCounter(log, 'GRE packet');
  for (let i = 0; i < 100; i++) d.drop('bad version');
  assert.equal(d.get('bad version'), 100);
  assert.equal(log.lines.length, 3);
  assert.match(log.lines[0]!.line, /dropped GRE packet: bad version/);
});

test('IPv4 parse/format', () => {
  assert.equal(parseIPv4('192.168.0.234'), 0xc0a800ea);
  assert.equal(formatIPv4(0xc0a800ea), '192.168.0.234');
  assert.equal(parseIPv4('256.1.1.1'), undefined);
  assert.equal(parseIPv4('01.1.1.1'), undefined);
  assert.equal(parseIPv4('1.1.1'), undefined);
});

test('SystemClock: a timer longer than a Node timer holds (2^31-1 ms) runs in steps, not after 1 ms', (t) => {
  // Node fires a setTimeout of more than 2^31-1 ms after 1 ms: record what is asked of it instead.
  const armed: { fn: () => void; ms: number; cleared: boolean }[] = [];
  const handle = (i: number) => ({ unref() {}, i });
  t.mock.method(globalThis, 'setTimeout', (fn: () => void, ms: number) => {
    armed.push({ fn, ms, cleared: false });
    return handle(armed.length - 1);
  });
  t.mock.method(globalThis, 'clearTimeout', (h: { i: number }) => {
    armed[h.i]!.cleared = true;
  });
  const clock = new SystemClock();
  let fired = 0;
  const maxconnect = (2 ** 31 - 1) * 1000; // pppd maxconnect's largest value, in ms
  clock.setTimer(maxconnect, () => fired++);
  let steps = 0;
  while (fired === 0) {
    const last = armed.at(-1)!;
    assert.ok(last.ms <= 2 ** 31 - 1, `step ${steps} asks for ${last.ms} ms`);
    steps++;
    last.fn();
  }
  assert.equal(
    armed.reduce((sum, a) => sum + a.ms, 0),
    maxconnect,
    'the steps add up to the delay',
  );
  assert.ok(steps > 1);
  // cancel works across steps: it clears the step armed now
  const h = clock.setTimer(2 ** 33, () => fired++);
  armed.at(-1)!.fn();
  h.cancel();
  assert.equal(armed.at(-1)!.cleared, true);
  assert.equal(fired, 1);
  // a short one is a single timer
  clock.setTimer(5, () => fired++);
  assert.equal(armed.at(-1)!.ms, 5);
});
