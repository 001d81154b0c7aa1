import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { StaticCredentials } from '../../src/aaa/credentials.ts';
import { defaultPolicy } from '../../src/ppp/policy.ts';
import { formatIPv4 } from '../../src/wire/ip.ts';
import {
  credential,
  ip,
  serverSettings,
  startClient,
  startServer,
  udpPacket,
  waitFor,
  within,
} from './harness.ts';

test('client and server: MS-CHAPv2 + MPPE-128, address from the pool, IP both ways', async () => {
  const bench = await startServer();
  try {
    const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
    const info = await within(c.up, 5000, 'the link to come up');
    assert.equal(formatIPv4(info.peerAddress), '10.77.0.1');
    assert.equal(formatIPv4(info.localAddress), '10.77.0.10');
    assert.deepEqual(info.mppe, { bits: 128, stateless: true });
    // client -> server -> TUN
    const out = udpPacket(ip('10.77.0.10'), ip('192.0.2.99'), new TextEncoder().encode('hello server'));
    c.tun.inject(out);
    await waitFor(() => bench.tun.written.length > 0, 2000, 'the packet on the server TUN');
    assert.deepEqual(bench.tun.written[0], out);
    // TUN -> server -> client
    const back = udpPacket(ip('192.0.2.99'), ip('10.77.0.10'), new TextEncoder().encode('hello client'));
    bench.tun.inject(back);
    await waitFor(() => c.tun.written.length > 0, 2000, 'the packet on the client TUN');
    assert.deepEqual(c.tun.written[0], back);
    const [s] = bench.server.list();
    assert.equal(s?.user, 'alice');
    assert.equal(s?.ip, '10.77.0.10');
    assert.equal(s?.auth, 'mschapv2');
    assert.equal(s?.mppe, '128-bit stateless');
    assert.ok(bench.system.routes.has(ip('10.77.0.10')));
    // a client-initiated disconnect releases everything
    await within(c.client.close(), 5000, 'the client to disconnect');
    await waitFor(() => bench.server.list().length === 0, 3000, 'the session to close');
    assert.equal(bench.server.status().poolFree, 3);
    assert.equal(bench.system.routes.size, 0);
  } finally {
    await bench.close();
  }
});

test('a spoofed source address from the client is dropped and counted', async () => {
  const bench = await startServer();
  try {
    const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
    await within(c.up, 5000, 'the link');
    c.tun.inject(udpPacket(ip('10.77.0.99'), ip('192.0.2.99'), new Uint8Array(10)));
    c.tun.inject(udpPacket(ip('10.77.0.10'), ip('192.0.2.99'), new Uint8Array(10)));
    await waitFor(() => bench.tun.written.length > 0, 2000, 'the good packet');
    assert.equal(bench.tun.written.length, 1);
    assert.ok(bench.log.has('the client may only send from 10.77.0.10'));
    // Counted among the session's drops (and so in the metrics' drops by layer and reason).
    const session = bench.server.find('alice')[0]!;
    assert.deepEqual(session.layerDrops().session, { 'source address not the one given to the client': 1 });
    await c.client.close();
  } finally {
    await bench.close();
  }
});

test('wrong password and unknown user: refused, logged in words, nothing leaks', async () => {
  const bench = await startServer();
  try {
    const bad = startClient(bench, { user: 'alice', password: 'wrong' });
    const reason = await within(bad.down, 8000, 'the refusal');
    assert.match(reason, /auth|fail/i);
    const unknown = startClient(bench, { user: 'mallory', password: 'x', localAddress: '127.0.0.3' });
    await within(unknown.down, 8000, 'the refusal');
    await waitFor(() => bench.server.list().length === 0, 3000, 'sessions to close');
    assert.ok(bench.log.has('wrong password for "alice"'), bench.log.text());
    assert.ok(bench.log.has('unknown user "mallory"'), bench.log.text());
    assert.ok(bench.log.has('127.0.0.2'));
    assert.equal(bench.server.status().poolFree, 3);
  } finally {
    await bench.close();
  }
});

