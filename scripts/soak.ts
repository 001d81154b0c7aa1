/**
 * `npm run soak [-- CYCLES [CONCURRENCY]]`: connect/disconnect cycles against one PptpServer in
 * this process (control over loopback TCP, GRE over the in-memory network, as in
 * test/server/harness.ts), then a report of what the process holds before and after: RSS, heap,
 * open descriptors, active handles and timers, pool, leases, sessions and the per-source table.
 * Exits non-zero if anything did not return to its baseline (RSS and heap within a tolerance), or
 * if cycles failed. On demand only (not part of npm test): 100,000 cycles take minutes.
 *
 * Cycles, by index: even → clean (LCP Terminate, Call-Clear, Stop-Control-Connection); 1 mod 4 →
 * TCP reset (RST, no goodbye); 3 mod 4 → TCP closed (FIN, no PPP goodbye); and every 100th →
 * the client's GRE stops while its TCP stays open (the server finds out by LCP echo).
 */
import { readdirSync } from 'node:fs';
import { type Socket, connect as tcpConnect } from 'node:net';
import { writeHeapSnapshot } from 'node:v8';
import { StaticCredentials } from '../src/aaa/credentials.ts';
import { PptpClient } from '../src/client/client.ts';
import { GreDemux } from '../src/gre/demux.ts';
import type { GrePort } from '../src/net/interfaces.ts';
import { MemoryGreNetwork, MemoryTun } from '../src/net/memory.ts';
import { defaultPolicy } from '../src/ppp/policy.ts';
import { CallIdAllocator } from '../src/pptp/call-ids.ts';
import { PptpServer } from '../src/server/server.ts';
import { RecordingSystem } from '../src/server/system.ts';
import { SystemClock } from '../src/util/clock.ts';
import { DropCounter } from '../src/util/counters.ts';
import { nullLogger } from '../src/util/log.ts';
import { credential, ip, serverSettings } from '../test/server/harness.ts';

const cycles = Number(process.argv[2] ?? 100_000);
const concurrency = Number(process.argv[3] ?? 16);
if (!(cycles > 0) || !(concurrency > 0)) {
  process.stderr.write('usage: npm run soak -- [CYCLES (default 100000)] [CONCURRENCY (default 16)]\n');
  process.exit(2);
}
/** Client source addresses (127.0.0.x): spread so the per-source limits are not what is tested. */
const SOURCES = Array.from({ length: 8 }, (_, i) => `127.0.0.${20 + i}`);
const WARMUP = Math.min(200, Math.ceil(cycles / 10));
const RSS_TOLERANCE_MB = 48;
const HEAP_TOLERANCE_MB = 16;

type Kind = 'clean' | 'tcp-reset' | 'tcp-close' | 'gre-stops';
const kindOf = (i: number): Kind =>
  i % 100 === 99 ? 'gre-stops' : i % 2 === 0 ? 'clean' : i % 4 === 1 ? 'tcp-reset' : 'tcp-close';

/** Routes and proxy ARP recorded (they must come and go); hooks counted, not kept. */
class SoakSystem extends RecordingSystem {
  readonly hookCounts = { 'ip-up': 0, 'ip-down': 0 };
  override async runHook(kind: 'ip-up' | 'ip-down'): Promise<void> {
    this.hookCounts[kind]++;
  }
}
const system = new SoakSystem();

const clock = new SystemClock();
const net = new MemoryGreNetwork({ clock, delayMs: 0 });
const serverPolicy = defaultPolicy('server');
serverPolicy.lcpEchoInterval = 1;
serverPolicy.lcpEchoFailure = 2;
const settings = serverSettings({
  maxConnections: 250,
  remoteIps: Array.from({ length: 200 }, (_, i) => ip(`10.77.1.${i + 1}`)),
  policy: serverPolicy,
  credentials: new StaticCredentials([credential('soak', 'soak-secret')]),
});
const server = new PptpServer(settings, {
  clock,
  log: nullLogger,
  gre: net.port('127.0.0.1'),
  tun: new MemoryTun('soak0'),
  system,
});
const port = await server.listen();
const callIds = new CallIdAllocator();
const ports = new Map<string, { gre: GrePort; demux: GreDemux }>();
for (const s of SOURCES) {
  const gre = net.port(s);
  const demux = new GreDemux(new DropCounter(nullLogger, 'GRE packet'), clock);
  gre.onPacket((p, from) => demux.receive(p, from));
  ports.set(s, { gre, demux });
}

