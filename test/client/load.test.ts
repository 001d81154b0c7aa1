import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { LoadGenerator } from '../../src/client/load.ts';
import { defaultPolicy } from '../../src/ppp/policy.ts';
import { SystemClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';
import { parseIPv4 } from '../../src/wire/ip.ts';
import { serverSettings, startServer } from '../server/harness.ts';

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
    const gen = new LoadGenerator({
      server: parseIPv4('127.0.0.1')!,
      port: bench.port,
      user: 'alice',
      password: 'alice-secret',
      policy: defaultPolicy('client'),
      clock: new SystemClock(),
      log: new MemoryLogger(),
      gre: bench.net.port('127.0.0.5'),
      connectTcp: (host, port) => connect({ host, port, localAddress: '127.0.0.5' }),
      sessions: n + 2,
      concurrency: 8,
    });
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
