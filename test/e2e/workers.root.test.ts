/**
 * `workers 2` with the kernel: `poptop serve --workers 2` in one namespace, `poptop connect` clients
 * in four others (10.231.0.2-5; an address's connections go to worker address % 2: 0, 1, 0, 1).
 * One listening port and one address pool for both workers; data flows through one TUN device, a
 * queue of it for each worker (the kernel steers each client's packets to its worker's queue), and
 * each worker's GRE socket; `poptop sessions` / `kill` / status and the status listener's metrics
 * and page (served by the primary) see both; a worker killed with
 * SIGKILL loses only its sessions, the primary removes their routes from the shared device, their
 * addresses return to the pool and it is started again. (The per-worker devices used where the
 * kernel refuses the shared one are covered by bcrelay.root.test.ts.)
 * Needs root (namespaces, raw GRE, TUN) and the compiled dist/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { poptopIn, sh, statusIn, until } from './netns.ts';
import { Scenario } from './scenario.ts';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (network namespaces, raw sockets, TUN)';
let sc: Scenario;
const STATUS = '127.0.0.1:9100';

interface WorkerRow {
  index: number;
  pid: number | null;
  state: string;
  tun: string | null;
  restarts: number;
  sessions: number | null;
}
interface Status {
  sessions: number;
  poolSize: number;
  poolFree: number;
  workers: WorkerRow[];
}

before(async () => {
  if (!isRoot && process.env.POPTOP_REQUIRE_ROOT_TESTS === '1')
    throw new Error('root suites are required here');
  if (!isRoot) return;
  sc = new Scenario(4);
  await sc.startServer(['--workers', '2', '--status', STATUS]);
});

after(async () => {
  if (!sc) return;
  sc.server?.signal('SIGTERM');
  await sc.server?.exited(20_000).catch(() => null);
  await sc.destroy();
});

/** GET on the status listener, from inside the server's namespace. */
const httpGet = (path: string): string =>
  execFileSync(
    'ip',
    [
      'netns',
      'exec',
      sc.topo.server,
      process.execPath,
      '-e',
      `fetch(${JSON.stringify(`http://${STATUS}${path}`)}).then(r => r.text()).then(t => process.stdout.write(t))`,
    ],
    { encoding: 'utf8', timeout: 15_000 },
  );

const status = (): Status => statusIn<Status>(sc.topo.server, `${sc.topo.dir}/control.sock`);
const CONNECTED = /connected: \S+ (\S+) -> (\S+), MS-CHAPv2, MPPE 128-bit stateless/;

