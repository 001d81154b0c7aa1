/**
 * The link with the real authentication exchanges (src/ppp/auth) and the real MPPE data path
 * (src/ppp/mppe): MS-CHAPv2 keys feed MPPE-128 stateless and IP crosses encrypted both ways.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StaticCredentials } from '../../src/aaa/credentials.ts';
import { createAuthenticator, createAuthPeer } from '../../src/ppp/auth/index.ts';
import { createMppe } from '../../src/ppp/mppe/cipher.ts';
import { bench, type Frame } from './harness.ts';

test('real MS-CHAPv2 and MPPE-128: the session comes up and IP is encrypted on the wire', () => {
  const credentials = new StaticCredentials([
    { user: 'alice', server: '*', secret: { kind: 'password', password: 'clientPass' }, addresses: ['*'] },
  ]);
  const b = bench({
    serverLink: {
      mppe: createMppe,
      authenticator: (m, host) =>
        createAuthenticator(m, host, { credentials, serverName: 'poptop', stripDomain: true }),
    },
    clientLink: {
      mppe: createMppe,
      authPeer: (m, host) => createAuthPeer(m, host, { user: 'alice', password: 'clientPass' }),
    },
  });
  b.open();
  b.clock.advance(1000);
  assert.equal(b.server.link.phase, 'network', b.server.log.text());
  assert.deepEqual(b.client.up[0]?.mppe, { bits: 128, stateless: true });
  const packet = Uint8Array.from(Buffer.from('4500001c0000400040010000c0a80001c0a80002', 'hex'));
  for (let i = 0; i < 3; i++) b.client.link.sendIp(packet);
  b.server.link.sendIp(packet);
  b.clock.advance(5);
  assert.equal(b.server.ip.length, 3);
  assert.deepEqual(b.server.ip[2], packet);
  assert.deepEqual(b.client.ip[0], packet);
  const wire = b.frames.at(-1)!.bytes;
  assert.equal(wire[0], 0xfd); // PFC+ACFC: 0x00fd alone
  assert.ok(!Buffer.from(wire).includes(Buffer.from(packet)), 'plaintext visible on the wire');
});

test('real MS-CHAPv2 with a wrong password: the link terminates with the failure reason', () => {
  const credentials = new StaticCredentials([
    { user: 'alice', server: '*', secret: { kind: 'password', password: 'right' }, addresses: ['*'] },
  ]);
  const b = bench({
    serverLink: {
      authenticator: (m, host) =>
        createAuthenticator(m, host, { credentials, serverName: 'poptop', stripDomain: true }),
    },
    clientLink: { authPeer: (m, host) => createAuthPeer(m, host, { user: 'alice', password: 'wrong' }) },
  });
  b.open();
  b.clock.advance(120_000);
  assert.equal(b.server.link.phase, 'dead');
  assert.match(b.server.down[0]!, /^authentication failed \(mschapv2 user "alice"\)/);
  assert.equal(b.client.link.phase, 'dead');
});

test('stateful MPPE: a lost Reset-Request (or flushed answer) is asked for again after 1 s, as pppd does', () => {
  const credentials = new StaticCredentials([
    { user: 'alice', server: '*', secret: { kind: 'password', password: 'pw' }, addresses: ['*'] },
  ]);
  let drop: (f: Frame) => boolean = () => false;
  const b = bench({
    server: (p) => {
      p.mppe.preferStateful = true;
    },
    client: (p) => {
      p.mppe.statefulAllowed = true;
    },
    lose: (_n, f) => drop(f),
    serverLink: {
      mppe: createMppe,
      authenticator: (m, host) =>
        createAuthenticator(m, host, { credentials, serverName: 'poptop', stripDomain: false }),
    },
    clientLink: {
      mppe: createMppe,
      authPeer: (m, host) => createAuthPeer(m, host, { user: 'alice', password: 'pw' }),
    },
  });
  b.open();
  b.clock.advance(1000);
  assert.deepEqual(b.client.up[0]?.mppe, { bits: 128, stateless: false });
  const packet = Uint8Array.from(Buffer.from('4500001c0000400040010000c0a80001c0a80002', 'hex'));
  // ACFC: 80 fd (CCP), then Code 14 (Reset-Request).
  const isResetRequest = (f: Frame) => f.bytes[0] === 0x80 && f.bytes[1] === 0xfd && f.bytes[2] === 14;
  // One data frame from the client is lost, and so is the server's first Reset-Request.
  let dataLost = false;
  drop = (f) => {
    if (f.from === 'client' && !dataLost && f.bytes[0] === 0xfd) {
      dataLost = true;
      return true;
    }
    return f.from === 'server' && isResetRequest(f);
  };
  for (let i = 0; i < 5; i++) b.client.link.sendIp(packet);
  b.clock.advance(5);
  assert.equal(b.server.ip.length, 0, 'everything after the gap is discarded');
  drop = () => false;
  b.client.link.sendIp(packet);
  b.clock.advance(5);
  assert.equal(b.server.ip.length, 0, 'no repeat within a second');
  b.clock.advance(1000);
  b.client.link.sendIp(packet); // discarded, but now the Reset-Request is repeated
  b.clock.advance(5);
  b.client.link.sendIp(packet); // flushed: decrypts again
  b.clock.advance(5);
  assert.equal(b.server.ip.length, 1, b.server.log.text());
  assert.deepEqual(b.server.ip[0], packet);
});

test('a failed login tells the peer only "authentication failed", not whether the user exists', () => {
  const credentials = new StaticCredentials([
    { user: 'alice', server: '*', secret: { kind: 'password', password: 'right' }, addresses: ['*'] },
  ]);
  for (const [user, password] of [
    ['alice', 'wrong'],
    ['mallory', 'x'],
  ] as const) {
    const b = bench({
      serverLink: {
        authenticator: (m, host) =>
          createAuthenticator(m, host, { credentials, serverName: 'poptop', stripDomain: true }),
      },
      clientLink: { authPeer: (m, host) => createAuthPeer(m, host, { user, password }) },
    });
    b.open();
    b.clock.advance(30_000);
    // LCP (ACFC not applied to LCP): ff 03 c0 21, then Code 5 = Terminate-Request.
    const termReq = b.frames.find((f) => f.from === 'server' && f.bytes[2] === 0xc0 && f.bytes[4] === 5);
    assert.ok(termReq, b.server.log.text());
    assert.equal(Buffer.from(termReq.bytes.subarray(8)).toString('latin1'), 'authentication failed');
    assert.match(b.server.down[0]!, new RegExp(`user "${user}"`), 'the log keeps the detail');
  }
});
