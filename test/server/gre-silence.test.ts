import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GRE_SILENCE_MS } from '../../src/server/session.ts';
import { startClient, startServer, waitFor, within } from './harness.ts';

test('a call whose GRE never arrives is diagnosed once, in words, naming the peer', async () => {
  const bench = await startServer();
  try {
    bench.net.setConditions({ loss: 1 });
    const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
    const line =
      'no GRE (IP protocol 47) from 127.0.0.2 within 5 s of the call: a firewall or NAT between you drops it';
    await waitFor(() => bench.log.has(line), GRE_SILENCE_MS + 5000, 'the diagnosis');
    assert.equal(
      bench.log
        .text()
        .split('\n')
        .filter((l) => l.includes('no GRE (IP protocol 47)')).length,
      1,
    );
    const [s] = bench.server.list();
    assert.ok(s);
    bench.server.kill(s.id);
    await within(c.down, 15_000, 'the client to go down');
  } finally {
    await bench.close();
  }
});
