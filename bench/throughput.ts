/**
 * TCP throughput through a poptop tunnel beside plain veth, in one run (root; run
 * `npx tsc -p tsconfig.build.json` first; needs iperf3):
 *
 *   node --import tsx bench/throughput.ts [--seconds S] [--udp-rate M] [--rate-limit R] [--workers W]
 *
 * `poptop serve` in one namespace and `poptop connect` (MS-CHAPv2 + MPPE-128 stateless) in
 * another, the two joined by a veth pair and a bridge. iperf3 runs S seconds (default 5) each way:
 * first straight over the veth (the reference: the same kernel path without the tunnel), then to
 * the server's tunnel address through both TUN devices, MPPE and GRE. It reports the goodput of
 * each, the sender's TCP retransmits, and the server's CPU per megabyte moved through the tunnel
 * (user + system, from /proc). BENCH_VERBOSE=1 adds counters and logs.
 *
 * Then UDP through the tunnel (1300-octet datagrams, S seconds per run), each way: paced at
 * --udp-rate (default 300 Mbit/s, about what the tunnel carries), at twice that, unpaced
 * (iperf3 -b 0: issue 12's overload, which once left the tunnel dead), and paced again, to show the
 * tunnel carries traffic after the overload. Per run: what iperf3 sent, the goodput and loss its
 * receiver saw, the CPU of the server, the client and iperf3 (both ends) in % of one processor, and
 * where the excess went, in packets: what iperf3 sent, what the kernel dropped at the sending
 * side's TUN device (its queue full while poptop does not read it), what the sending poptop read
 * (and sent or dropped itself, before encrypting, when the GRE send queue was full), and what
 * iperf3 received. `--rate-limit R` gives the user a rate limit (e.g. 50M): the UDP runs then show
 * what policing an overload costs. `--workers W` runs the server with `workers W` (the one session
 * is a worker's; the server's CPU is that of every process): with POPTOP_SHARED_TUN=off alternately,
 * it compares the workers' shared TUN device with a device each.
 */
import { NsProcess, POPTOP, sh } from '../test/e2e/netns.ts';
import {
  benchArgs,
  benchServer,
  benchStatus,
  inTopology,
  processCpu,
  processesCpu,
  serverPids,
} from './ns-bench.ts';

const { opt } = benchArgs(process.argv.slice(2));
const seconds = Math.max(1, Math.min(60, Number(opt('--seconds', '5'))));
const udpRate = Number.parseFloat(opt('--udp-rate', '300'));
/** `--rate-limit R`: the user's rate limit (pppd options `rate-limit R`), e.g. 50M; none by default. */
const rateLimit = opt('--rate-limit', '');
const workers = Number(opt('--workers', '1'));
/** UDP payload: an IP packet of 1328 octets fits the tunnel's MTU (1396) with room to spare. */
const UDP_LENGTH = 1300;

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

/** iperf3's JSON for one run of `seconds` from the client namespace; `reverse`: the server sends. */
function iperfJson<T>(ns: string, target: string, reverse: boolean, extra: string[] = []): T {
  const argv = ['-c', target, ...extra, '-t', String(seconds), '-J', ...(reverse ? ['-R'] : [])];
  return JSON.parse(sh('ip', ['netns', 'exec', ns, 'iperf3', ...argv])) as T;
}

/** One iperf3 TCP run from the client namespace to `target`; `reverse`: the server sends. */
function iperf(ns: string, target: string, reverse: boolean): Run {
  const r = iperfJson<{
    end: { sum_received: { bits_per_second: number; bytes: number }; sum_sent: { retransmits?: number } };
  }>(ns, target, reverse);
  return {
    mbits: r.end.sum_received.bits_per_second / 1e6,
    bytes: r.end.sum_received.bytes,
    retransmits: r.end.sum_sent.retransmits ?? 0,
  };
}

interface UdpRun {
  sentMbits: number;
  goodputMbits: number;
  lossPct: number;
  sentPackets: number;
  receivedPackets: number;
}

/** One iperf3 UDP run (`rateMbits` 0: unpaced) from the client namespace; `reverse`: the server sends. */
function iperfUdp(ns: string, target: string, reverse: boolean, rateMbits: number): UdpRun {
  type Sum = { bits_per_second: number; lost_percent: number; packets: number; lost_packets: number };
  const rate = rateMbits === 0 ? '0' : `${rateMbits}M`;
  const r = iperfJson<{ end: { sum_sent: Sum; sum_received: Sum } }>(ns, target, reverse, [
    '-u',
    '-b',
    rate,
    '-l',
    String(UDP_LENGTH),
  ]);
  return {
    sentMbits: r.end.sum_sent.bits_per_second / 1e6,
    goodputMbits: r.end.sum_received.bits_per_second / 1e6,
    lossPct: r.end.sum_received.lost_percent,
    sentPackets: r.end.sum_sent.packets,
    receivedPackets: r.end.sum_received.packets - r.end.sum_received.lost_packets,
  };
}

/**
 * A TUN device's transmit counters in `ns`: packets the kernel queued for the reader (poptop) and
 * packets it dropped (its queue full: nobody reading).
 */
