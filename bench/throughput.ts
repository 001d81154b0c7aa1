/**
 * TCP throughput through a poptop tunnel beside plain veth, in one run (root; run
 * `npx tsc -p tsconfig.build.json` first; needs iperf3):
 *
 *   node --import tsx bench/throughput.ts [--seconds S]
 *
 * `poptop serve` in one namespace and `poptop connect` (MS-CHAPv2 + MPPE-128 stateless) in
 * another, the two joined by a veth pair and a bridge. iperf3 runs S seconds (default 5) each way:
 * first straight over the veth (the reference: the same kernel path without the tunnel), then to
 * the server's tunnel address through both TUN devices, MPPE and GRE. It reports the goodput of
 * each, the sender's TCP retransmits, and the server's CPU per megabyte moved through the tunnel
 * (user + system, from /proc). BENCH_VERBOSE=1 adds counters and logs.
 */
import { NsProcess, POPTOP, sh } from '../test/e2e/netns.ts';
import { benchArgs, benchServer, benchStatus, inTopology, processCpu } from './ns-bench.ts';

const { opt } = benchArgs(process.argv.slice(2));
const seconds = Math.max(1, Math.min(60, Number(opt('--seconds', '5'))));

if (process.getuid?.() !== 0) {
  console.error('bench/throughput.ts needs root (network namespaces, raw GRE, TUN)');
  process.exit(2);
}
try {
  sh('iperf3', ['--version']);
} catch {
  console.error('bench/throughput.ts needs iperf3 (apt-get install iperf3)');
  process.exit(2);
}

interface Run {
  mbits: number;
  bytes: number;
  retransmits: number;
}

/** One iperf3 run from the client namespace to `target`; `reverse`: the server sends. */
function iperf(ns: string, target: string, reverse: boolean): Run {
  const out = sh('ip', [
    'netns',
    'exec',
    ns,
    'iperf3',
    '-c',
    target,
    '-t',
    String(seconds),
    '-J',
    ...(reverse ? ['-R'] : []),
  ]);
  const r = JSON.parse(out) as {
    end: { sum_received: { bits_per_second: number; bytes: number }; sum_sent: { retransmits?: number } };
  };
  return {
    mbits: r.end.sum_received.bits_per_second / 1e6,
    bytes: r.end.sum_received.bytes,
    retransmits: r.end.sum_sent.retransmits ?? 0,
  };
}

const rows = await inTopology(`${process.pid % 10000}t`, async (topo, keep) => {
  const { server, control } = await benchServer(topo, 4, { tun: 'ptthr0', pool: 79 });
  keep(server);
  const client = keep(
    new NsProcess(
      'client',
      topo.clients[0]!,
      [process.execPath, POPTOP, 'connect', topo.serverAddress, '--user', 'load', '--tun', 'ptthrc0'],
      { POPTOP_PASSWORD: 'load-pw' },
    ),
  );
  const m = await client.waitFor(/connected: ptthrc0 (\S+) -> (\S+),/, 20_000);
  const tunnelAddress = m[2]!;
  const iperfServer = keep(new NsProcess('iperf3', topo.server, ['iperf3', '-s', '--forceflush']));
  await iperfServer.waitFor(/Server listening/, 10_000);
  const pid = server.child.pid!;
  const out: { path: string; direction: string; run: Run; serverCpuMsPerMb?: number }[] = [];
  for (const reverse of [false, true]) {
    const direction = reverse ? 'server → client' : 'client → server';
    out.push({ path: 'veth', direction, run: iperf(topo.clients[0]!, topo.serverAddress, reverse) });
    const c0 = processCpu(pid).self;
    const run = iperf(topo.clients[0]!, tunnelAddress, reverse);
    const cpu = processCpu(pid).self - c0;
    out.push({ path: 'tunnel', direction, run, serverCpuMsPerMb: (cpu * 1000) / (run.bytes / 1e6) });
  }
  // BENCH_VERBOSE=1: the server's status, both namespaces' link and socket counters, both logs.
  if (process.env.BENCH_VERBOSE === '1') {
    console.error(JSON.stringify(benchStatus(topo, control)));
    for (const ns of [topo.server, topo.clients[0]!])
      console.error(
        `--- ${ns}\n${sh('ip', ['-n', ns, '-s', 'link'])}\n${sh('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp'])}`,
      );
    console.error(`--- server\n${server.tail()}\n--- client\n${client.tail()}`);
  }
  return out;
});

console.log(`\nTCP goodput, iperf3 ${seconds} s each, MS-CHAPv2 + MPPE-128 stateless, one run:\n`);
console.log(
  '| direction | plain veth | through the tunnel | tunnel / veth | TCP retransmits: veth / tunnel | server CPU per MB (tunnel) |',
);
console.log('|---|---|---|---|---|---|');
for (const direction of ['client → server', 'server → client']) {
  const veth = rows.find((r) => r.direction === direction && r.path === 'veth')!;
  const tun = rows.find((r) => r.direction === direction && r.path === 'tunnel')!;
  console.log(
    `| ${direction} | ${veth.run.mbits.toFixed(0)} Mbit/s | ${tun.run.mbits.toFixed(0)} Mbit/s | ${(tun.run.mbits / veth.run.mbits).toFixed(3)} | ${veth.run.retransmits} / ${tun.run.retransmits} | ${tun.serverCpuMsPerMb!.toFixed(1)} ms |`,
  );
}
