/**
 * Issue 5's end-to-end test, with the kernel: `poptop serve` in one network namespace,
 * `poptop connect` in others, joined by veth pairs. Needs root (namespaces, raw GRE, TUN).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { NsProcess } from './netns.ts';
import { Scenario } from './scenario.ts';

let sc: Scenario;

/**
 * 1300-octet UDP datagrams to the discard port of argv[1], as fast as one process sends them, for
 * 2 s and at most 400,000: far beyond what the tunnel carries.
 */
const UDP_FLOOD = `
const s = require('node:dgram').createSocket('udp4');
const payload = Buffer.alloc(1300);
const end = Date.now() + 2000;
let sent = 0;
const burst = () => {
  if (Date.now() > end || sent >= 400000) return s.close();
  for (let i = 0; i < 200; i++, sent++) s.send(payload, 9, process.argv[1]);
  setImmediate(burst);
};
burst();`;

before(async () => {
  sc = new Scenario(3);
  await sc.startServer();
});

after(async () => {
  await sc?.destroy();
});

test('MS-CHAPv2 + MPPE-128 tunnel: ping both ways, 50 MB intact, static IP, pool exhaustion, echo timeout, SIGTERM', async (t) => {
  const alice = sc.connect(0, 'alice', 'alice-pw');
  const up = await alice.waitFor(/connected: \S+ (\S+) -> (\S+), MS-CHAPv2, MPPE 128-bit stateless/, 20_000);
  const aliceIp = up[1]!;
  let bob: NsProcess | undefined;
  assert.equal(up[2], '10.77.0.1');

  await t.test('ping through the tunnel, both ways', () => {
    assert.ok(sc.ping(sc.topo.clients[0]!, '10.77.0.1'), 'client -> server tunnel address');
    assert.ok(sc.ping(sc.topo.server, aliceIp), 'server -> client tunnel address');
  });

  await t.test('50 MB arrive intact (sha256)', async () => {
    const r = await sc.transfer(0, 50 * 1024 * 1024);
    assert.equal(r.received, r.sent);
  });

  await t.test(
    'an unpaced UDP flood towards the client: the server has the kernel drop the excess unread, counts it, and the tunnel carries traffic after',
    async () => {
      assert.doesNotMatch(sc.server!.output, /no kernel drop filter/, 'the eBPF drop list is on');
      const flood = sc.spawn('flood', sc.topo.server, [process.execPath, '-e', UDP_FLOOD, aliceIp]);
      assert.equal(await flood.exited(20_000), 0, flood.output);
      await sc.server!.waitFor(
        /\[s\d+ alice [^\]]*\] .*dropped PPP frame: outgoing packet with the GRE send queue full, dropped unread by the kernel/,
        10_000,
      );
      assert.ok(sc.ping(sc.topo.clients[0]!, '10.77.0.1'), 'client -> server after the flood');
      assert.ok(sc.ping(sc.topo.server, aliceIp), 'server -> client after the flood');
    },
  );

  await t.test('pool exhaustion is refused cleanly', async () => {
    const carol = sc.connect(2, 'carol', 'carol-pw');
    const m = await carol.waitFor(/connected: \S+ (\S+) ->/, 20_000);
    assert.equal(m[1], '10.77.0.11');
    const extra = sc.connect(1, 'alice', 'alice-pw');
    const code = await extra.exited(20_000);
    assert.notEqual(code, 0);
    assert.match(extra.output, /refused|resource/i);
    await sc.server!.waitFor(/address pool exhausted: all 2 addresses of remoteip are in use/, 5000);
    carol.signal('SIGINT');
    assert.equal(await carol.exited(10_000), 0);
    await sc.server!.waitFor(/\[s\d+ carol [^\]]*\] session closed/, 10_000);
  });

  await t.test('per-user static IP from chap-secrets', async () => {
    bob = sc.connect(1, 'bob', 'bob-pw');
    const m = await bob.waitFor(/connected: \S+ (\S+) ->/, 20_000);
    assert.equal(m[1], '10.77.0.200');
    assert.ok(sc.ping(sc.topo.clients[1]!, '10.77.0.1'));
  });

  await t.test(
    'a client that vanishes (network cut, then SIGKILL) is detected by LCP echo; its IP returns',
    async () => {
      assert.ok((await sc.sessions()).some((s) => s.user === 'bob'));
      // Cut the client's wire first so no TCP FIN/RST reaches the server: only LCP echo can tell.
      sc.cutClient(1);
      bob!.signal('SIGKILL');
      await sc.server!.waitFor(/\[s\d+ bob [^\]]*\] .*LCP Echo/i, 15_000);
      await sc.server!.waitFor(/\[s\d+ bob [^\]]*\] session closed/, 15_000);
      assert.ok(!(await sc.sessions()).some((s) => s.user === 'bob'));
      sc.restoreClient(1);
    },
  );

  await t.test('poptop kill ends one session cleanly', async () => {
    const again = sc.connect(1, 'bob', 'bob-pw');
    await again.waitFor(/connected:/, 20_000);
    const out = sc.kill('bob');
    assert.match(out, /closing s\d+/);
    assert.equal(await again.exited(15_000), 0);
    assert.match(again.output, /disconnected: .*administrator/);
  });

  await t.test('SIGTERM on the server tells the client', async () => {
    sc.server!.signal('SIGTERM');
    assert.equal(await sc.server!.exited(15_000), 0);
    assert.equal(await alice.exited(15_000), 0);
    assert.match(alice.output, /disconnected: .*shutting down/);
  });
});