test('per-user static address from the secrets file, and pool exhaustion refused cleanly', async () => {
  const bench = await startServer(serverSettings({ remoteIps: [ip('10.77.0.10')] }));
  try {
    const bob = startClient(bench, { user: 'bob', password: 'bob-secret' });
    const info = await within(bob.up, 5000, 'bob up');
    assert.equal(formatIPv4(info.localAddress), '10.77.0.200');
    const alice = startClient(bench, { user: 'alice', password: 'alice-secret', localAddress: '127.0.0.3' });
    await within(alice.up, 5000, 'alice up');
    const third = startClient(bench, { user: 'alice', password: 'alice-secret', localAddress: '127.0.0.4' });
    const reason = await within(third.down, 5000, 'the refusal');
    assert.match(reason, /Outgoing-Call|refused|pool|resource/i, reason);
    assert.ok(
      bench.log.has('address pool exhausted: all 1 addresses of remoteip are in use'),
      bench.log.text(),
    );
    await alice.client.close();
    await bob.client.close();
    await waitFor(() => bench.server.list().length === 0, 3000, 'sessions to close');
    assert.equal(bench.server.status().poolFree, 1);
  } finally {
    await bench.close();
  }
});

test('2000 full-size packets through the tunnel arrive intact and in order (stateless and stateful MPPE)', async () => {
  for (const stateful of [false, true]) {
    const base = serverSettings();
    const settings = serverSettings({
      policy: { ...base.policy, mppe: { ...base.policy.mppe, statefulAllowed: stateful } },
    });
    const bench = await startServer(settings);
    try {
      const policy = defaultPolicy('client');
      policy.mppe.statefulAllowed = stateful;
      policy.mppe.preferStateful = stateful;
      const c = startClient(bench, { user: 'alice', password: 'alice-secret', policy });
      const info = await within(c.up, 5000, 'the link');
      assert.equal(info.mppe?.stateless, !stateful);
      const sent = createHash('sha256');
      const n = 2000;
      for (let i = 0; i < n; i++) {
        const payload = new Uint8Array(1300).fill(i & 0xff);
        new DataView(payload.buffer).setUint32(0, i);
        sent.update(payload);
        c.tun.inject(udpPacket(ip('10.77.0.10'), ip('192.0.2.99'), payload));
        // Pace at the GRE window: the sender honours the peer's receive window (64 packets).
        if (i % 32 === 31) await waitFor(() => bench.tun.written.length > i - 32, 5000, `packet ${i - 32}`);
      }
      await waitFor(() => bench.tun.written.length >= n, 10_000, `${n} packets`);
      const got = createHash('sha256');
      for (const p of bench.tun.written) got.update(p.subarray(28));
      assert.equal(got.digest('hex'), sent.digest('hex'));
      await c.client.close();
    } finally {
      await bench.close();
    }
  }
});

test('SIGTERM-style shutdown tells the client', async () => {
  const bench = await startServer();
  const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
  await within(c.up, 5000, 'the link');
  await bench.close();
  const reason = await within(c.down, 5000, 'the client to notice');
  assert.match(reason, /shutting down|terminat|stop/i, reason);
});

test('reload (SIGHUP) keeps established sessions and applies new secrets to new ones; hooks run', async () => {
  const bench = await startServer();
  try {
    const alice = startClient(bench, { user: 'alice', password: 'alice-secret' });
    await within(alice.up, 5000, 'alice up');
    const dave0 = startClient(bench, { user: 'dave', password: 'dave-pw', localAddress: '127.0.0.3' });
    await within(dave0.down, 8000, 'dave refused before the reload');
    bench.server.reload(
      serverSettings({
        credentials: new StaticCredentials([
          credential('alice', 'alice-secret'),
          credential('dave', 'dave-pw'),
        ]),
      }),
    );
    const dave = startClient(bench, { user: 'dave', password: 'dave-pw', localAddress: '127.0.0.4' });
    await within(dave.up, 5000, 'dave up after the reload');
    const users = bench.server.list().map((s) => s.user);
    assert.deepEqual(users.sort(), ['alice', 'dave']);
    // alice's session survived the reload and still carries traffic
    alice.tun.inject(udpPacket(ip('10.77.0.10'), ip('192.0.2.99'), new Uint8Array(8)));
    await waitFor(() => bench.tun.written.length > 0, 2000, 'alice traffic');
    await alice.client.close();
    await dave.client.close();
    await waitFor(() => bench.server.list().length === 0, 3000, 'sessions to close');
    const hooks = bench.system.hooks.filter((h) => h.ctx.peerName === 'alice').map((h) => h.kind);
    assert.deepEqual(hooks, ['ip-up', 'ip-down']);
    const down = bench.system.hooks.find((h) => h.kind === 'ip-down' && h.ctx.peerName === 'alice')!;
    assert.equal(down.ctx.remoteIp, '10.77.0.10');
    assert.equal(down.ctx.localIp, '10.77.0.1');
    assert.ok((down.ctx.bytesReceived ?? 0) > 0);
  } finally {
    await bench.close();
  }
});
