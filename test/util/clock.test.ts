import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/util/clock.ts';
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
