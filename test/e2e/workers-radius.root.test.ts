/**
 * `workers 2` with a real FreeRADIUS, started by the test in the server's namespace (on its
 * loopback): `poptop serve --workers 2` with the native radius-* keywords, `poptop connect`
 * clients in two other namespaces (10.231.0.2 goes to worker 0, 10.231.0.3 to worker 1). The
 * passwords FreeRADIUS knows differ from chap-secrets', so only RADIUS can let the clients in.
 * Checked: one Accounting-On (the primary's), a Framed-IP-Address leased through the primary, a
 * Disconnect-Request (radclient) to the primary ending a session on its worker, the Stop with
 * NAS-Error that the primary sends for the session of a worker killed with SIGKILL, and one
 * Accounting-Off. Needs root (namespaces, raw GRE, TUN), FreeRADIUS and the compiled dist/.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FreeRadius, freeradiusSkip, radclient } from '../aaa/radius/freeradius.ts';
import { statusIn, until } from './netns.ts';
import { Scenario } from './scenario.ts';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? freeradiusSkip() : 'needs root (network namespaces, raw sockets, TUN)';
const SECRET = 'poptop-workers-radius';
const DYNAUTH_PORT = 3799;
const USERS = `alice	Cleartext-Password := "alice-radius"
	Framed-IP-Address = 10.77.0.60
bob	Cleartext-Password := "bob-radius"
`;
const CONNECTED = /connected: \S+ (\S+) -> (\S+), MS-CHAPv2, MPPE 128-bit stateless/;

let sc: Scenario;
let fr: FreeRadius;

interface Status {
  sessions: number;
  workers: { index: number; pid: number | null; state: string; sessions: number | null }[];
}

before(async () => {
  if (!isRoot && process.env.POPTOP_REQUIRE_ROOT_TESTS === '1')
    throw new Error('root suites are required here');
  if (skip) return;
  sc = new Scenario(2);
  fr = await FreeRadius.start({ users: USERS, secret: SECRET, netns: sc.topo.server });
  await sc.startServer(
    ['--workers', '2'],
    [
      `radius-auth-server 127.0.0.1:${fr.authPort} ${SECRET}`,
      `radius-acct-server 127.0.0.1:${fr.acctPort} ${SECRET}`,
      'radius-nas-identifier poptop-e2e',
      'radius-timeout 3',
      `radius-dynauth-port ${DYNAUTH_PORT}`,
    ],
  );
});

after(async () => {
  sc?.server?.signal('SIGTERM');
  await sc?.server?.exited(20_000).catch(() => null);
  await fr?.stop();
  await sc?.destroy();
});

const status = (): Status => statusIn<Status>(sc.topo.server, `${sc.topo.dir}/control.sock`);
const records = (type: string, user?: string) =>
  fr
    .detail()
    .filter(
      (r) =>
        r.get('Acct-Status-Type')?.[0] === type && (user === undefined || r.get('User-Name')?.[0] === user),
    );

test("two workers with RADIUS: logins by FreeRADIUS, Framed-IP through the primary, one Accounting-On/Off, Disconnect-Request and a dead worker's Stop", {
  skip,
}, async (t) => {
  await sc.server!.waitFor(/Disconnect\/CoA on UDP 3799/, 10_000);
  assert.equal(records('Accounting-On').length, 1, 'one Accounting-On, from the primary');

  const alice = sc.connect(0, 'alice', 'alice-radius');
  const bob = sc.connect(1, 'bob', 'bob-radius');
  assert.equal((await alice.waitFor(CONNECTED, 20_000))[1], '10.77.0.60', 'Framed-IP-Address, worker 0');
  const bobIp = (await bob.waitFor(CONNECTED, 20_000))[1]!;
  assert.ok(['10.77.0.10', '10.77.0.11'].includes(bobIp), `a pool address for bob (worker 1): ${bobIp}`);
  assert.ok(sc.ping(sc.topo.clients[0]!, '10.77.0.1'), 'alice (worker 0) -> server');
  assert.ok(sc.ping(sc.topo.clients[1]!, '10.77.0.1'), 'bob (worker 1) -> server');
  await until('both Starts', 10_000, () =>
    records('Start', 'alice').length === 1 && records('Start', 'bob').length === 1 ? true : undefined,
  );
  assert.equal(records('Accounting-On').length, 1, 'no worker sent one of its own');

  await t.test('a Disconnect-Request to the primary ends the session on its worker', async () => {
    const out = await radclient(DYNAUTH_PORT, 'disconnect', SECRET, 'User-Name = "alice"', sc.topo.server);
    assert.match(out, /Received Disconnect-ACK/, out);
    assert.notEqual(await alice.exited(15_000), null);
    const stop = await until("alice's Stop", 10_000, () => records('Stop', 'alice')[0]);
    assert.deepEqual(stop.get('Acct-Terminate-Cause'), ['Admin-Reset'], 'sent by her worker');
    const nak = await radclient(DYNAUTH_PORT, 'disconnect', SECRET, 'User-Name = "alice"', sc.topo.server);
    assert.match(nak, /Received Disconnect-NAK/, nak);
  });

  await t.test('a worker killed with SIGKILL: the primary sends the Stop of its session', async () => {
    const w1 = status().workers[1]!;
    assert.equal(w1.sessions, 1);
    assert.ok(w1.pid);
    process.kill(w1.pid, 'SIGKILL'); // our server's child, by the PID it reported
    await sc.server!.waitFor(/worker 1 ended \(signal SIGKILL\)/, 10_000);
    const stop = await until("bob's Stop", 10_000, () => records('Stop', 'bob')[0]);
    assert.deepEqual(stop.get('Acct-Terminate-Cause'), ['NAS-Error']);
    assert.deepEqual(stop.get('Framed-IP-Address'), [bobIp]);
    assert.notEqual(await bob.exited(20_000), null);
  });

  await t.test('SIGTERM: one Accounting-Off, from the primary', async () => {
    await until('worker 1 running again', 15_000, () =>
      status().workers[1]!.state === 'ready' ? true : undefined,
    );
    assert.equal(records('Accounting-On').length, 1, 'the restarted worker sent none');
    sc.server!.signal('SIGTERM');
    assert.equal(await sc.server!.exited(20_000), 0);
    await until('the Accounting-Off', 10_000, () =>
      records('Accounting-Off').length === 1 ? true : undefined,
    );
  });
});
