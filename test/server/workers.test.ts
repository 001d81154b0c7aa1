/**
 * The primary (server/workers/primary.ts) with workers in memory on a ManualClock: each worker is
 * a real PptpServer with a PrimaryChannel, joined to the primary by messages that cross a turn (as
 * IPC does), sharing one in-memory GRE address whose packets reach a worker only for its call ids
 * (as the kernel filter does). Clients are real PptpClients over MemoryListener streams.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { decodeRadiusPacket, signRadiusPacket, textAttr, u32Attr } from '../../src/aaa/radius/codec.ts';
import { AcctStatus, Attr, RadiusCode, TerminateCause } from '../../src/aaa/radius/dictionary.ts';
import { PptpClient } from '../../src/client/client.ts';
import type { GrePort } from '../../src/net/interfaces.ts';
import { MemoryGreNetwork, MemoryTun } from '../../src/net/memory.ts';
import { MemoryListener } from '../../src/net/memory-stream.ts';
import { defaultPolicy } from '../../src/ppp/policy.ts';
import { answerWorker } from '../../src/server/control-answers.ts';
import { ServerMetrics } from '../../src/server/metrics.ts';
import { PptpServer } from '../../src/server/server.ts';
import type { ServerSettings } from '../../src/server/settings.ts';
import { RecordingSystem } from '../../src/server/system.ts';
import type { ToPrimary, ToWorker, WorkerIdentity } from '../../src/server/workers/messages.ts';
import {
  callIdShare,
  formatWorkerEnv,
  parseWorkerEnv,
  workerFor,
} from '../../src/server/workers/messages.ts';
import { type WorkerEvents, WorkerPool, type WorkerPoolDeps } from '../../src/server/workers/primary.ts';
import { PrimaryChannel, receiveFromPrimary, type WorkerSide } from '../../src/server/workers/worker.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';
import { type IPv4, parseIPv4 } from '../../src/wire/ip.ts';
import { ip, runVirtual as run, serverSettings } from './harness.ts';
import { MemoryRadius, radiusPapSettings } from './memory-radius.ts';

/** One shared GRE address; each worker's port sees only the packets for its call ids. */
function splitGre(shared: GrePort) {
  const receivers: { first: number; last: number; cb: (p: Uint8Array, from: number, to: number) => void }[] =
    [];
  shared.onPacket((p, from, to) => {
    const callId = (p[6]! << 8) | p[7]!;
    for (const r of receivers) if (callId >= r.first && callId <= r.last) r.cb(p, from, to);
  });
  return (range: { first: number; last: number }): GrePort => {
    const entry = { ...range, cb: (_p: Uint8Array, _f: number, _t: number) => {} };
    receivers.push(entry);
    return {
      send: (p, to) => shared.send(p, to),
      onPacket: (cb) => {
        entry.cb = cb;
      },
      close: () => {
        receivers.splice(receivers.indexOf(entry), 1);
      },
    };
  };
}

interface FakeWorker {
  identity: WorkerIdentity;
  server: PptpServer;
  alive: boolean;
  crash(): void;
}

/** What the bench's workers may be given besides the primary's dependencies: their host (routes). */
type BenchDeps = Pick<WorkerPoolDeps, 'workerGone'> & { system?: () => RecordingSystem };

