import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { UsageError } from '../../src/cli/args.ts';
import { formatProgress, parseSources, splitShares } from '../../src/cli/load.ts';
import { LoadGenerator, type LoadProgress, type LoadSource } from '../../src/client/load.ts';
import { defaultPolicy } from '../../src/ppp/policy.ts';
import { SystemClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';
import { parseIPv4 } from '../../src/wire/ip.ts';
import { type Bench, serverSettings, startServer } from '../server/harness.ts';

/** A load generator against `bench` as alice, with the client defaults. */
function generator(bench: Bench, sources: readonly LoadSource[], sessions: number, concurrency: number) {
  return new LoadGenerator({
    server: parseIPv4('127.0.0.1')!,
    port: bench.port,
    user: 'alice',
    password: 'alice-secret',
    policy: defaultPolicy('client'),
    clock: new SystemClock(),
    log: new MemoryLogger(),
    sources,
    sessions,
    concurrency,
  });
}

test('the load generator holds many sessions over one shared GRE port and closes them cleanly', async () => {
  const base = parseIPv4('10.64.0.1')!;
  const n = 40;
  const bench = await startServer(
    serverSettings({
      remoteIps: Array.from({ length: n }, (_, i) => base + i),
      maxConnections: n,
      // One load generator address sets up `concurrency` sessions at once.
      maxSetupsPerSource: 16,
    }),
  );
  try {
    const gen = generator(
      bench,
      [
        {
          gre: bench.net.port('127.0.0.5'),
          connectTcp: (host, port) => connect({ host, port, localAddress: '127.0.0.5' }),
        },
      ],
      n + 2,
      8,
    );
    const report = await gen.run();
    assert.equal(report.up, n);
    assert.equal(report.failed, 2, JSON.stringify(report.reasons));
    assert.equal(bench.server.list().length, n);
    assert.ok(
      Object.keys(report.reasons).some((r) => /pool exhausted|refused|resource/i.test(r)),
      JSON.stringify(report.reasons),
    );
    await gen.close();
    for (let i = 0; i < 200 && bench.server.list().length > 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(bench.server.list().length, 0);
    assert.equal(bench.server.status().poolFree, n);
  } finally {
    await bench.close();
  }
});

test('sessions take the source addresses in turn; progress is readable while the run goes on', async () => {
  const base = parseIPv4('10.65.0.1')!;
  const n = 24;
  const bench = await startServer(
    serverSettings({
      remoteIps: Array.from({ length: n }, (_, i) => base + i),
      maxConnections: n,
      // The default per-address caps (8 set-ups, 16 unauthenticated) stay: three addresses with
      // 6 set-ups in flight each fit under them, where one address with 18 would not.
    }),
  );
  const addrs = ['127.0.0.21', '127.0.0.22', '127.0.0.23'];
  const from = (a: string) => ({
    gre: bench.net.port(a),
    connectTcp: (host: string, port: number) => connect({ host, port, localAddress: a }),
  });
  try {
    const gen = generator(bench, addrs.map(from), n, 18);
    const running = gen.run();
    // run() starts `concurrency` set-ups at once, before anything can come up.
    const early: LoadProgress = gen.progress();
    assert.deepEqual(
      { ...early, seconds: 0 },
      { requested: n, up: 0, failed: 0, inFlight: 18, reasons: {}, seconds: 0 },
    );
    const report = await running;
    assert.equal(report.up, n, JSON.stringify(report.reasons));
    assert.equal(report.failed, 0);
    assert.deepEqual(gen.progress().inFlight, 0);
    assert.equal(gen.setupTimes().length, n);
    const peers = new Map<string, number>();
    for (const s of bench.server.list()) peers.set(s.peer, (peers.get(s.peer) ?? 0) + 1);
    assert.deepEqual(
      [...peers.entries()].sort(),
      addrs.map((a) => [a, n / addrs.length]),
      'each address carries a third of the sessions',
    );
    await gen.close();
  } finally {
    await bench.close();
  }
});

test('--source lists and ranges; shares split evenly; progress lines escape the reasons', () => {
  assert.deepEqual(
    parseSources(['10.0.0.2,10.0.0.5-7', '192.0.2.1']).map((ip) => [ip >>> 24, ip & 0xff]),
    [
      [10, 2],
      [10, 5],
      [10, 6],
      [10, 7],
      [192, 1],
    ],
  );
  for (const bad of ['10.0.0.9-3', '10.0.0', 'host', '10.0.0.2-300', '10.0.0.2,10.0.0.2'])
    assert.throws(() => parseSources([bad]), UsageError, bad);
  assert.deepEqual(splitShares(10, 3), [4, 3, 3]);
  assert.deepEqual(splitShares(2, 4), [1, 1, 0, 0]);
  const line = formatProgress(
    {
      requested: 100,
      up: 40,
      failed: 3,
      inFlight: 8,
      reasons: { 'refused\x1b[31m': 2, 'timed out': 1 },
      seconds: 12.4,
    },
    17.6,
  );
  assert.equal(
    line,
    'progress: 40 of 100 up, 3 failed (2 × refused\\x1b[31m, 1 × timed out), 8 setting up, 18/s, 12 s',
  );
  assert.doesNotMatch(line, /sessions up/, 'never mistaken for the final line');
});

test('stop(): no further set-ups start; run() resolves with those already started', async () => {
  const base = parseIPv4('10.66.0.1')!;
  const bench = await startServer(
    serverSettings({ remoteIps: Array.from({ length: 20 }, (_, i) => base + i), maxConnections: 20 }),
  );
  try {
    const gen = generator(
      bench,
      [
        {
          gre: bench.net.port('127.0.0.31'),
          connectTcp: (host, port) => connect({ host, port, localAddress: '127.0.0.31' }),
        },
      ],
      20,
      4,
    );
    const running = gen.run();
    gen.stop();
    const report = await running;
    assert.equal(report.up + report.failed, 4, 'only the first four, started before stop()');
    assert.equal(report.up, 4, JSON.stringify(report.reasons));
    await gen.close();
  } finally {
    await bench.close();
  }
});
