import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { countOpenFds, FdReserve, readNofileLimit } from '../../src/net/fd-reserve.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';

test('readNofileLimit reads the soft limit from /proc/self/limits; unlimited or unreadable is undefined', () => {
  const dir = mkdtempSync(join(tmpdir(), 'poptop-limits-'));
  try {
    const f = join(dir, 'limits');
    writeFileSync(
      f,
      'Limit                     Soft Limit           Hard Limit           Units\nMax processes             63422                63422                processes\nMax open files            1024                 524288               files\n',
    );
    assert.equal(readNofileLimit(f), 1024);
    writeFileSync(f, 'Max open files            unlimited            unlimited            files\n');
    assert.equal(readNofileLimit(f), undefined);
    assert.equal(readNofileLimit(join(dir, 'missing')), undefined);
  } finally {
    rmSync(dir, { recursive: true });
  }
  assert.ok((readNofileLimit() ?? 1) > 0);
  assert.ok(countOpenFds() >= 3);
});

test('refuses from `reserve` before the limit, logs the reason once, resumes half a reserve lower', () => {
  const clock = new ManualClock();
  const log = new MemoryLogger();
  let open = 50;
  let measured = 0;
  const fds = new FdReserve({
    clock,
    log,
    limit: 200,
    reserve: 40,
    count: () => {
      measured++;
      return open;
    },
  });
  assert.equal(fds.check(), undefined);
  // Sockets reported between measurements count without another look at /proc.
  for (let i = 0; i < 109; i++) fds.opened();
  assert.equal(fds.inUse, 159);
  assert.equal(fds.check(), undefined);
  assert.equal(measured, 1);
  fds.opened();
  const short = fds.check();
  assert.match(
    String(short?.reason),
    /^160 of 200 file descriptors in use \(ulimit -n\); the last 40 are kept for the control socket, routes and the log$/,
  );
  assert.equal(short?.critical, false);
  for (let i = 0; i < 5; i++) assert.ok(fds.check());
  for (let i = 0; i < 20; i++) fds.opened();
  assert.equal(fds.check()?.critical, true, 'within half the reserve: close rather than answer');
  const warned = log.lines.filter((l) => /refusing new connections and calls/.test(l.line));
  assert.equal(warned.length, 1, log.text());
  assert.equal(warned[0]!.level, 'warn');
  // Near the limit the count is measured again (every 100 ms): the process really has fewer open.
  open = 145;
  clock.advance(100);
  assert.ok(fds.check(), '145 is not yet half a reserve below 160');
  open = 139;
  clock.advance(100);
  assert.equal(fds.check(), undefined);
  assert.ok(!log.has(/accepting new connections and calls again/), 'logged once accepting has lasted 2 s');
  clock.advance(2000);
  assert.ok(
    log.has(
      /accepting new connections and calls again: 139 of 200 file descriptors in use \(\d+ refused meanwhile\)/,
    ),
  );
  assert.equal(fds.snapshot().refusing, false);
});

test('when even /proc/self/fd cannot be listed, that counts as being at the limit', () => {
  const fds = new FdReserve({
    clock: new ManualClock(),
    log: new MemoryLogger(),
    limit: 100,
    count: () => {
      throw Object.assign(new Error('EMFILE'), { code: 'EMFILE' });
    },
  });
  assert.equal(fds.reserve, 32);
  assert.equal(fds.check()?.critical, true);
});

test('no known limit: never refuses', () => {
  const fds = new FdReserve({
    clock: new ManualClock(),
    log: new MemoryLogger(),
    limit: undefined,
    count: () => 1e6,
  });
  assert.equal(fds.check(), undefined);
});

test('the end of an episode is logged when descriptors close, without waiting for the next connection', () => {
  const log = new MemoryLogger();
  const clock = new ManualClock();
  const fds = new FdReserve({ clock, log, limit: 100, reserve: 32, count: () => 10 });
  assert.equal(fds.check(), undefined); // measures: 10
  const releases = Array.from({ length: 60 }, () => fds.opened());
  assert.ok(fds.check());
  for (const r of releases.splice(0, 10)) r();
  assert.ok(!log.has(/accepting new connections and calls again/), 'still within the reserve and a half');
  for (const r of releases.splice(0, 20)) {
    r();
    r(); // a second call changes nothing
  }
  clock.advance(2000);
  assert.ok(
    log.has(
      /accepting new connections and calls again: 10 of 100 file descriptors in use \(1 refused meanwhile\)/,
    ),
    log.text(),
  );
});

test('a close reported after a measurement that already left its descriptor out does not count twice', () => {
  const clock = new ManualClock();
  const log = new MemoryLogger();
  let open = 10;
  const fds = new FdReserve({ clock, log, limit: 100, reserve: 32, count: () => open });
  assert.equal(fds.check(), undefined);
  // A burst of 40 connections, refused and destroyed: the kernel frees their descriptors at once,
  // but the 'close' events come a turn later, after a measurement.
  const burst = Array.from({ length: 40 }, () => fds.opened());
  assert.equal(fds.inUse, 50);
  open = 10;
  clock.advance(1000);
  assert.equal(fds.check(), undefined); // measures: 10
  for (const r of burst) r();
  assert.equal(fds.inUse, 10, 'not -30: those closes were already measured');
  // A descriptor opened after the measurement is taken off again when it closes.
  const one = fds.opened();
  assert.equal(fds.inUse, 11);
  one();
  assert.equal(fds.inUse, 10);
});

test('while refusing, the end of an episode is noticed by measuring again after the last close', () => {
  const clock = new ManualClock();
  const log = new MemoryLogger();
  let open = 10;
  const fds = new FdReserve({ clock, log, limit: 100, reserve: 32, count: () => open });
  assert.equal(fds.check(), undefined);
  const held = Array.from({ length: 60 }, () => fds.opened());
  open = 70;
  clock.advance(1000);
  assert.ok(fds.check()); // measures 70: refusing; the 60 are now part of the measurement
  open = 20;
  for (const r of held) r(); // each close is already in a measurement: the count stays at 70
  assert.ok(!log.has(/accepting new connections and calls again/));
  clock.advance(100);
  assert.equal(fds.snapshot().refusing, false);
  clock.advance(2000);
  assert.ok(log.has(/accepting new connections and calls again: 20 of 100/), log.text());
});

test('refusing that stops and starts again within 2 s is one episode in the log', () => {
  const clock = new ManualClock();
  const log = new MemoryLogger();
  let open = 10;
  const fds = new FdReserve({ clock, log, limit: 100, reserve: 32, count: () => open });
  const swing = (to: number): boolean => {
    open = to;
    clock.advance(1000); // a measurement is due
    return fds.check() !== undefined;
  };
  assert.equal(fds.check(), undefined);
  // A burst of refused sockets closing, then new connections taking their place: five swings.
  for (let i = 0; i < 5; i++) {
    assert.equal(swing(70), true);
    assert.equal(swing(20), false);
  }
  assert.equal(
    log.lines.filter((l) => /refusing new connections and calls/.test(l.line)).length,
    1,
    log.text(),
  );
  assert.ok(!log.has(/accepting new connections and calls again/), log.text());
  clock.advance(2000);
  const ends = log.lines.filter((l) => /accepting new connections and calls again/.test(l.line));
  assert.equal(ends.length, 1, log.text());
  assert.match(ends[0]!.line, /: 20 of 100 file descriptors in use \(5 refused meanwhile\)$/);
  // Refusing after the episode was logged as over is a new episode, logged again.
  assert.equal(swing(70), true);
  assert.equal(log.lines.filter((l) => /refusing new connections and calls/.test(l.line)).length, 2);
});