function bench(over: Partial<ServerSettings> = {}, count = 2, radius?: MemoryRadius, deps: BenchDeps = {}) {
  const { system, ...poolDeps } = deps;
  const clock = new ManualClock(1_000_000);
  const net = new MemoryGreNetwork({ clock, delayMs: 1 });
  const gre = splitGre(net.port('127.0.0.1'));
  const listener = new MemoryListener();
  const log = new MemoryLogger();
  const settings = serverSettings(over);
  const workers: FakeWorker[] = [];
  let pids = 100;
  const primaryRadius = radius ? { radiusTransport: () => radius.transport() } : {};
  const pool = new WorkerPool(settings, count, {
    clock,
    log,
    listener,
    ...primaryRadius,
    ...poolDeps,
    spawn: (identity, events: WorkerEvents) => {
      let alive = true;
      // Messages cross a turn, both ways, as over a pipe.
      const toPrimary = (m: ToPrimary): boolean => {
        if (!alive) return false;
        setImmediate(() => alive && events.message(m));
        return true;
      };
      const port = gre(identity.callIds);
      const channel = new PrimaryChannel(toPrimary, log);
      const server = new PptpServer(settings, {
        clock,
        log: log.child(`w${identity.index}`),
        gre: port,
        tun: new MemoryTun(`mtunw${identity.index}`),
        system: system?.() ?? new RecordingSystem(),
        callIds: identity.callIds,
        authority: channel,
        // A crashed worker sends nothing more, RADIUS included.
        ...(radius ? { radiusTransport: () => radius.transport(() => alive) } : {}),
      });
      const metrics = new ServerMetrics(server, { eventLoop: false });
      server.observer = metrics;
      const w: FakeWorker = {
        identity,
        server,
        get alive() {
          return alive;
        },
        crash: () => {
          alive = false;
          channel.close();
          port.close();
          for (const s of server.liveSessions) s.control.stop('crash');
          setImmediate(() => events.exit('signal SIGKILL'));
        },
      };
      workers.push(w);
      let stopping = false;
      const side: WorkerSide = {
        server,
        channel,
        post: toPrimary,
        answer: (req) => answerWorker(server, metrics, req, {}, log),
        stop: (graceMs) => {
          stopping = true;
          void server.shutdown(graceMs).then(() => {
            alive = false;
            events.exit('exit code 0');
          });
        },
        get stopping() {
          return stopping;
        },
      };
      const pid = pids++;
      setImmediate(() => toPrimary({ t: 'ready', tun: `mtunw${identity.index}` }));
      return {
        pid,
        send: (m: ToWorker, socket?: Socket) => {
          if (!alive) return false;
          setImmediate(() => {
            if (!alive) socket?.destroy();
            else receiveFromPrimary(side, m, socket);
          });
          return true;
        },
        kill: () => w.crash(),
      };
    },
  });
  return { clock, net, listener, log, pool, workers, settings };
}

type Bench = ReturnType<typeof bench>;

/** A client from `address` (which decides its worker); `up` resolves with its address. */
function client(
  b: Bench,
  address: string,
  user = 'alice',
  password = 'alice-secret',
  policy = defaultPolicy('client'),
) {
  const state = { up: undefined as string | undefined, down: undefined as string | undefined };
  const c = new PptpClient({
    server: ip('127.0.0.1'),
    user,
    password,
    policy,
    clock: b.clock,
    log: new MemoryLogger(),
    gre: b.net.port(address),
    connectTcp: () => b.listener.connect(address),
    onUp: (info) => {
      state.up = [
        info.localAddress >>> 24,
        (info.localAddress >>> 16) & 255,
        (info.localAddress >>> 8) & 255,
        info.localAddress & 255,
      ].join('.');
    },
    onDown: (reason) => {
      state.down = reason;
    },
  });
  c.start();
  return { c, state };
}

async function started(
  over: Partial<ServerSettings> = {},
  count = 2,
  radius?: MemoryRadius,
  deps: BenchDeps = {},
): Promise<Bench> {
  const b = bench(over, count, radius, deps);
  const ready = b.pool.start();
  await run(b.clock, 50);
  await ready;
  await b.pool.listen();
  return b;
}

test('workers: call ids are split into disjoint ranges, and an address always goes to the same worker', () => {
  for (const n of [1, 2, 3, 7, 64]) {
    const ranges = Array.from({ length: n }, (_, i) => callIdShare(i, n));
    assert.equal(ranges[0]!.first, 1);
    assert.equal(ranges.at(-1)!.last, 65_535);
    for (let i = 1; i < n; i++) assert.equal(ranges[i]!.first, ranges[i - 1]!.last + 1, `${n} workers`);
  }
  assert.equal(workerFor(parseIPv4('10.231.0.2')!, 2), 0);
  assert.equal(workerFor(parseIPv4('10.231.0.3')!, 2), 1);
  assert.equal(workerFor(parseIPv4('255.255.255.255')!, 3), 0xffffffff % 3);
});

test("workers: the worker's environment variable carries its identity and, on a shared TUN device, its inherited descriptors", () => {
  const base = { index: 1, count: 2, callIds: callIdShare(1, 2) };
  assert.equal(formatWorkerEnv(base), '1/2 32768-65535');
  assert.deepEqual(parseWorkerEnv('1/2 32768-65535'), base);
  const shared = { ...base, shared: { queueFd: 4, steeringFd: 5, dropFd: 6 } };
  assert.equal(formatWorkerEnv(shared), '1/2 32768-65535 tun 4 5 6');
  assert.deepEqual(parseWorkerEnv(formatWorkerEnv(shared)), shared);
  const noDrops = { ...base, shared: { queueFd: 4, steeringFd: 5 } };
  assert.deepEqual(parseWorkerEnv(formatWorkerEnv(noDrops)), noDrops);
  for (const bad of ['2/2 1-2', '0/2 1-2 tun 4', '0/2 1-2 tun', '0/2 1-2 tun 4 5 6 7', '0/2 0-2'])
    assert.equal(parseWorkerEnv(bad), undefined, bad);
});

