/**
 * pptpd.conf / pppd features that were parsed but not applied (issue 14): idle, maxconnect,
 * localip paired with remoteip, logwtmp, and poptop's single-session.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StaticCredentials } from '../../src/aaa/credentials.ts';
import { wtmpLayout, wtmpRecord } from '../../src/server/wtmp.ts';
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

test('maxconnect ends a session that has been up that long, with the reason', async () => {
  const bench = await startServer(serverSettings({ maxConnectS: 0.3 }));
  try {
    const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
    await within(c.up, 5000, 'up');
    await within(c.down, 5000, 'the session to end');
    assert.ok(bench.log.has(/connect time limit reached \(maxconnect 0.3 s\)/), bench.log.text());
  } finally {
    await bench.close();
  }
});

test('idle ends a session without IP packets for that long; traffic keeps it up', async () => {
  const bench = await startServer(serverSettings({ idleS: 1 }));
  try {
    const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
    await within(c.up, 5000, 'up');
    const start = Date.now();
    let ended = false;
    void c.down.then(() => {
      ended = true;
    });
    // 1.5 s of traffic every 200 ms: longer than the idle time, and the session stays.
    while (Date.now() - start < 1500) {
      c.tun.inject(udpPacket(ip('10.77.0.10'), ip('192.0.2.99'), new Uint8Array(8)));
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(ended, false, 'traffic keeps an idle-limited session up');
    await within(c.down, 5000, 'the idle session to end');
    assert.ok(bench.log.has(/idle for 1 s/), bench.log.text());
  } finally {
    await bench.close();
  }
});

test('every localip is paired with the remoteip in the same position, as pptpd does', async () => {
  const bench = await startServer(
    serverSettings({
      localIps: [ip('10.77.0.1'), ip('10.77.0.2'), ip('10.77.0.3')],
      remoteIps: [ip('10.77.0.10'), ip('10.77.0.11'), ip('10.77.0.12')],
    }),
  );
  try {
    const a = startClient(bench, { user: 'alice', password: 'alice-secret' });
    const ia = await within(a.up, 5000, 'first');
    const b = startClient(bench, { user: 'alice', password: 'alice-secret', localAddress: '127.0.0.3' });
    const ib = await within(b.up, 5000, 'second');
    const pairs = [ia, ib].map((i) => `${formatIPv4(i.peerAddress)}<->${formatIPv4(i.localAddress)}`).sort();
    assert.deepEqual(pairs, ['10.77.0.1<->10.77.0.10', '10.77.0.2<->10.77.0.11']);
    await a.client.close();
    await b.client.close();
  } finally {
    await bench.close();
  }
});

test('logwtmp: a login record when the session comes up, a logout on the same line when it ends', async () => {
  const bench = await startServer(serverSettings({ logwtmp: true }));
  try {
    const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
    await within(c.up, 5000, 'up');
    await waitFor(() => bench.system.wtmpRecords.length === 1, 2000, 'the login record');
    await c.client.close();
    await waitFor(() => bench.system.wtmpRecords.length === 2, 2000, 'the logout record');
    const [login, logout] = bench.system.wtmpRecords;
    assert.equal(login?.kind, 'login');
    assert.equal(login?.entry.user, 'alice');
    assert.equal(login?.entry.host, '127.0.0.2');
    assert.equal(logout?.kind, 'logout');
    assert.equal(logout?.entry.line, login?.entry.line);
  } finally {
    await bench.close();
  }
});

test('wtmp records have glibc struct utmp layout (x86_64 and arm64)', () => {
  const entry = {
    line: 'pptp/s12',
    user: 'alice',
    host: '203.0.113.5',
    address: ip('203.0.113.5'),
    pid: 42,
    timeMs: 1_700_000_000_250,
  };
  const x64 = wtmpRecord(entry, true, wtmpLayout('x64')!);
  assert.equal(x64.length, 384);
  assert.equal(x64.readInt16LE(0), 7, 'USER_PROCESS');
  assert.equal(x64.readInt32LE(4), 42);
  assert.equal(x64.toString('utf8', 8, 16), 'pptp/s12');
  assert.equal(x64.toString('utf8', 40, 44), '/s12');
  assert.equal(x64.toString('utf8', 44, 49), 'alice');
  assert.equal(x64.toString('utf8', 76, 87), '203.0.113.5');
  assert.equal(x64.readInt32LE(340), 1_700_000_000);
  assert.equal(x64.readInt32LE(344), 250_000);
  assert.deepEqual([...x64.subarray(348, 352)], [203, 0, 113, 5]);
  const out = wtmpRecord({ ...entry, user: 'ignored\n' }, false, wtmpLayout('x64')!);
  assert.equal(out.readInt16LE(0), 8, 'DEAD_PROCESS');
  assert.equal(out[44], 0, 'no user on a logout');
  const arm = wtmpRecord(entry, true, wtmpLayout('arm64')!);
  assert.equal(arm.length, 400);
  assert.equal(Number(arm.readBigInt64LE(344)), 1_700_000_000);
  assert.equal(wtmpLayout('ia32' as NodeJS.Architecture), undefined);
  // A name a `*` secret lets anyone choose: no C0, C1 (CSI) or bidi override reaches `last`'s terminal.
  const hostile = wtmpRecord({ ...entry, user: 'a\u009b31m\u202eb\u0007' }, true, wtmpLayout('x64')!);
  const user = hostile.toString('utf8', 44, 44 + 32).replace(/\0+$/, '');
  assert.doesNotMatch(user, /[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/, user);
  assert.match(user, /^a\\x9b31m.*b/);
});

for (const mode of ['deny', 'replace'] as const) {
  test(`single-session ${mode}: a second login of the same user`, async () => {
    const bench = await startServer(
      serverSettings({
        singleSession: mode,
        credentials: new StaticCredentials([credential('alice', 'alice-secret')]),
      }),
    );
    try {
      const first = startClient(bench, { user: 'alice', password: 'alice-secret' });
      await within(first.up, 5000, 'first up');
      const second = startClient(bench, {
        user: 'alice',
        password: 'alice-secret',
        localAddress: '127.0.0.3',
      });
      if (mode === 'deny') {
        await within(second.down, 5000, 'the second refused');
        assert.ok(bench.log.has(/refusing alice: already connected/), bench.log.text());
        await waitFor(() => bench.server.list().length === 1, 3000, 'only the first session left');
        await first.client.close();
      } else {
        await within(second.up, 5000, 'second up');
        await within(first.down, 5000, 'the first replaced');
        assert.ok(bench.log.has(/replaced by a new session of alice/), bench.log.text());
        await second.client.close();
      }
    } finally {
      await bench.close();
    }
  });
}

test('rate-limit from the secrets entry polices the client: a burst passes, the rest is dropped and counted', async () => {
  const bench = await startServer(
    serverSettings({
      credentials: new StaticCredentials([
        { ...credential('alice', 'alice-secret'), rateLimit: { downBps: 0, upBps: 200_000 } },
      ]),
    }),
  );
  try {
    const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
    await within(c.up, 5000, 'up');
    // 100 packets of 1,028 octets in one turn: far beyond the burst (16 KiB) of a 200 kbit/s limit.
    for (let i = 0; i < 100; i++)
      c.tun.inject(udpPacket(ip('10.77.0.10'), ip('192.0.2.99'), new Uint8Array(1000)));
    await waitFor(() => bench.log.has(/rate limit: dropping packets from the client/), 3000, 'the drops');
    await new Promise((r) => setTimeout(r, 200));
    const passed = bench.tun.written.length;
    assert.ok(passed >= 10 && passed <= 20, `${passed} packets passed`);
    assert.ok(bench.log.has(/rate limit: unlimited down, 200 kbit\/s up/), bench.log.text());
    await c.client.close();
  } finally {
    await bench.close();
  }
});

test('a down rate limit, spent: the address is in the TUN drop list until the bucket has refilled (half of its 16 KiB here), and the kernel drops count as rate-limited', async () => {
  const bench = await startServer(
    serverSettings({
      credentials: new StaticCredentials([
        { ...credential('alice', 'alice-secret'), rateLimit: { downBps: 200_000, upBps: 0 } },
      ]),
    }),
  );
  try {
    const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
    await within(c.up, 5000, 'up');
    const session = bench.server.find('alice')[0]!;
    const rateLimited = () => session.layerDrops().session?.['rate limit towards the client'] ?? 0;
    let unread = 0;
    // 100 packets of 1,028 octets in one turn: the burst (16 KiB) lets about 15 through.
    for (let i = 0; i < 100; i++)
      if (!bench.tun.inject(udpPacket(ip('192.0.2.99'), ip('10.77.0.10'), new Uint8Array(1000).fill(0xaa))))
        unread++;
    assert.deepEqual(bench.tunDrops.changes, ['+10.77.0.10'], 'listed once the bucket was spent');
    assert.ok(unread >= 80, `${unread} dropped unread`);
    assert.equal(rateLimited(), 1, 'one read and dropped here, the rest in the kernel');
    // 200 kbit/s refills 100 ms of traffic in 100 ms.
    await waitFor(() => bench.tunDrops.changes.length === 2, 2000, 'the bucket to refill');
    assert.deepEqual(bench.tunDrops.changes, ['+10.77.0.10', '-10.77.0.10']);
    assert.equal(rateLimited(), 1 + unread, 'the kernel drops joined the count');
    await waitFor(
      () => c.tun.written.filter((p) => p[28] === 0xaa).length === 99 - unread,
      2000,
      'the burst',
    );
    assert.ok(
      bench.log.has(/rate limit: dropping packets towards the client \(1 so far\)/),
      bench.log.text(),
    );
    // Refilled: packets pass again.
    assert.ok(bench.tun.inject(udpPacket(ip('192.0.2.99'), ip('10.77.0.10'), new Uint8Array([0xbb]))));
    await waitFor(() => c.tun.written.some((p) => p[28] === 0xbb), 2000, 'a packet after the refill');
    // Spent again, then a new limit (RADIUS CoA): the listing for the old bucket ends at once.
    for (let i = 0; i < 100; i++)
      bench.tun.inject(udpPacket(ip('192.0.2.99'), ip('10.77.0.10'), new Uint8Array(1000)));
    assert.equal(bench.tunDrops.listed.size, 1);
    session.setRateLimit({ downBps: 0, upBps: 0 }, 'test');
    assert.equal(bench.tunDrops.listed.size, 0, 'off the list with the old bucket');
    assert.deepEqual(bench.tunDrops.changes.slice(2), ['+10.77.0.10', '-10.77.0.10']);
    assert.ok(bench.tun.inject(udpPacket(ip('192.0.2.99'), ip('10.77.0.10'), new Uint8Array([0xbc]))));
    await c.client.close();
  } finally {
    await bench.close();
  }
});

test("the closing line of a session says why in a person's words as well as the detail", async () => {
  const bench = await startServer();
  try {
    const c = startClient(bench, { user: 'alice', password: 'wrong' });
    await within(c.down, 10_000, 'the refusal');
    await waitFor(() => bench.server.list().length === 0, 5000, 'the session to close');
    assert.ok(
      bench.log.has(
        /session closed: authentication failed .*\(in short: authentication failed: wrong user name or password \(Windows error 691\)\)/,
      ),
      bench.log.text(),
    );
  } finally {
    await bench.close();
  }
});