function tunTx(ns: string, dev: string): { queued: number; dropped: number } {
  const [link] = JSON.parse(sh('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'dev', dev])) as {
    stats64: { tx: { packets: number; dropped: number } };
  }[];
  return { queued: link!.stats64.tx.packets, dropped: link!.stats64.tx.dropped };
}

interface UdpRow {
  direction: string;
  load: string;
  run: UdpRun;
  /** % of one processor over the run. */
  cpu: { server: number; client: number; iperf: number };
  /** Packets the kernel dropped at the sending TUN device, and those it handed to poptop there. */
  tunDropped: number;
  tunRead: number;
}

const rows = await inTopology(`${process.pid % 10000}t`, async (topo, keep) => {
  const { server, control } = await benchServer(topo, 4, {
    tun: 'ptthr0',
    pool: 79,
    ...(rateLimit ? { options: [`rate-limit ${rateLimit}`] } : {}),
    ...(workers > 1 ? { extra: ['--workers', String(workers)] } : {}),
  });
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
  // With workers, the server's CPU is its processes' (the session's worker does the data path).
  const pids = serverPids(topo, control, server.child.pid!);
  const serverCpu = (): number => processesCpu(pids).self;
  // The device the server's replies leave by: the shared one, or (POPTOP_SHARED_TUN=off) the worker's.
  const worker =
    workers > 1 ? (await server.waitFor(/ (w\d+) \[s\d+ load [^\]]*\] session up/, 10_000))[1] : '';
  const serverTun = /ready on ptthr0w/.test(server.output) ? `ptthr0${worker}` : 'ptthr0';
  const out: { path: string; direction: string; run: Run; serverCpuMsPerMb?: number }[] = [];
  for (const reverse of [false, true]) {
    const direction = reverse ? 'server → client' : 'client → server';
    out.push({ path: 'veth', direction, run: iperf(topo.clients[0]!, topo.serverAddress, reverse) });
    const c0 = serverCpu();
    const run = iperf(topo.clients[0]!, tunnelAddress, reverse);
    const cpu = serverCpu() - c0;
    out.push({ path: 'tunnel', direction, run, serverCpuMsPerMb: (cpu * 1000) / (run.bytes / 1e6) });
  }
  const udp: UdpRow[] = [];
  const cpuNow = () => ({
    server: serverCpu(),
    client: processCpu(client.child.pid!).self,
    // The iperf3 client ends within sh(): its time is among this process's reaped children.
    iperf: processCpu(iperfServer.child.pid!).self + processCpu(process.pid).children,
  });
  for (const reverse of [false, true]) {
    const direction = reverse ? 'server → client' : 'client → server';
    const [sendNs, sendTun] = reverse ? [topo.server, serverTun] : [topo.clients[0]!, 'ptthrc0'];
    const loads: [string, number][] = [
      [`paced ${udpRate}`, udpRate],
      [`paced ${2 * udpRate}`, 2 * udpRate],
      ['unpaced', 0],
      [`paced ${udpRate}, after`, udpRate],
    ];
    for (const [load, rate] of loads) {
      const k0 = tunTx(sendNs, sendTun);
      const c0 = cpuNow();
      const t0 = Date.now();
      const run = iperfUdp(topo.clients[0]!, tunnelAddress, reverse, rate);
      const s = (Date.now() - t0) / 1000;
      const c1 = cpuNow();
      udp.push({
        direction,
        load,
        run,
        cpu: {
          server: (100 * (c1.server - c0.server)) / s,
          client: (100 * (c1.client - c0.client)) / s,
          iperf: (100 * (c1.iperf - c0.iperf)) / s,
        },
        ...(() => {
          const k1 = tunTx(sendNs, sendTun);
          return { tunDropped: k1.dropped - k0.dropped, tunRead: k1.queued - k0.queued };
        })(),
      });
    }
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
  return { out, udp };
});

console.log(`\nTCP goodput, iperf3 ${seconds} s each, MS-CHAPv2 + MPPE-128 stateless, one run:\n`);
console.log(
  '| direction | plain veth | through the tunnel | tunnel / veth | TCP retransmits: veth / tunnel | server CPU per MB (tunnel) |',
);
console.log('|---|---|---|---|---|---|');
for (const direction of ['client → server', 'server → client']) {
  const veth = rows.out.find((r) => r.direction === direction && r.path === 'veth')!;
  const tun = rows.out.find((r) => r.direction === direction && r.path === 'tunnel')!;
  console.log(
    `| ${direction} | ${veth.run.mbits.toFixed(0)} Mbit/s | ${tun.run.mbits.toFixed(0)} Mbit/s | ${(tun.run.mbits / veth.run.mbits).toFixed(3)} | ${veth.run.retransmits} / ${tun.run.retransmits} | ${tun.serverCpuMsPerMb!.toFixed(1)} ms |`,
  );
}

console.log(
  `\nUDP through the tunnel, ${UDP_LENGTH}-octet datagrams, iperf3 ${seconds} s each, in this order each way:\n`,
);
console.log(
  '| direction | load (Mbit/s) | iperf3 sent | goodput | loss | CPU: server / client / iperf3 | packets: sent / dropped at the sending TUN (kernel) / read by the sending poptop / received |',
);
console.log('|---|---|---|---|---|---|---|');
for (const r of rows.udp) {
  console.log(
    `| ${r.direction} | ${r.load} | ${r.run.sentMbits.toFixed(0)} Mbit/s | ${r.run.goodputMbits.toFixed(0)} Mbit/s | ${r.run.lossPct.toFixed(1)} % | ${r.cpu.server.toFixed(0)} / ${r.cpu.client.toFixed(0)} / ${r.cpu.iperf.toFixed(0)} % | ${r.run.sentPackets} / ${r.tunDropped} / ${r.tunRead} / ${r.run.receivedPackets} |`,
  );
}
