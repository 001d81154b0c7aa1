/**
 * Hostile clients against the real server object (in memory, loopback TCP): what one peer can
 * make us hold is bounded per source and overall, and legitimate users keep getting in.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_LOGIN_THROTTLE } from '../../src/aaa/login-throttle.ts';
import type { PppLink } from '../../src/ppp/link.ts';
import { serverSettings, startClient, startServer, waitFor, within } from './harness.ts';
import { RawControl } from './raw-control.ts';

test('per-source cap on unauthenticated connections: refused with a Start-Control-Connection-Reply, others still get in', async () => {
  const bench = await startServer(serverSettings({ maxUnauthPerSource: 3 }));
  const raws: RawControl[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const r = new RawControl(bench.port, '127.0.0.5');
      raws.push(r);
      await r.ready;
      r.start();
      await waitFor(() => r.find('start-control-connection-reply') !== undefined, 2000, `reply ${i}`);
      assert.equal(r.find('start-control-connection-reply')?.resultCode, 1);
    }
    const extra = new RawControl(bench.port, '127.0.0.5');
    raws.push(extra);
    await extra.ready;
    extra.start();
    await waitFor(() => extra.find('start-control-connection-reply') !== undefined, 2000, 'the refusal');
    const reply = extra.find('start-control-connection-reply')!;
    assert.equal(reply.resultCode, 2, 'General Error');
    assert.equal(reply.errorCode, 4, 'No-Resource');
    await waitFor(() => extra.closed, 2000, 'the refused connection to be closed');
    assert.equal(bench.server.status().drops['too many unauthenticated connections from one address'], 1);
    // A user from another address is not affected.
    const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
    await within(c.up, 5000, 'a legitimate login');
    await c.client.close();
  } finally {
    for (const r of raws) r.close();
    await bench.close();
  }
});

test('a refused connection that keeps sending after the refusal is still closed (5 s), and never counted twice', async () => {
  const bench = await startServer(serverSettings({ maxUnauthPerSource: 1 }));
  const first = new RawControl(bench.port, '127.0.0.8');
  const pest = new RawControl(bench.port, '127.0.0.8', { halfOpen: true });
  try {
    await first.ready;
    first.start();
    await waitFor(() => first.find('start-control-connection-reply') !== undefined, 2000, 'the first reply');
    await pest.ready;
    pest.start();
    await waitFor(() => pest.find('start-control-connection-reply') !== undefined, 2000, 'the refusal');
    assert.equal(pest.find('start-control-connection-reply')?.resultCode, 2);
    // It never closes its side, and a byte every half second would reset an idle timeout for ever.
    const trickle = setInterval(() => {
      if (!pest.sock.destroyed && pest.sock.writable) pest.sock.write(Buffer.from([0]));
    }, 500);
    try {
      await waitFor(() => pest.closed, 9000, 'the server to close the refused connection');
    } finally {
      clearInterval(trickle);
    }
  } finally {
    first.close();
    pest.close();
    await bench.close();
  }
});

test('a connection that never places a call is closed at the call deadline', async () => {
  const bench = await startServer(serverSettings({ callDeadlineS: 0.3 }));
  const r = new RawControl(bench.port, '127.0.0.6');
  try {
    await r.ready;
    r.start();
    await waitFor(() => r.find('stop-control-connection-request') !== undefined, 3000, 'the Stop request');
    await waitFor(() => bench.server.list().length === 0, 5000, 'the session to go');
    assert.ok(bench.log.has(/session closed: no call placed within 0.3 s/), bench.log.text());
  } finally {
    r.close();
    await bench.close();
  }
});

test('nothing scarce is held before authentication: a placed call takes no pool address', async () => {
  const bench = await startServer();
  const r = new RawControl(bench.port, '127.0.0.7');
  try {
    await r.ready;
    r.start();
    r.placeCall(77);
    await waitFor(() => r.find('outgoing-call-reply') !== undefined, 2000, 'the call reply');
    assert.equal(r.find('outgoing-call-reply')?.resultCode, 1);
    assert.equal(bench.server.status().poolFree, 3, 'the pool is untouched while the peer sits in LCP');
    assert.equal(bench.server.leases.count, 0);
  } finally {
    r.close();
    await bench.close();
  }
});

test('per-source cap on set-ups in progress: the next call is refused with General Error / No-Resource', async () => {
  const bench = await startServer(serverSettings({ maxSetupsPerSource: 2 }));
  const raws: RawControl[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const r = new RawControl(bench.port, '127.0.0.8');
      raws.push(r);
      await r.ready;
      r.start();
      r.placeCall(100 + i);
      await waitFor(() => r.find('outgoing-call-reply') !== undefined, 2000, `call reply ${i}`);
    }
    assert.deepEqual(
      raws.map((r) => r.find('outgoing-call-reply')?.resultCode),
      [1, 1, 2],
    );
    assert.equal(raws[2]!.find('outgoing-call-reply')?.errorCode, 4);
    const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
    await within(c.up, 5000, 'a legitimate login from another address');
    await c.client.close();
  } finally {
    for (const r of raws) r.close();
    await bench.close();
  }
});

test('Echo-Requests from a peer that never reads the replies: answers are rationed, reading stops, the connection ends', async () => {
  const bench = await startServer(
    serverSettings({
      pptpEchoIntervalS: 0.5,
      callDeadlineS: 1,
      controlWriteBufferBytes: 16 * 1024,
    }),
  );
  const r = new RawControl(bench.port, '127.0.0.9');
  try {
    await r.ready;
    r.sock.pause();
    r.start();
    // 8 MB of Echo-Requests (500,000 messages), far more than socket buffers hold.
    const chunk = new Uint8Array(16 * 4096);
    const one = (i: number) => {
      const v = new DataView(chunk.buffer, i * 16, 16);
      v.setUint16(0, 16);
      v.setUint16(2, 1);
      v.setUint32(4, 0x1a2b3c4d);
      v.setUint16(8, 5);
      v.setUint32(12, i);
    };
    for (let i = 0; i < 4096; i++) one(i);
    await waitFor(() => bench.server.list().length === 1, 2000, 'the session');
    // Stop as soon as the server has let go (the paused client may never see the close itself).
    for (let n = 0; n < 122 && bench.server.list().length > 0; n++) {
      if (!r.sock.write(chunk)) await new Promise((res) => setTimeout(res, 50));
    }
    await waitFor(() => bench.server.list().length === 0, 20_000, 'the server to end the connection');
    assert.ok(bench.log.has(/session closed/), bench.log.text());
  } finally {
    r.close();
    await bench.close();
  }
});

test('LCP renegotiation after login keeps one lease, one route and one ip-up', async () => {
  const bench = await startServer();
  try {
    const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
    await within(c.up, 5000, 'alice up');
    await waitFor(() => bench.system.routes.size === 1, 2000, 'the route');
    const link = (c.client as unknown as { tunnel: { link: PppLink } }).tunnel.link;
    for (let round = 0; round < 3; round++) {
      const before = bench.log.lines.length;
      (link.lcp as unknown as { renegotiate(): boolean }).renegotiate();
      await waitFor(
        () => bench.log.lines.slice(before).some((l) => /network layer renegotiated/.test(l.line)),
        5000,
        `renegotiation ${round}`,
      );
    }
    assert.equal(bench.server.status().poolFree, 2, 'one address leased, none leaked');
    assert.equal(bench.system.routes.size, 1);
    assert.equal(bench.system.hooks.filter((h) => h.kind === 'ip-up').length, 1);
    assert.equal(bench.server.list()[0]?.ip, '10.77.0.10');
    await c.client.close();
    await waitFor(() => bench.server.list().length === 0, 3000, 'the session to close');
    assert.equal(bench.server.status().poolFree, 3);
    assert.equal(bench.system.routes.size, 0);
    const downs = bench.system.hooks.filter((h) => h.kind === 'ip-down');
    assert.deepEqual(
      downs.map((h) => h.ctx.remoteIp),
      ['10.77.0.10'],
    );
  } finally {
    await bench.close();
  }
});

test('password guessing from one address: delayed answers, then a lockout answered at connect; others still log in', async () => {
  const bench = await startServer(
    serverSettings({
      loginThrottle: {
        ...DEFAULT_LOGIN_THROTTLE,
        failLimit: 3,
        delayS: 0.05,
        maxDelayS: 0.1,
        userFreeFailures: 100,
      },
    }),
  );
  try {
    for (let i = 0; i < 3; i++) {
      const guess = startClient(bench, { user: 'alice', password: `guess-${i}`, localAddress: '127.0.0.10' });
      await within(guess.down, 5000, `guess ${i} refused`);
    }
    const right = startClient(bench, { user: 'alice', password: 'alice-secret', localAddress: '127.0.0.10' });
    const reason = await within(right.down, 5000, 'the locked-out address refused');
    assert.match(reason, /Start-Control-Connection|not authorized|refused/i, reason);
    assert.equal(bench.server.status().drops['address locked out after failed logins'], 1);
    assert.equal(bench.log.lines.filter((l) => /locked out for/.test(l.line)).length, 1, bench.log.text());
    const other = startClient(bench, { user: 'alice', password: 'alice-secret', localAddress: '127.0.0.11' });
    await within(other.up, 5000, 'alice from another address');
    await other.client.close();
  } finally {
    await bench.close();
  }
});

test('a peer that neither reads nor closes loses its socket when its session closes', async () => {
  const bench = await startServer(serverSettings({ callDeadlineS: 0.3 }));
  const r = new RawControl(bench.port, '127.0.0.12');
  let error: string | undefined;
  r.sock.on('error', (e: NodeJS.ErrnoException) => {
    error ??= e.code;
  });
  try {
    await r.ready;
    r.start();
    await waitFor(() => r.find('start-control-connection-reply') !== undefined, 2000, 'the reply');
    r.sock.pause(); // never reads the Stop request nor the FIN
    await waitFor(() => bench.server.list().length === 0, 8000, 'the session to close');
    // Give the server a grace period to let go of the socket, then show it is gone: our writes
    // are answered with a reset once nothing holds the other end.
    const echo = new Uint8Array([0, 16, 0, 1, 0x1a, 0x2b, 0x3c, 0x4d, 0, 5, 0, 0, 0, 0, 0, 1]);
    const deadline = Date.now() + 12_000;
    while (error === undefined && Date.now() < deadline) {
      r.sock.write(echo);
      await new Promise((res) => setTimeout(res, 200));
    }
    assert.ok(error !== undefined, 'the server still holds the socket of a closed session');
  } finally {
    r.close();
    await bench.close();
  }
});
