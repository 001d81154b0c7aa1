/**
 * `workers` left unset, the default: one worker per processor, all on one TUN device named as one
 * process's would be (`pptpsrv0`), and data through each; without CAP_BPF (no steering program),
 * one process serves on that same device instead of a device per worker. `poptop serve` in one
 * namespace, `poptop connect` clients in two others (10.231.0.2 and .3: consecutive addresses go
 * to consecutive workers). Needs root and the compiled dist/.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { processorsForWorkers } from '../../src/server/workers/processors.ts';
import { sh } from './netns.ts';
import { Scenario } from './scenario.ts';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (network namespaces, raw sockets, TUN)';
let sc: Scenario;

before(() => {
  if (!isRoot && process.env.POPTOP_REQUIRE_ROOT_TESTS === '1')
    throw new Error('root suites are required here');
  if (isRoot) sc = new Scenario(2);
});

after(async () => {
  sc?.server?.signal('SIGTERM');
  await sc?.server?.exited(20_000).catch(() => null);
  await sc?.destroy();
});

const CONNECTED = /connected: \S+ (\S+) -> (\S+), MS-CHAPv2, MPPE 128-bit stateless/;
const tunDevices = (): string[] =>
  sh('ip', ['-n', sc.topo.server, '-o', 'link', 'show', 'type', 'tun'])
    .split('\n')
    .flatMap((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? []);

/** Two clients up (alice from .2, bob from .3), pings both ways through each, both ended. */
async function twoClientsPing(): Promise<void> {
  const alice = sc.connect(0, 'alice', 'alice-pw');
  const bob = sc.connect(1, 'bob', 'bob-pw');
  const aliceIp = (await alice.waitFor(CONNECTED, 20_000))[1]!;
  assert.equal((await bob.waitFor(CONNECTED, 20_000))[1], '10.77.0.200');
  assert.ok(sc.ping(sc.topo.clients[0]!, '10.77.0.1'), 'alice -> server');
  assert.ok(sc.ping(sc.topo.clients[1]!, '10.77.0.1'), 'bob -> server');
  assert.ok(sc.ping(sc.topo.server, aliceIp), 'server -> alice');
  assert.ok(sc.ping(sc.topo.server, '10.77.0.200'), 'server -> bob');
  for (const c of [alice, bob]) c.signal('SIGINT');
  for (const c of [alice, bob]) assert.equal(await c.exited(15_000), 0);
}

test('workers unset: one per processor on one TUN device; without CAP_BPF one process on that device', {
  skip,
}, async (t) => {
  const n = processorsForWorkers().count;
  await t.test(`one worker per processor (${n} here), one device`, async () => {
    await sc.startServer([], [], { defaultWorkers: true });
    if (n > 1) {
      assert.match(
        sc.server!.output,
        new RegExp(`${n} workers \\(one per processor\\), tunnel pptpsrv0 \\(a queue each\\)`),
      );
      for (let i = 0; i < n; i++)
        assert.match(sc.server!.output, new RegExp(`worker ${i} \\(pid \\d+\\) ready on pptpsrv0\\b`));
    } else assert.doesNotMatch(sc.server!.output, /workers/);
    assert.deepEqual(tunDevices(), ['pptpsrv0']);
    await twoClientsPing();
    if (n > 1) {
      // Each client's packets went through its own worker.
      await sc.server!.waitFor(/w0 \[s\d+ alice /, 5000);
      await sc.server!.waitFor(/w1 \[s\d+ bob /, 5000);
    }
    sc.server!.signal('SIGTERM');
    assert.equal(await sc.server!.exited(20_000), 0);
    assert.deepEqual(tunDevices(), [], 'the device goes with the server');
  });

  await t.test('without CAP_BPF: one process, on the same device name', async (tt) => {
    if (n < 2) return tt.skip('one processor here: one process either way');
    const caps = '-bpf,-sys_admin';
    await sc.startServer([], [], {
      defaultWorkers: true,
      wrapper: ['setpriv', `--inh-caps=${caps}`, `--bounding-set=${caps}`, '--'],
    });
    assert.match(
      sc.server!.output,
      new RegExp(
        `no TUN device shared by the workers \\(.*\\): one process serves every session, on pptpsrv0 \\("workers ${n}" would run ${n} processes with a TUN device each\\)`,
      ),
    );
    assert.doesNotMatch(sc.server!.output, /worker 0/);
    assert.deepEqual(tunDevices(), ['pptpsrv0']);
    await twoClientsPing();
  });
});
