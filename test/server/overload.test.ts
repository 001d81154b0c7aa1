/**
 * Issue 12, "overload kills the tunnel for good": an unpaced sender must lose packets before they
 * are encrypted (a dropped frame never consumes an MPPE coherency count), so that once the burst
 * is over traffic passes again both ways, in stateless and stateful MPPE.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultPolicy } from '../../src/ppp/policy.ts';
import { ip, serverSettings, startClient, startServer, udpPacket, waitFor, within } from './harness.ts';

for (const stateful of [false, true]) {
  test(`an unpaced burst through a ${stateful ? 'stateful' : 'stateless'} MPPE tunnel: load shed before encryption, traffic passes afterwards`, async () => {
    const base = serverSettings();
    const bench = await startServer(
      serverSettings({
        policy: { ...base.policy, mppe: { ...base.policy.mppe, statefulAllowed: stateful } },
      }),
    );
    try {
      const policy = defaultPolicy('client');
      policy.mppe.statefulAllowed = stateful;
      policy.mppe.preferStateful = stateful;
      const accepting: boolean[] = [];
      const c = startClient(bench, {
        user: 'alice',
        password: 'alice-secret',
        policy,
        onAccepting: (a) => accepting.push(a),
      });
      const info = await within(c.up, 5000, 'the link');
      assert.equal(info.mppe?.stateless, !stateful);
      // 3000 full-size packets in one turn: far beyond the peer's window (64) and the queue (64).
      for (let i = 0; i < 3000; i++) {
        c.tun.inject(udpPacket(ip('10.77.0.10'), ip('192.0.2.99'), new Uint8Array(1300).fill(i & 0xff)));
      }
      const stats = (c.client as unknown as { tunnel: { linkStats: { drops: Record<string, number> } } })
        .tunnel.linkStats.drops;
      assert.ok((stats['outgoing packet with the GRE send queue full'] ?? 0) > 0, JSON.stringify(stats));
      // What poptop connect pauses its TUN device on: the queue full, then room again once acked.
      assert.deepEqual(accepting, [false], 'reported full once, during the burst');
      await waitFor(() => accepting.length === 2, 3000, 'the acks to make room');
      assert.deepEqual(accepting, [false, true]);
      await new Promise((r) => setTimeout(r, 500));
      const before = bench.tun.written.length;
      // After the burst: paced packets both ways get through.
      for (let i = 0; i < 20; i++) {
        c.tun.inject(udpPacket(ip('10.77.0.10'), ip('192.0.2.99'), new Uint8Array([0xee, i])));
        bench.tun.inject(udpPacket(ip('192.0.2.99'), ip('10.77.0.10'), new Uint8Array([0xdd, i])));
        await new Promise((r) => setTimeout(r, 10));
      }
      await waitFor(() => bench.tun.written.length >= before + 20, 3000, 'paced packets to the server');
      await waitFor(
        () => c.tun.written.filter((p) => p[28] === 0xdd).length === 20,
        3000,
        'paced packets to the client',
      );
      assert.ok(!bench.log.has('unexpected protocol'), bench.log.text());
      assert.equal(bench.server.list()[0]?.state, 'up');
      await c.client.close();
    } finally {
      await bench.close();
    }
  });
}

/**
 * The other way, towards the client: once the server's GRE send queue for the session is full, its
 * address goes into the kernel's TUN drop list (played by MemoryTunDropList), so the rest of the
 * burst is dropped unread; once acks make room it comes off, and the kernel's count joins the
 * session's drops. Every packet of the burst is delivered or counted, and nothing else is listed.
 */
test('an unpaced burst towards the client: its address is in the TUN drop list while the queue is full, every packet delivered or counted', async () => {
  const bench = await startServer();
  try {
    const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
    await within(c.up, 5000, 'the link');
    const session = bench.server.find('alice')[0]!;
    const burst = 3000;
    let unread = 0;
    for (let i = 0; i < burst; i++) {
      const p = udpPacket(ip('192.0.2.99'), ip('10.77.0.10'), new Uint8Array(1300).fill(0xcc));
      if (!bench.tun.inject(p)) unread++;
    }
    assert.deepEqual(bench.tunDrops.changes, ['+10.77.0.10'], 'listed once the queue was full');
    assert.ok(unread > burst / 2, `dropped unread: ${unread}`);
    await waitFor(() => bench.tunDrops.changes.length === 2, 3000, 'the acks to make room');
    assert.deepEqual(bench.tunDrops.changes, ['+10.77.0.10', '-10.77.0.10']);
    const delivered = () => c.tun.written.filter((p) => p[28] === 0xcc).length;
    await new Promise((r) => setTimeout(r, 300));
    const ppp = session.layerDrops().ppp ?? {};
    const here = ppp['outgoing packet with the GRE send queue full'] ?? 0;
    const kernel = ppp['outgoing packet with the GRE send queue full, dropped unread by the kernel'] ?? 0;
    assert.equal(kernel, unread, "the kernel's drops, counted");
    assert.equal(delivered() + here + kernel, burst, `delivered ${delivered()}, dropped ${here} + ${kernel}`);
    // Traffic passes again, and a session that ends while listed takes its address off the list.
    for (let i = 0; i < 5; i++) {
      assert.ok(bench.tun.inject(udpPacket(ip('192.0.2.99'), ip('10.77.0.10'), new Uint8Array([0xdd, i]))));
    }
    await waitFor(() => c.tun.written.filter((p) => p[28] === 0xdd).length === 5, 3000, 'paced packets');
    // The client goes silent (no acks) and its control connection drops while the queue is full.
    bench.net.setConditions({ loss: 1 });
    for (let i = 0; i < burst; i++)
      bench.tun.inject(udpPacket(ip('192.0.2.99'), ip('10.77.0.10'), new Uint8Array(1300)));
    assert.equal(bench.tunDrops.listed.size, 1);
    session.tcpClosed();
    assert.ok(session.isClosed);
    assert.equal(bench.tunDrops.listed.size, 0, 'off the list as the session ends');
    assert.deepEqual(bench.tunDrops.changes.slice(2), ['+10.77.0.10', '-10.77.0.10']);
    bench.net.setConditions({ loss: 0 });
    await c.client.close();
  } finally {
    await bench.close();
  }
});