const failures: Record<string, number> = {};
const kinds: Record<Kind, number> = { clean: 0, 'tcp-reset': 0, 'tcp-close': 0, 'gre-stops': 0 };

/** One cycle: connect, wait for IPCP, disconnect the `kind` way, wait until the client is down. */
async function cycle(i: number): Promise<void> {
  const kind = kindOf(i);
  const source = SOURCES[i % SOURCES.length]!;
  const { gre, demux } = ports.get(source)!;
  let sock: Socket | undefined;
  let silenced = false;
  const wire: GrePort = {
    send: (p, to) => {
      if (!silenced) gre.send(p, to);
    },
    onPacket: () => {},
    close: () => {},
  };
  let resolveUp: () => void = () => {};
  const up = new Promise<void>((r) => {
    resolveUp = r;
  });
  const client = new PptpClient({
    server: ip('127.0.0.1'),
    port,
    user: 'soak',
    password: 'soak-secret',
    policy: defaultPolicy('client'),
    clock,
    log: nullLogger,
    gre: wire,
    demux,
    callIds,
    connectTcp: (host, p) => {
      sock = tcpConnect({ host, port: p, localAddress: source, noDelay: true });
      return sock;
    },
    onUp: () => resolveUp(),
  });
  client.start();
  const first = await Promise.race([up.then(() => 'up'), client.done]);
  if (first !== 'up') {
    failures[first] = (failures[first] ?? 0) + 1;
    return;
  }
  kinds[kind]++;
  switch (kind) {
    case 'clean':
      await client.close('soak cycle');
      break;
    case 'tcp-reset':
      sock?.resetAndDestroy();
      break;
    case 'tcp-close':
      sock?.destroy();
      break;
    case 'gre-stops':
      silenced = true;
      break;
  }
  // A timer cancelled as soon as the client is down: a pending one would keep the cycle alive.
  let timer: NodeJS.Timeout | undefined;
  const reason = await Promise.race([
    client.done,
    new Promise<string>((r) => {
      timer = setTimeout(() => r('client still up after 20 s'), 20_000);
    }),
  ]);
  clearTimeout(timer);
  if (reason === 'client still up after 20 s') {
    failures[reason] = (failures[reason] ?? 0) + 1;
    sock?.destroy();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

interface Snapshot {
  rssMb: number;
  heapMb: number;
  fds: number;
  resources: Record<string, number>;
  sessions: number;
  poolFree: number;
  leases: number;
  calls: number;
  callIds: number;
  sources: number;
  unauthenticated: number;
  throttle: { sources: number; users: number };
  routes: number;
  hooksUnbalanced: number;
}

async function snapshot(): Promise<Snapshot> {
  // Let closes settle and finalizers run before measuring.
  for (let i = 0; i < 3; i++) {
    await sleep(50);
    (globalThis as { gc?: () => void }).gc?.();
  }
  if (process.env.SOAK_HEAP_SNAPSHOTS)
    writeHeapSnapshot(`${process.env.SOAK_HEAP_SNAPSHOTS}-${Date.now()}.heapsnapshot`);
  const resources: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
  const mem = process.memoryUsage();
  const inner = server as unknown as {
    sources: { sources: number; unauthenticated: number };
    demux: { size: number };
  };
  const st = server.status();
  return {
    rssMb: Math.round(mem.rss / 2 ** 20),
    heapMb: Math.round((mem.heapUsed / 2 ** 20) * 10) / 10,
    fds: readdirSync('/proc/self/fd').length,
    resources,
    sessions: st.sessions,
    poolFree: st.poolFree,
    leases: server.leases.count,
    calls: inner.demux.size,
    callIds: server.callIds.size,
    sources: inner.sources.sources,
    unauthenticated: inner.sources.unauthenticated,
    throttle: server.loginThrottle.size,
    routes: system.routes.size,
    hooksUnbalanced: system.hookCounts['ip-up'] - system.hookCounts['ip-down'],
  };
}

/** Runs cycles [from, to) with `concurrency` workers. */
async function run(from: number, to: number, progress: boolean): Promise<void> {
  let next = from;
  let done = 0;
  const t0 = Date.now();
  let lastReport = t0;
  const worker = async (): Promise<void> => {
    while (next < to) {
      const i = next++;
      await cycle(i);
      done++;
      if (progress && Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        const rate = done / ((lastReport - t0) / 1000);
        process.stdout.write(
          `  ${done}/${to - from} cycles, ${rate.toFixed(0)}/s, RSS ${Math.round(process.memoryUsage().rss / 2 ** 20)} MB, ${server.status().sessions} sessions\n`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Waits until the server holds no session (gre-stops cycles end by LCP echo, a few seconds). */
async function drained(ms: number): Promise<boolean> {
  const t0 = Date.now();
  while (server.status().sessions > 0) {
    if (Date.now() - t0 > ms) return false;
    await sleep(100);
  }
  return true;
}

process.stdout.write(`soak: ${cycles} cycles, ${concurrency} at a time, warm-up ${WARMUP}\n`);
await run(0, WARMUP, false);
await drained(15_000);
const before = await snapshot();
for (const k of Object.keys(kinds) as Kind[]) kinds[k] = 0;
const t0 = Date.now();
await run(WARMUP, WARMUP + cycles, true);
const seconds = (Date.now() - t0) / 1000;
const emptied = await drained(15_000);
const after = await snapshot();

const rows: [string, unknown, unknown][] = [
  ['RSS (MB)', before.rssMb, after.rssMb],
  ['heap used (MB)', before.heapMb, after.heapMb],
  ['open fds', before.fds, after.fds],
  ['active resources', JSON.stringify(before.resources), JSON.stringify(after.resources)],
  ['sessions', before.sessions, after.sessions],
  ['pool free', before.poolFree, after.poolFree],
  ['leases', before.leases, after.leases],
  ['GRE calls bound', before.calls, after.calls],
  ['call ids allocated', before.callIds, after.callIds],
  ['per-source entries', before.sources, after.sources],
  ['unauthenticated', before.unauthenticated, after.unauthenticated],
  ['routes', before.routes, after.routes],
  ['ip-up not matched by ip-down', before.hooksUnbalanced, after.hooksUnbalanced],
  ['login throttle entries', JSON.stringify(before.throttle), JSON.stringify(after.throttle)],
];
process.stdout.write(
  `\n${cycles} cycles in ${seconds.toFixed(1)} s (${(cycles / seconds).toFixed(0)}/s): ${JSON.stringify(kinds)}\n`,
);
const width = Math.max(...rows.map((r) => r[0].length));
process.stdout.write(`${''.padEnd(width)}  before → after\n`);
for (const [k, b, a] of rows) process.stdout.write(`${k.padEnd(width)}  ${b} → ${a}\n`);

const problems: string[] = [];
if (!emptied) problems.push(`${server.status().sessions} sessions still open 15 s after the last cycle`);
const failed = Object.values(failures).reduce((a, b) => a + b, 0);
if (failed > 0) problems.push(`${failed} cycles failed: ${JSON.stringify(failures)}`);
if (after.rssMb - before.rssMb > RSS_TOLERANCE_MB)
  problems.push(`RSS grew by ${after.rssMb - before.rssMb} MB (tolerance ${RSS_TOLERANCE_MB})`);
if (after.heapMb - before.heapMb > HEAP_TOLERANCE_MB)
  problems.push(
    `heap grew by ${(after.heapMb - before.heapMb).toFixed(1)} MB (tolerance ${HEAP_TOLERANCE_MB})`,
  );
if (after.fds > before.fds) problems.push(`open fds ${before.fds} → ${after.fds}`);
for (const [k, n] of Object.entries(after.resources))
  if (n > (before.resources[k] ?? 0)) problems.push(`active ${k}: ${before.resources[k] ?? 0} → ${n}`);
for (const k of [
  'sessions',
  'leases',
  'calls',
  'callIds',
  'sources',
  'unauthenticated',
  'routes',
  'hooksUnbalanced',
] as const)
  if (after[k] !== before[k]) problems.push(`${k}: ${before[k]} → ${after[k]}`);
if (after.poolFree !== server.status().poolSize)
  problems.push(`pool free ${after.poolFree} of ${server.status().poolSize}`);
if (after.throttle.sources > before.throttle.sources || after.throttle.users > before.throttle.users)
  problems.push(`login throttle ${JSON.stringify(before.throttle)} → ${JSON.stringify(after.throttle)}`);

await server.shutdown(2000);
for (const { gre } of ports.values()) gre.close();
if (problems.length > 0) {
  process.stdout.write(`\nFAIL:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
  process.exit(1);
}
process.stdout.write('\nOK: everything returned to its baseline\n');
process.exit(0);
