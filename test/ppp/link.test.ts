import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bench, CLIENT_IP, SERVER_IP } from './harness.ts';

test('defaults: server and client reach the Network phase with MPPE-128 stateless and an address', () => {
  const b = bench();
  b.open();
  b.clock.advance(100);
  assert.equal(b.server.link.phase, 'network', b.server.log.text());
  assert.equal(b.client.link.phase, 'network', b.client.log.text());
  assert.equal(b.server.up.length, 1);
  assert.equal(b.client.up.length, 1);
  const s = b.server.up[0]!;
  const c = b.client.up[0]!;
  assert.equal(s.localAddress, SERVER_IP);
  assert.equal(s.peerAddress, CLIENT_IP);
  assert.equal(c.localAddress, CLIENT_IP);
  assert.equal(c.peerAddress, SERVER_IP);
  assert.deepEqual(s.mppe, { bits: 128, stateless: true });
  assert.deepEqual(c.mppe, { bits: 128, stateless: true });
  b.client.link.sendIp(new Uint8Array([0x45, 1, 2, 3]));
  b.server.link.sendIp(new Uint8Array([0x45, 9, 9]));
  b.clock.advance(5);
  assert.deepEqual(b.server.ip, [new Uint8Array([0x45, 1, 2, 3])]);
  assert.deepEqual(b.client.ip, [new Uint8Array([0x45, 9, 9])]);
});
