import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryGreNetwork, MemoryTun } from '../../src/net/memory.ts';
import { MemoryListener } from '../../src/net/memory-stream.ts';
import {
  fullGarbageCollection,
  MAX_WAIT_MS,
  MemoryRelease,
  MIN_ENDED,
  QUIET_MS,
  SETTLE_MS,
} from '../../src/server/memory-release.ts';
import { PptpServer } from '../../src/server/server.ts';
import { defaultGuardSettings } from '../../src/server/settings.ts';
import { RecordingSystem } from '../../src/server/system.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';
import { runVirtual, serverSettings } from './harness.ts';

/** A process's session count, and a MemoryRelease watching it with a counted collector and trim. */
function setup(sessions: number) {
  const clock = new ManualClock();
  const log = new MemoryLogger();
  const state = { sessions, collections: 0, trims: 0 };
  const release = new MemoryRelease({
    clock,
    log,
    collect: () => {
      state.collections++;
    },
    trimHeap: () => {
      state.trims++;
    },
    sessions: () => state.sessions,
    heapUsed: () => 300 * 2 ** 20 - state.collections * 140 * 2 ** 20,
  });
  const end = (n: number): void => {
    for (let k = 0; k < n; k++) {
      state.sessions--;
      release.sessionEnded();
    }
  };
  return { clock, log, state, release, end };
}

test('memory release: a mass disconnect brings two collections SETTLE_MS apart and a trim once the wave is over, logged once', () => {
  const { clock, log, state, end } = setup(2000);
  end(2000);
  clock.advance(QUIET_MS - 1);
  assert.equal(state.collections, 0, 'not while the wave may go on');
  clock.advance(1);
  assert.equal(state.collections, 1);
  clock.advance(SETTLE_MS - 1);
  assert.equal(state.collections, 1, 'V8 sweeps on its own threads meanwhile');
  assert.equal(state.trims, 0);
  clock.advance(1);
  assert.equal(state.collections, 2);
  assert.equal(state.trims, 1);
  const lines = log.lines.filter((l) => l.line.includes('garbage collection'));
  assert.equal(lines.length, 1);
  assert.match(
    lines[0]!.line,
    /2000 of 2000 sessions ended; two full garbage collections and a heap trim .*heap 300 → 20 MB/,
  );
  // Nothing more to give back.
  clock.advance(10 * MAX_WAIT_MS);
  assert.equal(state.collections, 2);
});

test('memory release: sessions coming and going at a steady count never bring a collection', () => {
  const { clock, state, release } = setup(5000);
  for (let k = 0; k < 20_000; k++) {
    state.sessions--;
    release.sessionEnded();
    state.sessions++; // another comes up
    if (k % 100 === 0) clock.advance(1000);
  }
  clock.advance(10 * MAX_WAIT_MS);
  assert.equal(state.collections, 0);
});

test('memory release: not when a large part is left, nor below MIN_ENDED, nor when sessions came back', () => {
  // 9,000 → 2,000: 7,000 gone, but 2,000 left is more than one for every eight gone.
  const a = setup(9000);
  a.end(7000);
  a.clock.advance(10 * MAX_WAIT_MS);
  assert.equal(a.state.collections, 0);
  // MIN_ENDED - 1 of them, all gone: too little to be worth a pause.
  const b = setup(MIN_ENDED - 1);
  b.end(MIN_ENDED - 1);
  b.clock.advance(10 * MAX_WAIT_MS);
  assert.equal(b.state.collections, 0);
  // All gone, then 3,000 come back before the quiet time is over: the pause would be theirs.
  const c = setup(3000);
  c.end(3000);
  c.state.sessions = 3000;
  c.clock.advance(QUIET_MS);
  assert.equal(c.state.collections, 0);
  // ... or between the two collections: the second is left out, and the log says why.
  const d = setup(3000);
  d.end(3000);
  d.clock.advance(QUIET_MS);
  assert.equal(d.state.collections, 1);
  d.state.sessions = 3000;
  d.clock.advance(SETTLE_MS);
  assert.equal(d.state.collections, 1);
  assert.equal(d.state.trims, 0);
  assert.match(d.log.text(), /3000 of 3000 sessions ended, but 3000 are up again/);
});

