import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DropCounter, MAX_COUNTER_KEYS, OTHER_KEY, RepeatedEvents } from '../../src/util/counters.ts';
import { MemoryLogger } from '../../src/util/log.ts';

test('RepeatedEvents: logged at 1, 10, 100, 1000 occurrences with the count, the text built only then', () => {
  const log = new MemoryLogger();
  const ev = new RepeatedEvents(log);
  let built = 0;
  for (let i = 0; i < 5000; i++)
    ev.note('wan', () => {
      built++;
      return `peer reports WAN errors #${i}`;
    });
  assert.deepEqual(
    log.lines.map((l) => l.line),
    [
      'peer reports WAN errors #0',
      'peer reports WAN errors #9 (10 times so far)',
      'peer reports WAN errors #99 (100 times so far)',
      'peer reports WAN errors #999 (1000 times so far)',
    ],
  );
  assert.equal(built, 4);
  assert.equal(ev.get('wan'), 5000);
});

test('counters keep at most MAX_COUNTER_KEYS keys; keys made from input cannot grow them', () => {
  const log = new MemoryLogger();
  const drops = new DropCounter(log, 'packet');
  const ev = new RepeatedEvents(log);
  for (let i = 0; i < 10_000; i++) {
    drops.drop(`reason ${i}`);
    ev.note(`event ${i}`, 'x');
  }
  assert.equal(Object.keys(drops.snapshot()).length, MAX_COUNTER_KEYS + 1);
  assert.equal(drops.get(OTHER_KEY), 10_000 - MAX_COUNTER_KEYS);
  assert.equal(drops.total, 10_000);
  assert.equal(Object.keys(ev.snapshot()).length, MAX_COUNTER_KEYS + 1);
  assert.ok(log.lines.length < 2 * MAX_COUNTER_KEYS + 10);
});

test('DropCounter: an expected reason is counted but logged at debug only (nothing without debug)', () => {
  const quiet = new MemoryLogger();
  const drops = new DropCounter<'crossing' | 'bad'>(quiet, 'message', undefined, { expected: ['crossing'] });
  drops.drop('crossing', 'call-clear-request');
  drops.drop('bad');
  assert.equal(drops.get('crossing'), 1);
  assert.deepEqual(
    quiet.lines.map((l) => `${l.level} ${l.line}`),
    ['warn dropped message: bad'],
  );
  const verbose = new MemoryLogger({ debug: true });
  const d2 = new DropCounter<'crossing'>(verbose, 'message', undefined, { expected: ['crossing'] });
  d2.drop('crossing', 'call-clear-request');
  assert.deepEqual(
    verbose.lines.map((l) => `${l.level} ${l.line}`),
    ['debug dropped message: crossing (call-clear-request)'],
  );
});

test('DropCounter.dropMany: counts at once, logged when the total reaches its first drop or passes a power of ten', () => {
  const log = new MemoryLogger();
  const drops = new DropCounter<'full'>(log, 'packet');
  drops.dropMany('full', 0);
  drops.dropMany('full', Number.NaN);
  assert.equal(drops.get('full'), 0, 'nothing counted for no drops');
  drops.dropMany('full', 7); // 7: the first drops
  drops.dropMany('full', 2); // 9
  drops.dropMany('full', 1); // 10
  drops.drop('full'); // 11
  drops.dropMany('full', 300); // 311: passes 100
  drops.dropMany('full', 5000); // 5311: passes 1000
  drops.dropMany('full', 4689); // 10000
  assert.equal(drops.get('full'), 10_000);
  assert.deepEqual(
    log.lines.map((l) => l.line),
    [
      'dropped packet: full (7 times so far)',
      'dropped packet: full (10 times so far)',
      'dropped packet: full (311 times so far)',
      'dropped packet: full (5311 times so far)',
      'dropped packet: full (10000 times so far)',
    ],
  );
});
