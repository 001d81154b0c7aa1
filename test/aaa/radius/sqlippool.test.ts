/**
 * Two poptop servers (two PptpServer instances, NAS-Identifier vpn-a and vpn-b) sharing one address
 * pool kept by a real FreeRADIUS with rlm_sqlippool on SQLite, configured with the queries file the
 * documentation ships (docs/freeradius/sqlippool-sqlite-queries.conf). The addresses reach the
 * clients through poptop's own path: the Access-Accept's Framed-IP-Address is leased and given in
 * IPCP, and accounting Start/Stop (and Accounting-On) go to FreeRADIUS, which releases on Stop.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { StaticCredentials } from '../../../src/aaa/credentials.ts';
import { defaultPolicy } from '../../../src/ppp/policy.ts';
import { formatIPv4 } from '../../../src/wire/ip.ts';
import {
  type Bench,
  serverSettings,
  startClient,
  startServer,
  type TestClient,
  waitFor,
  within,
} from '../../server/harness.ts';
import { FreeRadius, freeradiusSkip } from './freeradius.ts';

const SECRET = 'poptop-sqlippool-test';
const POOL = Array.from({ length: 12 }, (_, i) => `10.88.0.${10 + i}`);
const USERS = 40;
const QUERIES = join(import.meta.dirname, '../../../docs/freeradius/sqlippool-sqlite-queries.conf');

const usersFile = `DEFAULT\tPool-Name := "vpn"
\tFall-Through = Yes
${Array.from({ length: USERS }, (_, i) => `user${i}\tCleartext-Password := "pw-${i}"`).join('\n')}
`;

const skip = freeradiusSkip();

/** A server whose addresses come only from RADIUS: its own pool is elsewhere (10.77.0.x) and shows up if used. */
function settingsFor(fr: FreeRadius, nasIdentifier: string) {
  return serverSettings({
    credentials: new StaticCredentials([]),
    serverName: nasIdentifier,
    radius: {
      authServers: [{ host: '127.0.0.1', port: fr.authPort, secret: SECRET }],
      acctServers: [{ host: '127.0.0.1', port: fr.acctPort, secret: SECRET }],
      timeoutS: 2,
      tries: 3,
      deadtimeS: 0,
      nasIdentifier,
      origin: 'test',
      dynauthPort: 0,
    },
  });
}

interface Login {
  bench: Bench;
  user: number;
  client: TestClient;
  ip: string;
}

