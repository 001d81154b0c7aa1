// The file descriptor reserve in the server (in memory, loopback TCP): new connections and calls
// are refused with the protocol's answers before the limit; what is up keeps working.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FdReserve } from '../../src/net/fd-reserve.ts';
import { SystemClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';
import { serverSettings, startClient, startServer, waitFor, within } from './harness.ts';
import { RawControl } from './raw-control.ts';

test('at the reserve: a new connection gets General Error / No-Resource, a new call is refused, the reason is logged once', async () => {
  let open = 20;
  const log = new MemoryLogger();
  const fds = new FdReserve({
    clock: new SystemClock(),
    log,
    limit: 100,
    reserve: 32,
    count: () => open,
    measureEveryMs: 0,
    episodeQuietMs: 0,
  });
  const bench = await startServer(serverSettings(), undefined, { fds });
  const raws: RawControl[] = [];
  try {
    const alice = startClient(bench, { user: 'alice', password: 'alice-secret' });
    await within(alice.up, 5000, 'alice up');
    // A control connection that has started, before the process runs short.
    const early = new RawControl(bench.port, '127.0.0.6');
    raws.push(early);
    await early.ready;
    early.start();
    await waitFor(() => early.find('start-control-connection-reply') !== undefined, 2000, 'early reply');
    const early2 = new RawControl(bench.port, '127.0.0.8');
    raws.push(early2);
    await early2.ready;
    early2.start();
    await waitFor(() => early2.find('start-control-connection-reply') !== undefined, 2000, 'early2 reply');
    open = 70; // 30 left of 100: inside the reserve of 32
    for (let i = 0; i < 3; i++) {
      const r = new RawControl(bench.port, '127.0.0.5');
      raws.push(r);
      await r.ready;
      r.start();
      await waitFor(() => r.find('start-control-connection-reply') !== undefined, 2000, `refusal ${i}`);
      const reply = r.find('start-control-connection-reply')!;
      assert.equal(reply.resultCode, 2, 'General Error');
      assert.equal(reply.errorCode, 4, 'No-Resource');
      await waitFor(() => r.closed, 2000, 'the refused connection to be closed');
    }
    // A call on a connection already in takes no descriptor: accepted while outside half the reserve.
    early2.placeCall(78);
    await waitFor(() => early2.find('outgoing-call-reply') !== undefined, 2000, 'the call reply');
    assert.equal(early2.find('outgoing-call-reply')?.resultCode, 1, 'Connected');
    open = 86; // 14 left: within half the reserve, where a call on an accepted connection is refused too
    early.placeCall(77);
    await waitFor(() => early.find('outgoing-call-reply') !== undefined, 2000, 'the call reply');
    assert.equal(early.find('outgoing-call-reply')?.resultCode, 2, 'General Error');
    assert.equal(early.find('outgoing-call-reply')?.errorCode, 4, 'No-Resource');
    assert.equal(bench.server.list().filter((s) => s.user === 'alice').length, 1, 'what is up stays up');
    const reasons = log.lines.filter((l) => /file descriptors in use \(ulimit -n\)/.test(l.line));
    assert.equal(reasons.length, 1, log.text());
    assert.match(reasons[0]!.line, /^refusing new connections and calls: 70 of 100 file descriptors in use/);
    assert.equal(bench.server.status().drops['at the file descriptor reserve'], 4);
    open = 40;
    const later = startClient(bench, { user: 'bob', password: 'bob-secret', localAddress: '127.0.0.7' });
    await within(later.up, 5000, 'bob up once descriptors are free again');
    assert.ok(log.has(/accepting new connections and calls again/));
    await later.client.close('done');
    await alice.client.close('done');
  } finally {
    for (const r of raws) r.close();
    await bench.close();
  }
});

/** A reserve of 32 under a limit of 100, with `open` descriptors in use, measured at every check. */
function reserveWith(open: number): FdReserve {
  return new FdReserve({
    clock: new SystemClock(),
    log: new MemoryLogger(),
    limit: 100,
    reserve: 32,
    count: () => open,
    measureEveryMs: 0,
  });
}

test('at the reserve, refusals waiting for their request hold at most a quarter of the reserve; beyond it a connection is closed at once', async () => {
  const fds = reserveWith(70);
  const bench = await startServer(serverSettings(), undefined, { fds });
  const raws: RawControl[] = [];
  try {
    // Twelve connections that send nothing: each polite refusal waits for its request.
    for (let i = 0; i < 12; i++) {
      const r = new RawControl(bench.port, '127.0.0.5');
      raws.push(r);
      await r.ready;
    }
    await waitFor(() => raws.filter((r) => r.closed).length === 4, 2000, 'four closed at once');
    assert.deepEqual(
      raws.map((r) => r.closed),
      [...Array(8).fill(false), ...Array(4).fill(true)],
      'a quarter of the reserve (8) waiting, the rest closed',
    );
    raws[0]!.start();
    await waitFor(() => raws[0]!.find('start-control-connection-reply') !== undefined, 2000, 'the refusal');
    assert.equal(raws[0]!.find('start-control-connection-reply')?.errorCode, 4, 'No-Resource');
    assert.equal(bench.server.status().drops['at the file descriptor reserve'], 12);
  } finally {
    for (const r of raws) r.close();
    await bench.close();
  }
});

test('within half the reserve of the limit a new connection is closed at once, without an answer', async () => {
  const fds = reserveWith(90);
  const bench = await startServer(serverSettings(), undefined, { fds });
  try {
    const r = new RawControl(bench.port, '127.0.0.5');
    await r.ready;
    r.start();
    await waitFor(() => r.closed, 2000, 'the connection to be closed');
    assert.equal(r.find('start-control-connection-reply'), undefined);
  } finally {
    await bench.close();
  }
});