test('workers: sessions on both workers share one pool; sessions, status and kill see them all', async () => {
  const b = await started();
  // 127.0.0.2 → worker 0, 127.0.0.3 → worker 1, 127.0.0.4 → worker 0, 127.0.0.5 → worker 1.
  const c1 = client(b, '127.0.0.2');
  const c2 = client(b, '127.0.0.3');
  const c3 = client(b, '127.0.0.4');
  await run(b.clock, 500);
  assert.deepEqual([c1.state.up, c2.state.up, c3.state.up].sort(), [
    '10.77.0.10',
    '10.77.0.11',
    '10.77.0.12',
  ]);
  assert.equal(b.workers[0]!.server.list().length, 2);
  assert.equal(b.workers[1]!.server.list().length, 1);

  const c4 = client(b, '127.0.0.5');
  await run(b.clock, 500);
  assert.equal(c4.state.up, undefined, 'worker 1 has no address to give: the pool is one');
  assert.match(
    b.log.text(),
    /w1 \[s4 - 127\.0\.0\.5\] refusing call: address pool exhausted: all 3 addresses/,
  );

  const sessions = await b.pool.request({ cmd: 'sessions' });
  assert.ok(sessions.ok);
  assert.deepEqual(
    (sessions.data as { id: string }[]).map((s) => s.id),
    ['s1', 's2', 's3'],
    'merged, in session order',
  );
  assert.deepEqual(
    (sessions.data as { worker: number }[]).map((s) => s.worker),
    [0, 1, 0],
    'each row names its worker',
  );
  const status = await b.pool.request({ cmd: 'status' });
  assert.ok(status.ok);
  const st = status.data as {
    sessions: number;
    poolFree: number;
    workers: { sessions: number; pid: number }[];
  };
  assert.equal(st.sessions, 3);
  assert.equal(st.poolFree, 0);
  assert.deepEqual(
    st.workers.map((w) => w.sessions),
    [2, 1],
  );

  const killed = await b.pool.request({ cmd: 'kill', target: '10.77.0.11' });
  assert.ok(killed.ok);
  await run(b.clock, 200);
  assert.equal(b.pool.leases.poolFree, 1, "the killed session's address is free");
  const none = await b.pool.request({ cmd: 'kill', target: 'nobody' });
  assert.deepEqual(none, { ok: false, error: 'no session matches "nobody"' });

  // The status listener's view (pptpd.conf `status`): every worker's part, the primary's pool.
  const provider = b.pool.statusProvider();
  const metrics = await provider.metrics();
  assert.match(metrics, /^poptop_sessions\{state="up"\} 2$/m);
  assert.match(metrics, /^poptop_session_setups_total 3$/m, 'two on worker 0, one on worker 1');
  assert.match(metrics, /^poptop_session_ends_total\{reason="admin_kill"\} 1$/m);
  assert.match(
    metrics,
    /^poptop_session_setup_failures_total\{reason="pool_empty"\} 1$/m,
    'worker 1 refused c4',
  );
  assert.match(metrics, /^poptop_pool_addresses 3$/m);
  assert.match(metrics, /^poptop_pool_free_addresses 1$/m);
  assert.match(metrics, /^poptop_sessions_limit \d+$/m);
  const page = await provider.snapshot(false);
  assert.equal(page.sessionCount, 2);
  assert.equal(page.pool.free, 1);
  const left = page.sessions.map((x) => x.id);
  assert.equal(left.length, 2);
  assert.ok(await provider.kill(left[1]!, 'closed by the administrator (status page)'));
  assert.equal(await provider.kill('s99', 'nothing'), false);
  await run(b.clock, 200);
  const after = await provider.snapshot(false);
  assert.deepEqual(
    after.sessions.map((x) => x.id),
    [left[0]],
  );
  assert.equal(b.pool.leases.poolFree, 2);
});

