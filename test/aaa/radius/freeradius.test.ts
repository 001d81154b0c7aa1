/**
 * Our server and our client (test/server/harness.ts) with a real FreeRADIUS deciding the logins
 * and receiving the accounting: nothing stands in for FreeRADIUS here.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { StaticCredentials } from '../../../src/aaa/credentials.ts';
import type { RadiusSettings } from '../../../src/aaa/radius/service.ts';
import type { AuthMethod } from '../../../src/ppp/auth/types.ts';
import { defaultPolicy } from '../../../src/ppp/policy.ts';
import { formatIPv4 } from '../../../src/wire/ip.ts';
import {
  type Bench,
  ip,
  serverSettings,
  startClient,
  startServer,
  udpPacket,
  waitFor,
  within,
} from '../../server/harness.ts';
import { FreeRadius, freeradiusSkip, freeUdpPort, radclient } from './freeradius.ts';

const SECRET = 'poptop-radius-test';

const USERS = `alice	Cleartext-Password := "alice-secret"
	Framed-IP-Address = 10.77.0.50,
	Class = "class-of-alice",
	Session-Timeout = 3600,
	MS-Primary-DNS-Server = 10.77.0.53,
	MS-Secondary-DNS-Server = 10.77.0.54
carol	Cleartext-Password := "carol-secret"
	Framed-IP-Address = 255.255.255.254
dave	Cleartext-Password := "dave-secret"
	Session-Timeout = 3,
	Acct-Interim-Interval = 1
erin	Cleartext-Password := "erin-secret"
	Framed-IP-Address = 10.77.0.60,
	Framed-Route = "192.0.2.0/24 0.0.0.0 1",
	Framed-Route = "10.77.0.8/29",
	Mikrotik-Rate-Limit = "2M/1M"
bob	Auth-Type := Reject
	Reply-Message = "Account suspended"
`;

const skip = freeradiusSkip();

function radius(fr: FreeRadius, over: Partial<RadiusSettings> = {}): RadiusSettings {
  return {
    authServers: [{ host: '127.0.0.1', port: fr.authPort, secret: SECRET }],
    acctServers: [{ host: '127.0.0.1', port: fr.acctPort, secret: SECRET }],
    timeoutS: 2,
    tries: 2,
    deadtimeS: 60,
    nasIdentifier: 'poptop-test',
    origin: 'test',
    dynauthPort: 0,
    ...over,
  };
}

/** Server settings with RADIUS and no local secrets at all: only RADIUS can let anyone in. */
function settingsFor(fr: FreeRadius, method: AuthMethod, mppe: boolean, over: Partial<RadiusSettings> = {}) {
  const base = serverSettings();
  return serverSettings({
    credentials: new StaticCredentials([]),
    radius: radius(fr, over),
    policy: {
      ...base.policy,
      auth: { ...base.policy.auth, require: [method] },
      mppe: { ...base.policy.mppe, required: mppe },
    },
  });
}

function clientPolicy(method: AuthMethod, mppe: boolean) {
  const p = defaultPolicy('client');
  p.auth.accept = [method];
  p.mppe.required = mppe;
  return p;
}

/** Counters of the server's "session closed" line: received/sent bytes and packets. */
function closedCounters(bench: Bench): {
  bytesIn: number;
  packetsIn: number;
  bytesOut: number;
  packetsOut: number;
} {
  const line = bench.log.lines.find((l) => l.line.includes('session closed:'))?.line ?? '';
  const m = /received (\d+) bytes\/(\d+) packets, sent (\d+) bytes\/(\d+) packets/.exec(line);
  assert.ok(m, `no "session closed" line:\n${bench.log.text()}`);
  return { bytesIn: Number(m[1]), packetsIn: Number(m[2]), bytesOut: Number(m[3]), packetsOut: Number(m[4]) };
}

async function exchangeTraffic(
  bench: Bench,
  c: ReturnType<typeof startClient>,
  clientIp: string,
): Promise<void> {
  const payload = new TextEncoder().encode('through MPPE keys from RADIUS');
  const out = udpPacket(ip(clientIp), ip('192.0.2.99'), payload);
  c.tun.inject(out);
  await waitFor(() => bench.tun.written.length > 0, 3000, 'the packet on the server TUN');
  assert.deepEqual(bench.tun.written[0], out);
  const back = udpPacket(ip('192.0.2.99'), ip(clientIp), payload);
  bench.tun.inject(back);
  bench.tun.inject(back);
  await waitFor(() => c.tun.written.length >= 2, 3000, 'the packets on the client TUN');
  assert.deepEqual(c.tun.written[0], back);
}