describe('two servers, one address pool (FreeRADIUS sqlippool on SQLite)', { skip }, () => {
  let fr: FreeRadius;
  let a: Bench;
  let b: Bench;
  let nextUser = 0;
  let nextSource = 2;
  const live: Login[] = [];

  before(async () => {
    fr = await FreeRadius.start({
      users: usersFile,
      secret: SECRET,
      sqlippool: { pool: 'vpn', addresses: POOL, leaseS: 3600, queries: QUERIES },
    });
  });
  after(async () => {
    for (const l of live) l.client.client.close().catch(() => {});
    await a?.close();
    await b?.close();
    await fr?.stop();
  });

  /** Start a login on `bench` from a fresh source address; resolves when it is up or down. */
  async function login(bench: Bench, policy = defaultPolicy('client')): Promise<Login | string> {
    const user = nextUser++ % USERS;
    const client = startClient(bench, {
      user: `user${user}`,
      password: `pw-${user}`,
      localAddress: `127.0.1.${nextSource++}`,
      policy,
    });
    const r = await within(
      Promise.race([client.up.then((i) => formatIPv4(i.localAddress)), client.down.then((why) => ({ why }))]),
      15_000,
      `the login of user${user}`,
    );
    if (typeof r === 'object') return r.why;
    const l = { bench, user, client, ip: r };
    live.push(l);
    return l;
  }

  async function mustLogin(bench: Bench): Promise<Login> {
    const l = await login(bench);
    assert.ok(typeof l === 'object', `login refused: ${String(l)}\n${bench.log.text().slice(-3000)}`);
    return l;
  }

  /** Hang up and wait until the server has its Stop answered (FreeRADIUS has released the address). */
  async function logout(l: Login): Promise<void> {
    live.splice(live.indexOf(l), 1);
    await within(l.client.client.close(), 5000, 'the client to hang up');
    await waitFor(() => !l.bench.server.list().some((s) => s.ip === l.ip), 5000, 'the session to end');
    await waitFor(() => l.bench.server.radius!.accounting!.length === 0, 10_000, 'the Stop to be answered');
  }

  /** What both servers hold now: every address from the RADIUS pool, none twice. */
  function assertDistinct(): void {
    const held = [a, b].flatMap((bench) => (bench ? bench.server.list().map((s) => s.ip ?? 'none') : []));
    assert.equal(new Set(held).size, held.length, `an address is held twice: ${held.sort().join(' ')}`);
    for (const ip of held) assert.ok(POOL.includes(ip), `${ip} is not from the RADIUS pool`);
    assert.deepEqual(
      [...held].sort(),
      live.map((l) => l.ip).sort(),
      'the servers hold what the clients were given',
    );
  }

  test('logins spread over both servers never share an address; a Stop hands one back to either server', async () => {
    a = await startServer(settingsFor(fr, 'vpn-a'));
    await Promise.all([0, 1, 2, 3, 4].map(() => mustLogin(a)));
    assertDistinct();
    // The second server's Accounting-On releases its own addresses only, not vpn-a's.
    b = await startServer(settingsFor(fr, 'vpn-b'));
    await waitFor(() => b.server.radius!.accounting!.length === 0, 10_000, 'the Accounting-On of vpn-b');
    await Promise.all([0, 1, 2, 3, 4, 5, 6].map(() => mustLogin(b)));
    assertDistinct();
    assert.equal(live.length, POOL.length);

    // The pool is empty now: FreeRADIUS rejects the next login, on either server.
    for (const bench of [a, b]) {
      const refused = await login(bench);
      assert.equal(typeof refused, 'string', 'a login beyond the pool');
      assert.match(bench.log.text(), /"no free address in pool vpn"/);
    }

    // Churn: hang up on one server, log in on the other, which gets the address just released.
    for (let round = 0; round < 6; round++) {
      const from = round % 2 === 0 ? a : b;
      const to = from === a ? b : a;
      const gone = live.find((l) => l.bench === from)!;
      await logout(gone);
      const again = await mustLogin(to);
      assert.equal(again.ip, gone.ip, `round ${round}: the only free address is the one ${gone.ip} left`);
      assertDistinct();
    }

    // FreeRADIUS saw each server as itself, and every Start named the address the session got.
    for (const bench of [a, b]) {
      await waitFor(() => bench.server.radius!.accounting!.length === 0, 10_000, 'the last Start');
    }
    const records = fr.detail();
    const starts = records.filter((r) => r.get('Acct-Status-Type')?.[0] === 'Start');
    assert.equal(starts.length, POOL.length + 6);
    assert.deepEqual([...new Set(records.map((r) => r.get('NAS-Identifier')?.[0]))].sort(), [
      'vpn-a',
      'vpn-b',
    ]);
    for (const l of live) {
      const nas = l.bench === a ? 'vpn-a' : 'vpn-b';
      assert.ok(
        starts.some((r) => r.get('Framed-IP-Address')?.[0] === l.ip && r.get('NAS-Identifier')?.[0] === nas),
        `no Start from ${nas} for ${l.ip}`,
      );
    }
  });

  test('an address RADIUS gave to a session that never came up is handed back by a Stop', async () => {
    // Free exactly one address, then let a client take it that authenticates but refuses MPPE,
    // which this server requires: the session ends before its network layer is up.
    const gone = live.find((l) => l.bench === a)!;
    await logout(gone);
    const noMppe = defaultPolicy('client');
    noMppe.mppe = { ...noMppe.mppe, required: false, allow40: false, allow56: false, allow128: false };
    const failed = await login(b, noMppe);
    assert.equal(typeof failed, 'string', 'the login without MPPE must fail');
    await waitFor(() => b.server.list().length === live.filter((l) => l.bench === b).length, 5000, 'the end');
    await waitFor(() => b.server.radius!.accounting!.length === 0, 10_000, 'the Stop to be answered');
    assert.match(
      b.log.text(),
      new RegExp(`sending a Stop for ${gone.ip.replace(/\./g, '\\.')}, which the session never used`),
    );
    const stop = fr
      .detail()
      .filter((r) => r.get('Acct-Status-Type')?.[0] === 'Stop' && r.get('NAS-Identifier')?.[0] === 'vpn-b')
      .at(-1);
    assert.deepEqual(stop?.get('Framed-IP-Address'), [gone.ip]);
    assert.deepEqual(stop?.get('Acct-Session-Time'), ['0']);
    // Without that Stop the address would stay allocated for the pool's lease time (an hour here).
    const next = await mustLogin(a);
    assert.equal(next.ip, gone.ip);
    assertDistinct();
  });
});
