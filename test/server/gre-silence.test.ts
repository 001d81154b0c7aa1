import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeGrePacket } from '../../src/gre/codec.ts';
import type { GrePort } from '../../src/net/interfaces.ts';
import { GRE_SILENCE_MS } from '../../src/server/session.ts';
import { ip, startClient, startServer, waitFor, within } from './harness.ts';

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

test("GRE after the call ended (the client's last acknowledgement) is counted as just ended, not warned about", async () => {
  const bench = await startServer();
  try {
    const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
    await within(c.up, 15_000, 'the session');
    // The client's view of the call: the server's call id, and the client's own GRE port.
    const inside = c.client as unknown as { call: { peerCallId: number }; o: { gre: GrePort } };
    const serverCallId = inside.call.peerCallId;
    const gre = inside.o.gre;
    await c.client.close();
    await waitFor(() => bench.server.list().length === 0, 5000, 'the session to end');
    gre.send(encodeGrePacket({ callId: serverCallId, ack: 9 }, new Uint8Array(0)), ip('127.0.0.1'));
    await waitFor(() => bench.server.drops.get('GRE for a call that just ended') === 1, 5000, 'the count');
    assert.equal(bench.server.drops.get('GRE for an unknown call id'), 0);
    assert.ok(!bench.log.has('dropped packet'), bench.log.text());
    // The same packet from an address that never had that call is a stray, and is warned about.
    bench.net
      .port('127.0.0.77')
      .send(encodeGrePacket({ callId: serverCallId, ack: 9 }, new Uint8Array(0)), ip('127.0.0.1'));
    await waitFor(() => bench.server.drops.get('GRE for an unknown call id') === 1, 5000, 'the other count');
    assert.ok(
      bench.log.has(`dropped packet: GRE for an unknown call id (call id ${serverCallId} from 127.0.0.77)`),
    );
  } finally {
    await bench.close();
  }
});