test('workers: the connections limit counts every worker', async () => {
  const b = await started({ maxConnections: 2 });
  const c1 = client(b, '127.0.0.2');
  const c2 = client(b, '127.0.0.4');
  await run(b.clock, 500);
  assert.ok(c1.state.up && c2.state.up, 'two sessions on worker 0');
  const c3 = client(b, '127.0.0.3');
  await run(b.clock, 500);
  assert.equal(c3.state.up, undefined);
  // Refused in the Outgoing-Call-Reply (Busy), before any login, as one process does: the primary
  // told every worker when the limit was reached.
  assert.match(b.log.text(), /w1 \[s3 - 127\.0\.0\.3\] refusing call: connection limit reached \(2/);
  assert.doesNotMatch(b.log.text(), /w1 \[s3 alice/, 'no login was made');
  // A session ends: the workers are told there is room again, and a new call is taken.
  void c1.c.close();
  await run(b.clock, 500);
  const c4 = client(b, '127.0.0.5');
  await run(b.clock, 500);
  assert.ok(c4.state.up, 'worker 1 takes a call once there is room');
});

test('workers: a connection flood from one address is closed by the primary past twice max-unauth-per-source, without a handover each', async () => {
  const b = await started({ maxUnauthPerSource: 3 });
  // Twenty connections from one address (worker 0's) that never say anything.
  const flood = Array.from({ length: 20 }, () => b.listener.connect('127.0.0.2'));
  await run(b.clock, 100);
  const handed = b.pool.drops.get('too many unauthenticated connections from one address');
  assert.equal(
    handed,
    20 - 6,
    'six handed over (the worker refuses three of them itself), the rest closed here',
  );
  assert.match(
    b.log.text(),
    /dropped connection: too many unauthenticated connections from one address \(connection from 127\.0\.0\.2 closed by the primary\)/,
  );
  assert.equal(b.workers[0]!.server.drops.get('too many unauthenticated connections from one address'), 3);
  // Another address is not affected, and a client that logs in no longer counts.
  const other = client(b, '127.0.0.4');
  await run(b.clock, 500);
  assert.ok(other.state.up, 'a client from another address (worker 0 too) comes up');
  for (const f of flood) f.destroy();
  await run(b.clock, 6000);
  const after = client(b, '127.0.0.2');
  await run(b.clock, 500);
  assert.ok(after.state.up, 'once the flood is closed, the address is served again');
});

test('workers: single-session replace ends the older session on the other worker; deny refuses', async () => {
  const b = await started({ singleSession: 'replace' });
  const first = client(b, '127.0.0.2');
  await run(b.clock, 500);
  assert.ok(first.state.up);
  const second = client(b, '127.0.0.3');
  await run(b.clock, 3000);
  assert.ok(second.state.up, 'the new session is up (worker 1)');
  assert.ok(first.state.down, 'the old one (worker 0) was ended');
  assert.match(b.log.text(), /replaced by a new session of "alice" \(s2; single-session replace\)/);
  assert.equal(b.pool.leases.count, 1);

  const d = await started({ singleSession: 'deny' });
  const a = client(d, '127.0.0.2');
  await run(d.clock, 500);
  const refused = client(d, '127.0.0.3');
  await run(d.clock, 500);
  assert.ok(a.state.up);
  assert.equal(refused.state.up, undefined);
  assert.match(d.log.text(), /refusing alice: already connected \(session s1; single-session deny\)/);
});

test('workers: a worker that dies loses only its sessions; its addresses return; it restarts with a growing delay', async () => {
  const b = await started();
  const w0 = client(b, '127.0.0.2');
  const w1 = client(b, '127.0.0.3');
  await run(b.clock, 500);
  assert.ok(w0.state.up && w1.state.up);
  assert.equal(b.pool.leases.poolFree, 1);

  b.workers[0]!.crash();
  await run(b.clock, 20);
  assert.match(
    b.log.text(),
    /worker 0 ended \(signal SIGKILL\); its 1 session is lost; starting it again in 0\.5 s/,
  );
  assert.equal(b.pool.leases.poolFree, 2, "the dead worker's address is free");
  // While it is down, its addresses' connections go to the next running worker.
  const meanwhile = client(b, '127.0.0.4');
  await run(b.clock, 500);
  assert.ok(meanwhile.state.up);
  assert.equal(b.workers[1]!.server.list().length, 2);
  assert.equal(b.workers.length, 3, 'worker 0 started again after 0.5 s');
  assert.ok(w1.state.up && w1.state.down === undefined, 'worker 1 undisturbed');

  // Dying again at once: the next start waits twice as long.
  b.workers[2]!.crash();
  await run(b.clock, 20);
  assert.match(
    b.log.text(),
    /worker 0 ended \(signal SIGKILL\); its 0 sessions are lost; starting it again in 1 s/,
  );
  await run(b.clock, 600);
  assert.equal(b.workers.length, 3, 'not yet');
  await run(b.clock, 500);
  assert.equal(b.workers.length, 4);
  const after = client(b, '127.0.0.6');
  await run(b.clock, 500);
  assert.ok(after.state.up);
  assert.equal(b.workers[3]!.server.list().length, 1, 'served by the new worker 0');
});

test("workers on a shared TUN device: a dead worker's addresses return to the pool only once its routes are removed", async () => {
  const gone: number[] = [];
  let finish = (): void => {};
  const b = await started({}, 2, undefined, {
    workerGone: (index) => {
      gone.push(index);
      return new Promise<void>((resolve) => {
        finish = resolve;
      });
    },
  });
  const w0 = client(b, '127.0.0.2');
  await run(b.clock, 500);
  assert.ok(w0.state.up);
  const free = b.pool.leases.poolFree;
  b.workers[0]!.crash();
  await run(b.clock, 20);
  assert.deepEqual(gone, [0]);
  assert.match(b.log.text(), /worker 0 ended \(signal SIGKILL\); its 1 session is lost/);
  assert.equal(b.pool.leases.poolFree, free, 'held while its route may still be in the kernel');
  finish();
  await run(b.clock, 1);
  assert.equal(b.pool.leases.poolFree, free + 1);
});

test("workers: a closed session's address returns to the primary's pool only once the worker has removed its route", async () => {
  const pending: (() => void)[] = [];
  /** A worker host whose route deletions finish when the test says so. */
  class SlowDeletes extends RecordingSystem {
    override delClientRoute(a: IPv4): Promise<void> {
      return new Promise((resolve) => pending.push(() => void super.delClientRoute(a).then(resolve)));
    }
  }
  const b = await started({}, 2, undefined, { system: () => new SlowDeletes() });
  const free = b.pool.leases.poolFree;
  const w0 = client(b, '127.0.0.2');
  await run(b.clock, 500);
  assert.ok(w0.state.up);
  assert.equal(b.pool.leases.poolFree, free - 1);
  const closing = w0.c.close();
  await run(b.clock, 3000);
  await closing;
  assert.equal(pending.length, 1, 'the route deletion started');
  assert.equal(
    b.workers[0]!.server.list().length + b.workers[1]!.server.list().length,
    0,
    'the session is closed',
  );
  assert.equal(
    b.pool.leases.poolFree,
    free - 1,
    "the address is held while the worker's route is still there",
  );
  for (const f of pending.splice(0)) f();
  await run(b.clock, 20);
  assert.equal(b.pool.leases.poolFree, free);
});

test('workers: with no worker running a connection is closed and counted', async () => {
  const b = await started({}, 1);
  b.workers[0]!.crash();
  await run(b.clock, 20);
  const c = client(b, '127.0.0.2');
  await run(b.clock, 100);
  assert.equal(c.state.up, undefined);
  assert.equal(b.pool.drops.snapshot()['no worker is running'], 1);
});

test('workers: shutdown stops every worker and resolves', async () => {
  const b = await started();
  const c = client(b, '127.0.0.2');
  await run(b.clock, 500);
  assert.ok(c.state.up);
  const done = b.pool.shutdown(1000);
  await run(b.clock, 1500);
  await done;
  assert.match(b.log.text(), /worker 0 stopped \(exit code 0\)/);
  assert.match(b.log.text(), /worker 1 stopped \(exit code 0\)/);
  assert.ok(c.state.down);
});

test('workers: failed logins for a user name on one worker brake that name on the others too', async () => {
  const b = await started();
  const [w0, w1] = [b.workers[0]!.server.loginThrottle, b.workers[1]!.server.loginThrottle];
  const free = w0.settings.userFreeFailures;
  // Guesses for "alice" from addresses that worker 0 serves (each below its own lockout).
  for (let i = 0; i <= free; i++) w0.failed(`127.0.1.${2 * i}`, 'alice');
  await run(b.clock, 20);
  assert.ok(w0.assess('127.0.0.99', 'alice').delayMs > 0, 'worker 0 brakes the name');
  assert.ok(w1.assess('127.0.0.99', 'alice').delayMs > 0, 'and so does worker 1, told by the primary');
  assert.equal(w1.assess('127.0.0.99', 'bob').delayMs, 0, 'other names are not braked');
  assert.equal(w1.isLocked('127.0.1.0'), false, "an address's lockout stays its own worker's");
});

const RADIUS_SECRET = 'workers-radius';
const enc = (text: string) => new TextEncoder().encode(text);

test("workers with RADIUS: Accounting-On/Off once, Framed-IP through the one pool, Disconnect-Request forwarded, a dead worker's sessions stopped", async () => {
  // alice and bob are both given 10.77.0.50; carol none (the pool).
  const framedIp: Record<string, string> = { alice: '10.77.0.50', bob: '10.77.0.50' };
  const radius = new MemoryRadius(RADIUS_SECRET, (user) =>
    framedIp[user] ? [u32Attr(Attr.FramedIpAddress, ip(framedIp[user]))] : [],
  );
  const b = await started(radiusPapSettings(radius), 2, radius);
  const pap = defaultPolicy('client');
  pap.auth.accept = ['pap'];
  pap.mppe.required = false;
  await run(b.clock, 50);
  assert.deepEqual(
    radius.statuses(),
    [AcctStatus.AccountingOn],
    'from the primary only, not from each worker',
  );
  // The primary's own requests are in the metrics beside the workers'.
  const early = await b.pool.statusProvider().metrics();
  assert.match(early, /^poptop_radius_requests_total\{purpose="accounting"\} 1$/m);
  assert.match(early, /^poptop_radius_replies_total\{purpose="accounting"\} 1$/m);

  // alice (worker 0) gets her Framed-IP-Address, leased by the primary.
  const alice = client(b, '127.0.0.2', 'alice', 'pw', pap);
  await run(b.clock, 500);
  assert.equal(alice.state.up, '10.77.0.50');
  assert.equal(b.pool.leases.holderOf(ip('10.77.0.50'))?.id, 's1');
  assert.deepEqual(radius.statuses('alice'), [AcctStatus.Start]);

  // RADIUS gives bob (worker 1) the same address: the primary refuses it and names alice's session.
  const bob = client(b, '127.0.0.3', 'bob', 'pw', pap);
  await run(b.clock, 500);
  assert.equal(bob.state.up, undefined);
  assert.match(b.log.text(), /gave 10\.77\.0\.50, which session s1 here still has/);
  assert.deepEqual(radius.statuses('bob'), [], "no Stop that would free alice's address there");

  // carol (worker 1): an address of the pool.
  const carol = client(b, '127.0.0.5', 'carol', 'pw', pap);
  await run(b.clock, 500);
  assert.ok(carol.state.up?.startsWith('10.77.0.1'), carol.state.up);

  // A Disconnect-Request to the primary's listener ends alice's session on worker 0.
  const aliceId = radius.accounting.find((a) => a.user === 'alice')!.sessionId;
  const request = (sessionId: string) =>
    signRadiusPacket(
      {
        code: RadiusCode.DisconnectRequest,
        id: 7,
        authenticator: new Uint8Array(16),
        attributes: [textAttr(Attr.AcctSessionId, sessionId)],
      },
      enc(RADIUS_SECRET),
      { messageAuthenticator: true },
    );
  const nak = b.pool.radius!.dynauthHandler.handle(request('no-such-session'), '127.0.0.1', 40000);
  assert.equal(decodeRadiusPacket(nak!).code, RadiusCode.DisconnectNak);
  const ack = b.pool.radius!.dynauthHandler.handle(request(aliceId), '127.0.0.1', 40001);
  assert.equal(decodeRadiusPacket(ack!).code, RadiusCode.DisconnectAck);
  await run(b.clock, 500);
  assert.ok(alice.state.down, 'alice is disconnected');
  const aliceStop = radius.accounting.find((a) => a.user === 'alice' && a.status === AcctStatus.Stop);
  assert.equal(aliceStop?.cause, TerminateCause.AdminReset, 'her worker sent her Stop, as for one process');
  assert.equal(b.pool.leases.holderOf(ip('10.77.0.50')), undefined);

  // Worker 1 dies with carol's session: the primary sends her Stop (NAS-Error).
  b.workers[1]!.crash();
  await run(b.clock, 100);
  const carolStop = radius.accounting.find((a) => a.user === 'carol' && a.status === AcctStatus.Stop);
  assert.equal(carolStop?.cause, TerminateCause.NasError);
  assert.match(b.log.text(), /worker 1 ended/);

  const down = b.pool.shutdown(1000);
  await run(b.clock, 3000);
  await down;
  assert.deepEqual(
    radius.statuses().filter((x) => x === AcctStatus.AccountingOn || x === AcctStatus.AccountingOff),
    [AcctStatus.AccountingOn, AcctStatus.AccountingOff],
  );
});
