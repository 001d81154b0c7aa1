/**
 * Issue 11.3: the first packets after IPCP opens must not reach the host before the host route to
 * the client exists (the kernel would answer them into a missing route). They are held and passed
 * on, in order, once the route is in place.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecordingSystem } from '../../src/server/system.ts';
import type { IPv4 } from '../../src/wire/ip.ts';
import { ip, serverSettings, startClient, startServer, udpPacket, waitFor, within } from './harness.ts';

/**
 * Route changes that finish only when the test says so (a busy host where `ip` is slow, a busy
 * netlink socket): additions (`'add'`) or deletions (`'del'`).
 */
class SlowRoutes extends RecordingSystem {
  private pending: (() => void)[] = [];
  private readonly slow: 'add' | 'del';
  constructor(slow: 'add' | 'del') {
    super();
    this.slow = slow;
  }
  private gate(change: () => void): Promise<void> {
    return new Promise((resolve) =>
      this.pending.push(() => {
        change();
        resolve();
      }),
    );
  }
  override addClientRoute(a: IPv4): Promise<void> {
    if (this.slow !== 'add') return super.addClientRoute(a);
    return this.gate(() => this.routes.add(a));
  }
  override delClientRoute(a: IPv4): Promise<void> {
    if (this.slow !== 'del') return super.delClientRoute(a);
    return this.gate(() => this.routes.delete(a));
  }
  get waiting(): number {
    return this.pending.length;
  }
  finish(): void {
    for (const f of this.pending.splice(0)) f();
  }
}

test('packets from a client whose route is not yet in place wait for it, then reach the host in order', async () => {
  const system = new SlowRoutes('add');
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

test('a closed session keeps its address until its route is gone; the next session to get it keeps its own route', async () => {
  const system = new SlowRoutes('del');
  const bench = await startServer(serverSettings({ remoteIps: [ip('10.77.0.10')] }), system);
  const address = ip('10.77.0.10');
  try {
    const first = startClient(bench, { user: 'alice', password: 'alice-secret' });
    await within(first.up, 5000, 'the first session up');
    await waitFor(() => system.routes.has(address), 2000, 'its route');
    await first.client.close();
    await waitFor(() => system.waiting === 1, 3000, 'its route deletion to start');
    await waitFor(() => bench.server.list().length === 0, 3000, 'the session to close');
    // The route deletion has not finished: the one pool address is not free yet.
    assert.notEqual(bench.server.leases.holderOf(address), undefined, 'the address is still held');
    assert.equal(bench.server.status().poolFree, 0);
    const tooSoon = startClient(bench, {
      user: 'alice',
      password: 'alice-secret',
      localAddress: '127.0.0.3',
    });
    const reason = await within(tooSoon.down, 5000, 'the refusal while the route is being removed');
    assert.match(reason, /Outgoing-Call|refused|pool|resource/i, reason);

    system.finish();
    await waitFor(() => bench.server.status().poolFree === 1, 2000, 'the address to be free');
    const next = startClient(bench, { user: 'alice', password: 'alice-secret', localAddress: '127.0.0.4' });
    const info = await within(next.up, 5000, 'the next session up');
    assert.equal(info.localAddress, address);
    await waitFor(() => system.routes.has(address), 2000, 'the next session route');
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(system.routes.has(address), 'the old deletion did not take the new route away');
    await next.client.close();
    await waitFor(() => system.waiting === 1, 3000, 'the second deletion');
    system.finish();
  } finally {
    await bench.close();
  }
});

test('shutdown waits for the route deletions of the sessions it closed', async () => {
  const system = new SlowRoutes('del');
  const bench = await startServer(undefined, system);
  const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
  await within(c.up, 5000, 'up');
  await waitFor(() => system.routes.size === 1, 2000, 'the route');
  let stopped = false;
  const stopping = bench.close().then(() => {
    stopped = true;
  });
  await waitFor(() => system.waiting === 1, 3000, 'the route deletion to start');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(stopped, false, 'shutdown is not over while a route is being removed');
  system.finish();
  await within(stopping, 3000, 'shutdown');
  assert.equal(system.routes.size, 0);
});