describe('through a real FreeRADIUS', { skip }, () => {
  let fr: FreeRadius;
  before(async () => {
    fr = await FreeRadius.start({ users: USERS, secret: SECRET });
  });
  after(async () => {
    await fr?.stop();
  });

  test('MS-CHAPv2 with MPPE-128 keys from RADIUS carries traffic; Framed-IP, DNS, Class and accounting counters', async () => {
    const bench = await startServer(settingsFor(fr, 'mschapv2', true));
    try {
      const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
      const info = await within(c.up, 8000, 'the link to come up');
      assert.equal(formatIPv4(info.localAddress), '10.77.0.50', 'Framed-IP-Address from RADIUS');
      assert.deepEqual(info.mppe, { bits: 128, stateless: true });
      assert.deepEqual(info.dns.map(formatIPv4), ['10.77.0.53', '10.77.0.54']);
      await exchangeTraffic(bench, c, '10.77.0.50');
      const [s] = bench.server.list();
      assert.equal(s?.user, 'alice');
      await within(c.client.close(), 5000, 'the client to disconnect');
      await waitFor(() => bench.server.list().length === 0, 5000, 'the session to close');
      const counters = closedCounters(bench);
      assert.equal(counters.packetsIn, 1);
      assert.equal(counters.packetsOut, 2);
      // the Stop is answered (flushed) before the server finishes shutting down
      await bench.close();
      const records = fr.detail();
      const status = records.map((r) => r.get('Acct-Status-Type')?.[0]);
      assert.deepEqual(status, ['Accounting-On', 'Start', 'Stop', 'Accounting-Off'], fr.log.slice(-2000));
      const start = records[1]!;
      const stop = records[2]!;
      for (const r of [start, stop]) {
        assert.deepEqual(r.get('User-Name'), ['alice']);
        assert.deepEqual(r.get('Framed-IP-Address'), ['10.77.0.50']);
        assert.deepEqual(r.get('Calling-Station-Id'), ['127.0.0.2']);
        assert.deepEqual(r.get('NAS-Identifier'), ['poptop-test']);
        assert.deepEqual(r.get('Class'), [`0x${Buffer.from('class-of-alice').toString('hex')}`]);
        assert.deepEqual(r.get('Acct-Authentic'), ['RADIUS']);
      }
      assert.equal(start.get('Acct-Session-Id')?.[0], stop.get('Acct-Session-Id')?.[0]);
      assert.deepEqual(stop.get('Acct-Input-Octets'), [String(counters.bytesIn)]);
      assert.deepEqual(stop.get('Acct-Output-Octets'), [String(counters.bytesOut)]);
      assert.deepEqual(stop.get('Acct-Input-Packets'), ['1']);
      assert.deepEqual(stop.get('Acct-Output-Packets'), ['2']);
      assert.deepEqual(stop.get('Acct-Input-Gigawords'), ['0']);
      assert.deepEqual(stop.get('Acct-Terminate-Cause'), ['User-Request']);
      assert.ok(stop.has('Acct-Session-Time'));
    } finally {
      await bench.close();
    }
  });

  for (const [method, mppe, user, password] of [
    ['pap', false, 'alice', 'alice-secret'],
    ['chap-md5', false, 'alice', 'alice-secret'],
    ['mschap', true, 'carol', 'carol-secret'],
  ] as const) {
    test(`${method} through RADIUS${mppe ? ' (MPPE keys from MS-CHAP-MPPE-Keys)' : ''} carries traffic`, async () => {
      const bench = await startServer(settingsFor(fr, method, mppe));
      try {
        const c = startClient(bench, { user, password, policy: clientPolicy(method, mppe) });
        const info = await within(c.up, 8000, 'the link to come up');
        const addr = formatIPv4(info.localAddress);
        // carol has Framed-IP-Address 255.255.255.254: the pool decides
        assert.equal(addr, user === 'carol' ? '10.77.0.10' : '10.77.0.50');
        if (mppe) assert.equal(info.mppe?.bits, 128);
        await exchangeTraffic(bench, c, addr);
        await within(c.client.close(), 5000, 'the client to disconnect');
      } finally {
        await bench.close();
      }
    });
  }

  test('Session-Timeout ends the session; Interim-Updates meanwhile; the Stop says Session-Timeout', async () => {
    const bench = await startServer(settingsFor(fr, 'mschapv2', true));
    try {
      const c = startClient(bench, { user: 'dave', password: 'dave-secret' });
      await within(c.up, 8000, 'the link to come up');
      await within(c.down, 15_000, 'the session timeout');
      await waitFor(() => bench.server.list().length === 0, 5000, 'the session to close');
      assert.ok(bench.log.has('closing: Session-Timeout of 3 s reached (RADIUS)'), bench.log.text());
      await bench.close();
      const mine = fr.detail().filter((r) => r.get('User-Name')?.[0] === 'dave');
      const status = mine.map((r) => r.get('Acct-Status-Type')?.[0]);
      assert.equal(status[0], 'Start');
      assert.equal(status.at(-1), 'Stop');
      assert.ok(status.includes('Interim-Update'), status.join(' '));
      assert.deepEqual(mine.at(-1)!.get('Acct-Terminate-Cause'), ['Session-Timeout']);
    } finally {
      await bench.close();
    }
  });

  test('CoA-Request (radclient) shortens Session-Timeout; Disconnect-Request ends a live session', async () => {
    const dae = await freeUdpPort();
    const bench = await startServer(settingsFor(fr, 'mschapv2', true, { dynauthPort: dae }));
    try {
      const c = startClient(bench, { user: 'alice', password: 'alice-secret' });
      await within(c.up, 8000, 'the link to come up');
      const coa = await radclient(dae, 'coa', SECRET, 'User-Name = "alice", Session-Timeout = 2');
      assert.match(coa, /Received CoA-ACK/, coa);
      await within(c.down, 10_000, 'the shortened Session-Timeout');
      assert.ok(bench.log.has('closing: Session-Timeout of 2 s reached (RADIUS)'), bench.log.text());
      await waitFor(() => bench.server.list().length === 0, 5000, 'the session to close');

      const d = startClient(bench, { user: 'alice', password: 'alice-secret', localAddress: '127.0.0.3' });
      await within(d.up, 8000, 'the second link to come up');
      const [live] = bench.server.radius!.liveSessions();
      const nak = await radclient(dae, 'disconnect', SECRET, 'Acct-Session-Id = "no-such-session"');
      assert.match(nak, /Received Disconnect-NAK/, nak);
      assert.match(nak, /Error-Cause = Session-Context-Not-Found/, nak);
      const ack = await radclient(dae, 'disconnect', SECRET, `Acct-Session-Id = "${live!.acctSessionId}"`);
      assert.match(ack, /Received Disconnect-ACK/, ack);
      const reason = await within(d.down, 10_000, 'the disconnect');
      assert.match(reason, /disconnected by RADIUS|terminat/i, reason);
      await waitFor(() => bench.server.list().length === 0, 5000, 'the session to close');
      await bench.close();
      const stop = fr
        .detail()
        .find(
          (r) =>
            r.get('Acct-Session-Id')?.[0] === live!.acctSessionId &&
            r.get('Acct-Status-Type')?.[0] === 'Stop',
        );
      assert.deepEqual(stop?.get('Acct-Terminate-Cause'), ['Admin-Reset']);
    } finally {
      await bench.close();
    }
  });

  test('Framed-Route and Mikrotik-Rate-Limit from FreeRADIUS, the radattr file, and a rate change by CoA (radclient)', async () => {
    const dae = await freeUdpPort();
    const settings = settingsFor(fr, 'mschapv2', true, { dynauthPort: dae, radattr: true });
    const bench = await startServer(settings);
    try {
      const c = startClient(bench, { user: 'erin', password: 'erin-secret' });
      const info = await within(c.up, 8000, 'the link to come up');
      assert.equal(formatIPv4(info.localAddress), '10.77.0.60');
      await waitFor(() => bench.system.framedRoutes.size === 1, 3000, 'the framed route');
      assert.deepEqual([...bench.system.framedRoutes], ['192.0.2.0/24']);
      assert.ok(
        bench.log.has(/Framed-Route 10\.77\.0\.8\/29 refused: it contains the pool address 10\.77\.0\.10/),
        bench.log.text(),
      );
      assert.ok(
        bench.log.has('rate limit: 1 Mbit/s down, 2 Mbit/s up (RADIUS Mikrotik-Rate-Limit "2M/1M")'),
        bench.log.text(),
      );
      // A host behind the client is reached through the session.
      const down = udpPacket(ip('198.18.0.1'), ip('192.0.2.33'), new TextEncoder().encode('behind erin'));
      bench.tun.inject(down);
      await waitFor(() => c.tun.written.length === 1, 3000, 'the packet behind the client');
      assert.deepEqual(c.tun.written[0], down);
      // The attributes file ip-up is told about, with what FreeRADIUS sent.
      await waitFor(() => bench.system.hooks.length === 1, 3000, 'ip-up');
      const path = bench.system.hooks[0]!.ctx.radattr!;
      const file = bench.system.radattrFiles.get(path) ?? '';
      for (const line of [
        'Framed-IP-Address 10.77.0.60',
        'Framed-Route 192.0.2.0/24 0.0.0.0 1',
        'Framed-Route 10.77.0.8/29',
        'Mikrotik-Rate-Limit 2M/1M',
      ]) {
        assert.ok(file.split('\n').includes(line), `${line} in\n${file}`);
      }
      assert.doesNotMatch(file, /MS-MPPE-(Send|Recv)-Key|Message-Authenticator/);

      const coa = await radclient(dae, 'coa', SECRET, 'User-Name = "erin", Mikrotik-Rate-Limit = "8M/4M"');
      assert.match(coa, /Received CoA-ACK/, coa);
      assert.ok(
        bench.log.has('rate limit now 4 Mbit/s down, 8 Mbit/s up (CoA, Mikrotik-Rate-Limit "8M/4M")'),
        bench.log.text(),
      );
      const bad = await radclient(dae, 'coa', SECRET, 'User-Name = "erin", Mikrotik-Rate-Limit = "oops"');
      assert.match(bad, /Received CoA-NAK/, bad);
      assert.match(bad, /Error-Cause = Invalid-Attribute-Value/, bad);

      await within(c.client.close(), 5000, 'the client to disconnect');
      await waitFor(() => bench.system.framedRoutes.size === 0, 5000, 'the framed route removed');
      await waitFor(() => bench.system.radattrFiles.size === 0, 5000, 'the radattr file removed');
    } finally {
      await bench.close();
    }
  });

  test('a wrong password and an Access-Reject with a Reply-Message: refused, logged in words', async () => {
    const bench = await startServer(settingsFor(fr, 'mschapv2', true));
    try {
      const bad = startClient(bench, { user: 'alice', password: 'wrong' });
      const reason = await within(bad.down, 10_000, 'the refusal');
      // FreeRADIUS's MS-CHAP-Error reaches the client unchanged
      assert.match(reason, /E=691/, reason);
      const bob = startClient(bench, { user: 'bob', password: 'x', localAddress: '127.0.0.3' });
      await within(bob.down, 10_000, 'the refusal of bob');
      await waitFor(() => bench.server.list().length === 0, 5000, 'sessions to close');
      const text = bench.log.text();
      assert.match(text, new RegExp(`RADIUS server 127\\.0\\.0\\.1:${fr.authPort} rejected "alice"`), text);
      assert.match(
        text,
        new RegExp(`RADIUS server 127\\.0\\.0\\.1:${fr.authPort} rejected "bob": "Account suspended"`),
        text,
      );
      assert.equal(bench.server.status().poolFree, 3);
    } finally {
      await bench.close();
    }
  });

  test('the first RADIUS server is down: fail-over to the second, one clear log line', async () => {
    const dead = await freeUdpPort();
    const settings = settingsFor(fr, 'mschapv2', true, {
      authServers: [
        { host: '127.0.0.1', port: dead, secret: SECRET },
        { host: '127.0.0.1', port: fr.authPort, secret: SECRET },
      ],
      acctServers: [],
      timeoutS: 1,
      tries: 1,
    });
    const bench = await startServer(settings);
    try {
      for (const local of ['127.0.0.2', '127.0.0.3']) {
        const c = startClient(bench, { user: 'alice', password: 'alice-secret', localAddress: local });
        await within(c.up, 10_000, `the link from ${local}`);
        await within(c.client.close(), 5000, 'the client to disconnect');
        await waitFor(() => bench.server.list().length === 0, 5000, 'the session to close');
      }
      const lines = bench.log.lines.filter((l) => l.line.includes('is not answering'));
      assert.deepEqual(
        lines.map((l) => [l.level, l.line]),
        [
          [
            'warn',
            `RADIUS authentication server 127.0.0.1:${dead} is not answering (no reply to 1 try, 1 s each); trying 127.0.0.1:${fr.authPort} instead`,
          ],
        ],
      );
    } finally {
      await bench.close();
    }
  });
});
