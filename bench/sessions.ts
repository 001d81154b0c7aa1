/**
 * Session set-up benchmark: `node --import tsx bench/sessions.ts [sessions] [concurrency]`.
 *
 * Our server and N of our clients in one process: PPTP control over real loopback TCP (each
 * client from its own 127.x.y.z address), GRE over the in-memory network, full MS-CHAPv2 and
 * MPPE-128 and IPCP. Reports set-ups per second (TCP connect through IPCP up), the heap per live
 * session, and the tear-down time. Bounded: at most 5000 sessions, 120 s.
 */

import { defaultPolicy } from '../src/ppp/policy.ts';
import { type IPv4, parseIPv4 } from '../src/wire/ip.ts';
import { serverSettings, startClient, startServer, type TestClient } from '../test/server/harness.ts';

const total = Math.min(Number(process.argv[2] ?? 500), 5000);
const concurrency = Math.max(1, Number(process.argv[3] ?? 64));
const deadline = Date.now() + 120_000;

function poolOf(n: number): IPv4[] {
  const base = parseIPv4('10.64.0.1')!;
  return Array.from({ length: n }, (_, i) => base + i);
}

/** 127.c.b.a with a in 1..254: a distinct loopback address per client. */
function clientAddress(i: number): string {
  const a = (i % 254) + 1;
  const b = Math.floor(i / 254) % 256;
  const c = 1 + Math.floor(i / (254 * 256));
  return `127.${c}.${b}.${a}`;
}

const base = serverSettings();
const settings = serverSettings({
  remoteIps: poolOf(total),
  maxConnections: total,
  policy: { ...base.policy, lcpEchoInterval: 0 },
});
const bench = await startServer(settings);
global.gc?.();
const heapBefore = process.memoryUsage().heapUsed;
const clients: TestClient[] = [];
const started = performance.now();
let next = 0;
let failures = 0;

async function worker(): Promise<void> {
  while (next < total && Date.now() < deadline) {
    const i = next++;
    const policy = defaultPolicy('client');
    policy.lcpEchoInterval = 0;
    const c = startClient(bench, {
      user: 'alice',
      password: 'alice-secret',
      localAddress: clientAddress(i),
      policy,
    });
    clients.push(c);
    const up = await Promise.race([c.up.then(() => true), c.down.then(() => false)]);
    if (!up) failures++;
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
const setupS = (performance.now() - started) / 1000;
global.gc?.();
const heapPer = (process.memoryUsage().heapUsed - heapBefore) / Math.max(1, clients.length);
const live = bench.server.list().length;

const t0 = performance.now();
await Promise.all(clients.map((c) => c.client.close()));
await bench.close();
const teardownS = (performance.now() - t0) / 1000;

console.log(`sessions requested        ${total} (concurrency ${concurrency})`);
console.log(`sessions up               ${live} (${failures} failed)`);
console.log(
  `set-up rate               ${(clients.length / setupS).toFixed(0)} sessions/s (TCP connect → IPCP up, both ends in this process)`,
);
console.log(
  `heap per live session     ${(heapPer / 1024).toFixed(1)} KiB (server + client side${global.gc ? '' : '; run with --expose-gc for a steadier figure'})`,
);
console.log(`tear-down of all          ${teardownS.toFixed(2)} s`);
process.exit(0);