test('two workers behind one port: one pool, data through both, sessions and kill over both, a killed worker restarts', {
  skip,
}, async (t) => {
  assert.match(
    sc.server!.output,
    /listening on 10\.231\.0\.1:1723|listening on 0\.0\.0\.0:1723 for 2 workers/,
  );
  assert.match(sc.server!.output, /2 workers, tunnel pptpsrv0 \(a queue each\)/);
  assert.match(sc.server!.output, /worker 0 \(pid \d+\) ready on pptpsrv0\b/);
  assert.match(sc.server!.output, /worker 1 \(pid \d+\) ready on pptpsrv0\b/);
  assert.equal(
    sh('ip', ['-n', sc.topo.server, '-o', 'link', 'show', 'type', 'tun']).match(/pptpsrv0/g)?.length,
    1,
    'one device for both workers',
  );

  // Pool 10.77.0.10-11, so `connections` is 2 (pptpd's rule): one limit for both workers.
  const alice = sc.connect(0, 'alice', 'alice-pw');
  const bob = sc.connect(1, 'bob', 'bob-pw');
  const aliceIp = (await alice.waitFor(CONNECTED, 20_000))[1]!;
  assert.equal((await bob.waitFor(CONNECTED, 20_000))[1], '10.77.0.200', 'static address, worker 1');
  assert.ok(['10.77.0.10', '10.77.0.11'].includes(aliceIp));

  await t.test('data flows through each worker (its queue of the TUN device and its GRE call ids)', () => {
    assert.ok(sc.ping(sc.topo.clients[0]!, '10.77.0.1'), 'alice (worker 0) -> server');
    assert.ok(sc.ping(sc.topo.clients[1]!, '10.77.0.1'), 'bob (worker 1) -> server');
    assert.ok(sc.ping(sc.topo.server, aliceIp), 'server -> alice');
    assert.ok(sc.ping(sc.topo.server, '10.77.0.200'), 'server -> bob');
  });

  await t.test('poptop sessions and status see both workers', async () => {
    const rows = await sc.sessions();
    assert.equal(rows.length, 2);
    assert.notEqual(rows[0]!.id, rows[1]!.id, 'session ids are unique across workers');
    assert.deepEqual(rows.map((r) => r.ip).sort(), [aliceIp, '10.77.0.200'].sort());
    const st = status();
    assert.equal(st.sessions, 2);
    assert.equal(st.poolFree, 1);
    assert.deepEqual(
      st.workers.map((w) => [w.index, w.state, w.tun, w.sessions]),
      [
        [0, 'ready', 'pptpsrv0', 1],
        [1, 'ready', 'pptpsrv0', 1],
      ],
    );
    // The primary serves the status listener for both workers (pptpd.conf `status`).
    await sc.server!.waitFor(/status page on http:\/\/127\.0\.0\.1:9100\//, 5000);
    const metrics = httpGet('/metrics');
    assert.match(metrics, /^poptop_sessions\{state="up"\} 2$/m);
    assert.match(metrics, /^poptop_session_setups_total 2$/m);
    assert.match(metrics, /^poptop_pool_free_addresses 1$/m);
    const page = JSON.parse(httpGet('/api/status')) as { sessionCount: number; sessions: { ip: string }[] };
    assert.equal(page.sessionCount, 2);
    assert.deepEqual(page.sessions.map((x) => x.ip).sort(), [aliceIp, '10.77.0.200'].sort());
  });

  await t.test('the limit is global: worker 1 refuses a third session while it has only one', async () => {
    const carol = sc.connect(3, 'carol', 'carol-pw');
    assert.notEqual(await carol.exited(20_000), 0);
    // Refused in the Outgoing-Call-Reply, before any login: the primary told the workers.
    await sc.server!.waitFor(/w1 \[s\d+ - [^\]]*\] refusing call: connection limit reached \(2/, 5000);
  });

  let carol: ReturnType<Scenario['connect']>;
  let carolIp = '';
  await t.test('poptop kill reaches the worker that has the session; the pool is one', async () => {
    assert.match(sc.kill('bob'), /s\d+/);
    assert.notEqual(await bob.exited(15_000), null);
    await until('bob gone', 10_000, () => (status().sessions === 1 ? true : undefined));
    // carol on worker 0 gets the address worker 0 does not hold yet; then both are worker 0's,
    // and worker 1 has none to give.
    carol = sc.connect(2, 'carol', 'carol-pw');
    carolIp = (await carol.waitFor(CONNECTED, 20_000))[1]!;
    assert.deepEqual([aliceIp, carolIp].sort(), ['10.77.0.10', '10.77.0.11']);
    assert.equal(status().poolFree, 0);
  });

  await t.test(
    'a worker killed with SIGKILL: only its sessions end, its addresses return, it restarts',
    async () => {
      const before = status().workers[0]!;
      assert.ok(before.pid);
      const hostRoutes = () =>
        sh('ip', ['-n', sc.topo.server, 'route', 'show', 'dev', 'pptpsrv0'])
          .split('\n')
          .map((l) => l.split(' ')[0])
          .filter((dst) => dst?.startsWith('10.77.0.'))
          .sort();
      assert.deepEqual(hostRoutes(), [aliceIp, carolIp].sort());
      process.kill(before.pid, 'SIGKILL'); // our server's child, by the PID it reported
      await sc.server!.waitFor(/worker 0 ended \(signal SIGKILL\); its 2 sessions are lost/, 10_000);
      // Its device was everyone's: the primary removes the routes it left there.
      await sc.server!.waitFor(/worker 0: removed 2 of its 2 routes from pptpsrv0/, 10_000);
      assert.deepEqual(hostRoutes(), []);
      const after = await until('worker 0 running again', 15_000, () => {
        const w = status().workers[0]!;
        return w.state === 'ready' && w.pid !== before.pid ? w : undefined;
      });
      assert.equal(after.restarts, 1);
      assert.equal(status().poolFree, 2, "the dead worker's addresses are free");
      assert.equal(status().workers[1]!.state, 'ready', 'worker 1 was not disturbed');
      // The clients of worker 0 notice by LCP echo and end.
      assert.notEqual(await alice.exited(20_000), null);
      assert.notEqual(await carol.exited(20_000), null);
      // Both workers take new sessions: worker 1 (from 10.231.0.5), the restarted worker 0 (.2).
      const dave = sc.connect(3, 'alice', 'alice-pw');
      await dave.waitFor(CONNECTED, 20_000);
      assert.ok(sc.ping(sc.topo.clients[3]!, '10.77.0.1'));
      const eve = sc.connect(0, 'carol', 'carol-pw');
      await eve.waitFor(CONNECTED, 20_000);
      assert.ok(sc.ping(sc.topo.clients[0]!, '10.77.0.1'), 'through the restarted worker');
      eve.signal('SIGINT');
      assert.equal(await eve.exited(15_000), 0);
    },
  );

  await t.test('poptop reload re-reads the files in every worker: a new user logs in on each', async () => {
    appendFileSync(join(sc.topo.dir, 'chap-secrets'), 'dave\t*\t"dave-pw"\t*\n');
    const out = poptopIn(sc.topo.server, ['reload', '--control-socket', join(sc.topo.dir, 'control.sock')]);
    assert.match(out, /reloaded/);
    await until('one address free again', 10_000, () => (status().poolFree === 1 ? true : undefined));
    const dave = sc.connect(2, 'dave', 'dave-pw'); // worker 0
    await dave.waitFor(CONNECTED, 20_000);
    await sc.server!.waitFor(/w0 \[s\d+ dave /, 5000);
    dave.signal('SIGINT');
    assert.equal(await dave.exited(15_000), 0);
    await until('dave gone', 10_000, () => (status().poolFree === 1 ? true : undefined));
    const again = sc.connect(1, 'dave', 'dave-pw'); // worker 1
    await again.waitFor(CONNECTED, 20_000);
    await sc.server!.waitFor(/w1 \[s\d+ dave /, 5000);
  });

  await t.test('SIGTERM: every worker closes its sessions and the server exits 0', async () => {
    sc.server!.signal('SIGTERM');
    assert.equal(await sc.server!.exited(20_000), 0);
    assert.match(sc.server!.output, /worker 0 stopped/);
    assert.match(sc.server!.output, /worker 1 stopped/);
  });
});
