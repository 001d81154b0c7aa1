/**
 * Issue 11.3: the first packets after IPCP opens must not reach the host before the host route to
 * the client exists (the kernel would answer them into a missing route). They are held and passed
 * on, in order, once the route is in place.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecordingSystem } from '../../src/server/system.ts';
import type { IPv4 } from '../../src/wire/ip.ts';
import { ip, startClient, startServer, udpPacket, waitFor, within } from './harness.ts';

/** Routes that appear only when the test says so (a busy host where `ip route add` is slow). */
class SlowRoutes extends RecordingSystem {
  private pending: (() => void)[] = [];
  override addClientRoute(a: IPv4): Promise<void> {
    return new Promise((resolve) =>
      this.pending.push(() => {
        this.routes.add(a);
        resolve();
      }),
    );
  }
  get waiting(): number {
    return this.pending.length;
  }
  finish(): void {
    for (const f of this.pending.splice(0)) f();
  }
}

test('packets from a client whose route is not yet in place wait for it, then reach the host in order', async () => {
  const system = new SlowRoutes();
  const bench = await startServer(undefined, system);
  try {
    const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
    await within(c.up, 5000, 'alice up');
    await waitFor(() => system.waiting === 1, 2000, 'the route addition to start');
    for (let i = 0; i < 3; i++) {
      c.tun.inject(udpPacket(ip('10.77.0.10'), ip('192.0.2.99'), new Uint8Array([i])));
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(bench.tun.written.length, 0, 'nothing reaches the host before its route exists');
    system.finish();
    await waitFor(() => bench.tun.written.length === 3, 2000, 'the held packets');
    assert.deepEqual(
      bench.tun.written.map((p) => p[28]),
      [0, 1, 2],
    );
    await c.client.close();
  } finally {
    await bench.close();
  }
});
