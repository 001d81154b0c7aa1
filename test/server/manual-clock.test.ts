/**
 * The whole server and client in memory on a ManualClock: control connections over MemoryListener
 * streams, GRE over MemoryGreNetwork. Deadlines and keepalives are tested in virtual time.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PptpClient } from '../../src/client/client.ts';
import { MemoryGreNetwork, MemoryTun } from '../../src/net/memory.ts';
import { MemoryListener } from '../../src/net/memory-stream.ts';
import { defaultPolicy } from '../../src/ppp/policy.ts';
import { PptpServer } from '../../src/server/server.ts';
import { RecordingSystem } from '../../src/server/system.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';
import { ip, runVirtual as run, serverSettings } from './harness.ts';

function bench() {
  const clock = new ManualClock(1_000_000);
  const net = new MemoryGreNetwork({ clock, delayMs: 1 });
  const listener = new MemoryListener();
  const log = new MemoryLogger();
  const system = new RecordingSystem();
  const server = new PptpServer(serverSettings(), {
    clock,
    log,
    gre: net.port('127.0.0.1'),
    tun: new MemoryTun('mtun'),
    system,
    listener,
  });
  return { clock, net, listener, log, system, server };
}

test('manual clock: a client comes up, and a silent one is cut at the call deadline (30 s virtual)', async () => {
  const b = bench();
  await b.server.listen();
  let up = false;
  const client = new PptpClient({
    server: ip('127.0.0.1'),
    user: 'alice',
    password: 'alice-secret',
    policy: defaultPolicy('client'),
    clock: b.clock,
    log: new MemoryLogger(),
    gre: b.net.port('127.0.0.2'),
    connectTcp: () => b.listener.connect('127.0.0.2'),
    onUp: () => {
      up = true;
    },
  });
  client.start();
  for (let i = 0; i < 300 && !up; i++) await run(b.clock, 10);
  assert.ok(up, b.log.text());
  assert.equal(b.server.list()[0]?.state, 'up');

  // A second connection that only opens TCP and says nothing more.
  const silent = b.listener.connect('127.0.0.3');
  let closed = false;
  silent.on('close', () => {
    closed = true;
  });
  silent.on('data', () => {});
  await run(b.clock, 100);
  assert.equal(b.server.list().length, 2);
  await run(b.clock, 31_000);
  assert.ok(closed, 'the silent connection is closed');
  assert.equal(b.server.list().length, 1, b.log.text());
  assert.equal(b.server.list()[0]?.state, 'up', 'the established session is untouched');
  let down = false;
  void client.close().then(() => {
    down = true;
  });
  for (let i = 0; i < 100 && !down; i++) await run(b.clock, 10);
  assert.ok(down);
  await run(b.clock, 100);
  assert.equal(b.server.list().length, 0);
});