test('memory release: ends trickling in keep postponing it, but not past MAX_WAIT_MS; close() cancels', () => {
  const { clock, state, end, release } = setup(20_000);
  end(18_000); // 2,000 left: one for every nine gone
  for (let t = 0; t < MAX_WAIT_MS - QUIET_MS / 2; t += QUIET_MS / 2) {
    clock.advance(QUIET_MS / 2);
    end(10);
  }
  assert.equal(state.collections, 0);
  clock.advance(QUIET_MS / 2);
  assert.equal(state.collections, 1, 'at the latest MAX_WAIT_MS after the first chance');
  const other = setup(2000);
  other.end(2000);
  other.release.close();
  other.clock.advance(10 * MAX_WAIT_MS);
  assert.equal(other.state.collections, 0);
  // close() between the two collections (the first just ran): no second, no trim.
  release.close();
  clock.advance(SETTLE_MS);
  assert.equal(state.collections, 1);
  assert.equal(state.trims, 0);
});

test('fullGarbageCollection: a working full collection; gc stays hidden from the program', async () => {
  const gc = fullGarbageCollection();
  assert.equal(typeof gc, 'function');
  const ref = new WeakRef(Array.from({ length: 1000 }, (_, i) => new Uint8Array(1000 + i)));
  // A WeakRef holds its target until the job that made it is over.
  await new Promise((r) => setImmediate(r));
  gc!();
  assert.equal(ref.deref(), undefined, 'the dropped array was collected');
  assert.equal((globalThis as { gc?: unknown }).gc, undefined);
});

test('memory release in the server: 1,100 connections that end together bring one collection after QUIET_MS; none at shutdown', async () => {
  const clock = new ManualClock(1_000_000);
  const listener = new MemoryListener();
  const log = new MemoryLogger();
  let collections = 0;
  let trims = 0;
  const server = new PptpServer(serverSettings({ maxConnections: 1100, ...defaultGuardSettings(1100) }), {
    clock,
    log,
    gre: new MemoryGreNetwork({ clock, delayMs: 1 }).port('127.0.0.1'),
    tun: new MemoryTun('mtun'),
    system: new RecordingSystem(),
    listener,
    collectGarbage: () => {
      collections++;
    },
    trimHeap: () => {
      trims++;
    },
  });
  await server.listen();
  // Connections that say nothing, from addresses of their own (the per-source limits stay out of it).
  const sockets = Array.from({ length: 1100 }, (_, k) => listener.connect(`127.1.${k >> 8}.${k & 0xff}`));
  for (const s of sockets) s.on('data', () => {});
  await runVirtual(clock, 50);
  assert.equal(server.list().length, 1100);
  for (const s of sockets) s.destroy();
  await runVirtual(clock, 50);
  assert.equal(server.list().length, 0, log.text());
  await runVirtual(clock, QUIET_MS - 200);
  assert.equal(collections, 0, 'not before the wave is over');
  await runVirtual(clock, 300);
  assert.equal(collections, 1);
  await runVirtual(clock, SETTLE_MS);
  assert.equal(collections, 2);
  assert.equal(trims, 1);
  assert.match(
    log.text(),
    /memory: 1100 of 1100 sessions ended; two full garbage collections and a heap trim/,
  );
  // A second wave at shutdown: the process is going away, nothing to give back.
  const more = Array.from({ length: 1100 }, (_, k) => listener.connect(`127.2.${k >> 8}.${k & 0xff}`));
  for (const s of more) s.on('data', () => {});
  await runVirtual(clock, 50);
  const down = server.shutdown(1000);
  await runVirtual(clock, 2000);
  await down;
  await runVirtual(clock, QUIET_MS + SETTLE_MS + 1000);
  assert.equal(collections, 2);
});
